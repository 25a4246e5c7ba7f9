package offline

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/imagehost"
)

// Pull paths of an image, beyond the RegistryAttachment ones (policy.PullPath).
const (
	// PullPodSecrets: no attachment covers the image; the pod's own imagePullSecrets may.
	PullPodSecrets policy.PullPath = "podImagePullSecrets"
	// PullAnonymous: no credentials; fine for public images on registries that need none.
	PullAnonymous policy.PullPath = "anonymous"
	// PullWouldFail: nothing pulls it — a cloud registry no attachment covers, and the pod brings
	// no pull secret: the pull would fail.
	PullWouldFail policy.PullPath = "none"
)

// PullPath says how the kubelet will authenticate the pull of one image.
type PullPath struct {
	Image string          `json:"image"`
	Path  policy.PullPath `json:"path"`
	// Attachment is the RegistryAttachment that decides it, when one does.
	Attachment string `json:"attachment,omitempty"`
	// Secrets are the pull secrets involved (the attachment's, or the pod's own).
	Secrets []string `json:"secrets,omitempty"`
	// Cloud is the cloud registry hosting the image ("" for others).
	Cloud string `json:"cloud,omitempty"`
}

// Describe is the path in words, for the check report.
func (p PullPath) Describe() string {
	switch p.Path {
	case policy.PullImagePullSecret:
		return fmt.Sprintf("imagePullSecret %s (RegistryAttachment %s)", strings.Join(p.Secrets, ", "), p.Attachment)
	case policy.PullNodeIdentity:
		return fmt.Sprintf("node identity: the kubelet's own credentials (RegistryAttachment %s)", p.Attachment)
	case policy.PullServiceAccountToken:
		return fmt.Sprintf("ServiceAccount token: the kubelet's credential provider with the pod's ServiceAccount token (RegistryAttachment %s)", p.Attachment)
	case PullPodSecrets:
		return fmt.Sprintf("the pod's own imagePullSecrets %s (no RegistryAttachment)", strings.Join(p.Secrets, ", "))
	case PullWouldFail:
		return fmt.Sprintf("none: %s registry and no RegistryAttachment or pull secret, the pull would fail", p.Cloud)
	}
	return "none: anonymous pull (no RegistryAttachment, no pull secret)"
}

// PullPaths lists, for every image of the workload's pod (once each, in container order: init
// containers, native sidecars, containers), the path that pulls it.
func PullPaths(w *Workload) []PullPath {
	if w.Pod == nil || w.Applied == nil {
		return nil
	}
	byImage := map[string]policy.RegistryGrant{}
	added := map[string]bool{}
	for _, g := range w.Applied.Registries {
		added[g.PullSecret] = true
		for _, image := range g.Images {
			if _, ok := byImage[image]; !ok {
				byImage[image] = g
			}
		}
	}
	var own []string
	for _, s := range w.Pod.Spec.ImagePullSecrets {
		if !added[s.Name] { // the pod's own, not an attachment's
			own = append(own, s.Name)
		}
	}
	seen := map[string]bool{}
	var out []PullPath
	for _, list := range [][]corev1.Container{w.Pod.Spec.InitContainers, w.Pod.Spec.Containers} {
		for _, c := range list {
			if seen[c.Image] {
				continue
			}
			seen[c.Image] = true
			p := PullPath{Image: c.Image}
			if host, err := imagehost.Host(c.Image); err == nil {
				p.Cloud = string(imagehost.CloudRegistry(host))
			}
			g, granted := byImage[c.Image]
			switch {
			case granted:
				p.Path, p.Attachment = g.Path, g.Attachment
				if g.PullSecret != "" {
					p.Secrets = []string{g.PullSecret}
				}
			case len(own) > 0:
				p.Path, p.Secrets = PullPodSecrets, own
			case p.Cloud != "":
				p.Path = PullWouldFail
			default:
				p.Path = PullAnonymous
			}
			out = append(out, p)
		}
	}
	return out
}
