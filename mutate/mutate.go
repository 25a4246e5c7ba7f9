package mutate

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/policy"
)

// Options are cluster-wide settings of the mutation.
type Options struct {
	// AWSPodIdentityIPv6 points AWS_CONTAINER_CREDENTIALS_FULL_URI at the agent's IPv6 address.
	AWSPodIdentityIPv6 bool
	// IgnoreCompatAnnotations: the EKS and Azure webhooks' pod annotations mean nothing
	// (--compat-annotations=false).
	IgnoreCompatAnnotations bool
	// EKSAnnotationPrefix replaces eks.amazonaws.com in the EKS webhook's pod annotation keys
	// (its --annotation-prefix); empty means eks.amazonaws.com.
	EKSAnnotationPrefix string
}

// MaxWarnings bounds Changes.Warnings. Warnings are per container (an env var it already sets, a
// mount in lanyard's way), the webhook returns every one to the API server and kubectl prints them:
// a pod with thousands of such containers would get thousands. The first MaxWarnings are kept and
// one more warning counts the rest.
const MaxWarnings = 20

// Compute returns the changes that give pod what applied grants. The pod is only read. An error is
// an *policy.InvalidError naming the pod annotation at fault: the pod must be denied.
func Compute(pod *corev1.Pod, applied *policy.Applied, opts Options) (*Changes, error) {
	ctl, err := parseControls(pod, opts.IgnoreCompatAnnotations, policy.EKSKeysFor(opts.EKSAnnotationPrefix))
	if err != nil {
		return nil, err
	}
	ch := newChanges(pod)
	for _, w := range ctl.warnings {
		ch.warnf("%s", w)
	}
	if applied == nil {
		return ch, nil
	}
	injections, err := buildInjections(applied.Identity, &ctl, isWindows(pod), opts)
	if err != nil {
		return nil, err
	}
	for i := range injections {
		ch.envHint += len(injections[i].env)
		ch.mountHint++
	}
	var injected []string
	for i := range injections {
		if ch.inject(pod, &injections[i], &ctl) {
			injected = append(injected, injections[i].provider.String())
		}
	}
	for _, g := range applied.Registries {
		if g.PullSecret == "" {
			continue
		}
		injected = append(injected, "registry/"+g.Attachment)
		if !g.Duplicate && !hasPullSecret(pod, g.PullSecret) {
			ch.pullSecrets = append(ch.pullSecrets, g.PullSecret)
		}
	}
	if len(injected) > 0 {
		record := strings.Join(injected, ",")
		ch.Injected = injected
		if pod.Annotations[policy.AnnotationInjected] != record {
			ch.setAnnotation(policy.AnnotationInjected, record)
		}
	}
	if ch.moreWarnings > 0 {
		ch.Warnings = append(ch.Warnings, warningsLeftOut(ch.moreWarnings))
	}
	return ch, nil
}

// inject adds one provider's volume, mounts and environment. It reports whether the pod carries the
// provider afterwards (some container has its mount), which is what lanyard.dev/injected records.
func (ch *Changes) inject(pod *corev1.Pod, inj *injection, ctl *controls) bool {
	volumePresent := false
	if v := findVolume(pod.Spec.Volumes, inj.volume.Name); v != nil {
		tok := tokenSource(v, inj.tokenPath)
		if tok == nil {
			ch.warnf("volume %q already exists and is not a projected ServiceAccount token volume: %s identity not injected",
				inj.volume.Name, inj.provider)
			return false
		}
		// Reused as it is (lanyard's own from an earlier pass, or the pod's equivalent); say so
		// when its token is not the one lanyard would have asked for.
		if want := inj.volume.Projected.Sources[0].ServiceAccountToken.Audience; tok.Audience != want {
			ch.warnf("volume %q already exists with token audience %q, not %q: left as is (%s identity may not work as expected)",
				inj.volume.Name, tok.Audience, want, inj.provider)
		}
		volumePresent = true
	}
	carried := false
	visit := func(list containerList, containers []corev1.Container) {
		for i := range containers {
			c := &containers[i]
			if !ctl.wants(inj.provider, c.Name) {
				continue
			}
			if m := findMountAt(c.VolumeMounts, inj.mount.MountPath); m != nil {
				if m.Name != inj.mount.Name {
					ch.warnf("container %q already mounts volume %q at %s: %s identity not injected into it",
						c.Name, m.Name, inj.mount.MountPath, inj.provider)
					continue
				}
			} else {
				ce := ch.container(list, i, c)
				ce.mounts = append(ce.mounts, inj.mount)
			}
			carried = true
			skip := ch.groupsSetByContainer(c, inj)
			for _, e := range inj.env {
				if skip[e.Name] {
					continue
				}
				if existing := findEnv(c.Env, e.Name); existing != nil {
					if existing.ValueFrom != nil || existing.Value != e.Value {
						ch.warnf("container %q already sets %s: left as is (%s identity may not work as expected)",
							c.Name, e.Name, inj.provider)
					}
					continue
				}
				ce := ch.container(list, i, c)
				ce.env = append(ce.env, e)
			}
		}
	}
	visit(initContainers, pod.Spec.InitContainers)
	visit(regularContainers, pod.Spec.Containers)
	if !carried {
		return false
	}
	if !volumePresent {
		ch.volumes = append(ch.volumes, inj.volume)
	}
	if inj.annotationKey != "" && pod.Annotations[inj.annotationKey] != inj.annotationValue {
		ch.setAnnotation(inj.annotationKey, inj.annotationValue)
	}
	return true
}

// groupsSetByContainer returns the members of the injection's credential groups that the
// container already has one of: lanyard adds none of such a group. Having the whole group with
// lanyard's values is lanyard's own earlier pass (silent); anything else is the user's (a warning
// naming what was found).
func (ch *Changes) groupsSetByContainer(c *corev1.Container, inj *injection) map[string]bool {
	var skip map[string]bool
	for _, group := range inj.groups {
		var found []string
		ours := true
		for _, name := range group {
			e := findEnv(c.Env, name)
			if e == nil {
				ours = false
				continue
			}
			found = append(found, name)
			if e.ValueFrom != nil || e.Value != envValue(inj.env, name) {
				ours = false
			}
		}
		if len(found) == 0 {
			continue
		}
		if skip == nil {
			skip = map[string]bool{}
		}
		for _, name := range group {
			skip[name] = true
		}
		if !ours {
			ch.warnf("container %q already sets %s: lanyard adds none of %s, which only work together (%s identity may not work as expected)",
				c.Name, strings.Join(found, " and "), strings.Join(group, ", "), inj.provider)
		}
	}
	return skip
}

func envValue(env []corev1.EnvVar, name string) string {
	for i := range env {
		if env[i].Name == name {
			return env[i].Value
		}
	}
	return ""
}

func isWindows(pod *corev1.Pod) bool {
	if pod.Spec.OS != nil && pod.Spec.OS.Name == corev1.Windows {
		return true
	}
	// The deprecated beta label is still in older manifests (and the EKS webhook's tests).
	return pod.Spec.NodeSelector[corev1.LabelOSStable] == "windows" || pod.Spec.NodeSelector["beta.kubernetes.io/os"] == "windows"
}

func findVolume(vols []corev1.Volume, name string) *corev1.Volume {
	for i := range vols {
		if vols[i].Name == name {
			return &vols[i]
		}
	}
	return nil
}

// tokenSource returns the ServiceAccount token source at tokenPath of a projected volume, or nil:
// such a volume is lanyard's own from an earlier pass (or an equivalent one), safe to reuse.
func tokenSource(v *corev1.Volume, tokenPath string) *corev1.ServiceAccountTokenProjection {
	if v.Projected == nil {
		return nil
	}
	for _, s := range v.Projected.Sources {
		if s.ServiceAccountToken != nil && s.ServiceAccountToken.Path == tokenPath {
			return s.ServiceAccountToken
		}
	}
	return nil
}

// findMountAt finds a mount at mountPath; paths compare cleaned, as the API server's duplicate
// check does, so "/a/b/" collides with "/a/b".
func findMountAt(mounts []corev1.VolumeMount, mountPath string) *corev1.VolumeMount {
	for i := range mounts {
		if mounts[i].MountPath == mountPath || path.Clean(mounts[i].MountPath) == mountPath {
			return &mounts[i]
		}
	}
	return nil
}

func findEnv(env []corev1.EnvVar, name string) *corev1.EnvVar {
	for i := range env {
		if env[i].Name == name {
			return &env[i]
		}
	}
	return nil
}

func hasPullSecret(pod *corev1.Pod, name string) bool {
	for _, s := range pod.Spec.ImagePullSecrets {
		if s.Name == name {
			return true
		}
	}
	return false
}

// warnf records a warning, or past MaxWarnings only counts it (without formatting it).
func (ch *Changes) warnf(format string, args ...any) {
	if len(ch.Warnings) >= MaxWarnings {
		ch.moreWarnings++
		return
	}
	ch.Warnings = append(ch.Warnings, fmt.Sprintf(format, args...))
}

// warningsLeftOut is the last warning when n were left out.
func warningsLeftOut(n int) string {
	if n == 1 {
		return fmt.Sprintf("... and 1 more warning (only the first %d are listed)", MaxWarnings)
	}
	return fmt.Sprintf("... and %d more warnings (only the first %d are listed)", n, MaxWarnings)
}
