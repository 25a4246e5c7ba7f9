package mutate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// PodView is the part of a pod that the mutation and policy resolution read, with the JSON shape
// of a Pod. Decoding a pod into it (as the webhook does, inside the AdmissionReview) skips
// everything else — resources, probes, security contexts — which a full corev1.Pod decode would
// parse for nothing. Pod() turns it into a *corev1.Pod holding just those fields; Compute gives
// the same Changes for it as for the full pod (tests and FuzzMutate check this).
type PodView struct {
	// Metadata is nil when the pod's JSON has no metadata member (see HasMetadata).
	Metadata *metadataView `json:"metadata"`
	Spec     specView      `json:"spec"`
}

// metadataView and specView name PodView's member types for its decoder (podDecoder); as
// aliases they leave PodView's fields of the same, unnamed, types.
type (
	metadataView = struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
		Namespace    string `json:"namespace"`
		// Labels stay raw until asked for: neither the mutation nor the resolution reads them, the
		// webhook only looks for its opt-out label.
		Labels      json.RawMessage   `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	specView = struct {
		ServiceAccountName string                        `json:"serviceAccountName"`
		NodeSelector       map[string]string             `json:"nodeSelector"`
		OS                 *corev1.PodOS                 `json:"os"`
		Volumes            []volumeView                  `json:"volumes"`
		ImagePullSecrets   []corev1.LocalObjectReference `json:"imagePullSecrets"`
		InitContainers     []containerView               `json:"initContainers"`
		Containers         []containerView               `json:"containers"`
	}
)

type volumeView struct {
	Name      string                        `json:"name"`
	Projected *corev1.ProjectedVolumeSource `json:"projected"`
}

type containerView struct {
	Name         string               `json:"name"`
	Image        string               `json:"image"`
	Env          []envView            `json:"env"`
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts"`
}

// envView keeps whether valueFrom is set, not its content: an env var the user sets either way is
// left alone, and only a plain value is compared with lanyard's.
type envView struct {
	Name      string    `json:"name"`
	Value     string    `json:"value"`
	ValueFrom *struct{} `json:"valueFrom"`
}

// valueFromSet stands for "valueFrom is set" in the pod built from a view.
var valueFromSet = &corev1.EnvVarSource{}

// Pod builds a pod holding the viewed fields (not the labels: see Label). Slices keep their length and nil-ness, so patch
// paths and "absent or empty" decisions are the same as for the full pod.
func (v *PodView) Pod() *corev1.Pod { return v.PodIn(&PodBuffer{}) }

// PodBuffer is memory for the pods PodIn builds, reused from one pod to the next: a webhook that
// builds every review's pod in a pooled buffer allocates nothing for it. A pod built in a buffer is
// valid until the buffer is used again.
type PodBuffer struct {
	pod        corev1.Pod
	containers []corev1.Container
	env        []corev1.EnvVar
	volumes    []corev1.Volume
}

// Release readies the buffer to wait for its next pod, and reports whether it is worth keeping
// (after one huge pod it is better dropped than held). It lets go of what the last pod referred
// to — its strings and maps would otherwise stay reachable while the buffer waits.
func (b *PodBuffer) Release() bool {
	const maxContainers, maxEnv = 64, 1024
	if cap(b.containers) > maxContainers || cap(b.env) > maxEnv || cap(b.volumes) > maxContainers {
		return false
	}
	b.pod = corev1.Pod{}
	clear(b.containers[:cap(b.containers)])
	clear(b.env[:cap(b.env)])
	clear(b.volumes[:cap(b.volumes)])
	return true
}

// PodIn is Pod built in b.
func (v *PodView) PodIn(b *PodBuffer) *corev1.Pod {
	b.pod = corev1.Pod{}
	pod := &b.pod
	if m := v.Metadata; m != nil {
		pod.Name, pod.GenerateName, pod.Namespace = m.Name, m.GenerateName, m.Namespace
		pod.Annotations = m.Annotations
	}
	s := &pod.Spec
	s.ServiceAccountName, s.NodeSelector, s.OS = v.Spec.ServiceAccountName, v.Spec.NodeSelector, v.Spec.OS
	s.ImagePullSecrets = v.Spec.ImagePullSecrets
	if v.Spec.Volumes != nil {
		s.Volumes = take(&b.volumes, len(v.Spec.Volumes))
		for i, vol := range v.Spec.Volumes {
			s.Volumes[i].Name = vol.Name
			s.Volumes[i].Projected = vol.Projected
		}
	}
	init, main := v.Spec.InitContainers, v.Spec.Containers
	envs := 0
	for _, views := range [2][]containerView{init, main} {
		for i := range views {
			envs += len(views[i].Env)
		}
	}
	// One allocation (or none, reusing b) for every container and one for every env var.
	containers := take(&b.containers, len(init)+len(main))
	env := take(&b.env, envs)
	if init != nil {
		s.InitContainers = containersOf(init, containers[:len(init):len(init)], &env)
	}
	if main != nil {
		s.Containers = containersOf(main, containers[len(init):], &env)
	}
	return pod
}

// take returns n zeroed elements of *buf, growing it when it is too short. n == 0 gives an empty,
// non-nil slice.
func take[T any](buf *[]T, n int) []T {
	if n == 0 {
		return make([]T, 0)
	}
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	s := (*buf)[:n:n]
	clear(s)
	return s
}

// containersOf fills out (len(views) zeroed containers) from views, taking their env vars from the
// front of *env.
func containersOf(views []containerView, out []corev1.Container, env *[]corev1.EnvVar) []corev1.Container {
	for i := range views {
		c := &views[i]
		out[i].Name, out[i].Image, out[i].VolumeMounts = c.Name, c.Image, c.VolumeMounts
		if c.Env != nil {
			n := len(c.Env)
			own := (*env)[:n:n] // capped: appending to one container's env copies it (never nil: see take)
			*env = (*env)[n:]
			for j, e := range c.Env {
				own[j].Name, own[j].Value = e.Name, e.Value
				if e.ValueFrom != nil {
					own[j].ValueFrom = valueFromSet
				}
			}
			out[i].Env = own
		}
	}
	return out
}

// HasMetadata reports whether the pod's JSON has a metadata member: a patch that adds annotations
// needs it (the API server always sends one; a hand-made review may not).
func (v *PodView) HasMetadata() bool { return v.Metadata != nil }

// Label returns the value of one label, decoding the labels only when the key may occur in them.
// An error means the labels are not a map of strings: the caller cannot know the label's value.
func (v *PodView) Label(key string) (string, error) {
	if v.Metadata == nil {
		return "", nil
	}
	raw := v.Metadata.Labels
	// A key may be written with escapes ("\/" for "/"); only then is the substring test unsure.
	if len(raw) == 0 || (!bytes.Contains(raw, []byte(key)) && bytes.IndexByte(raw, '\\') < 0) {
		return "", nil
	}
	var labels map[string]string
	if err := json.Unmarshal(raw, &labels); err != nil {
		return "", fmt.Errorf("metadata.labels must map label names to strings: %s", describeLabelsError(err))
	}
	return labels[key], nil
}

func describeLabelsError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field != "" {
			return fmt.Sprintf("label %q is a JSON %s", typeErr.Field, typeErr.Value)
		}
		return "found a JSON " + typeErr.Value
	}
	return err.Error()
}
