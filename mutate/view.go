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
func (v *PodView) Pod() *corev1.Pod {
	pod := &corev1.Pod{}
	if m := v.Metadata; m != nil {
		pod.Name, pod.GenerateName, pod.Namespace = m.Name, m.GenerateName, m.Namespace
		pod.Annotations = m.Annotations
	}
	s := &pod.Spec
	s.ServiceAccountName, s.NodeSelector, s.OS = v.Spec.ServiceAccountName, v.Spec.NodeSelector, v.Spec.OS
	s.ImagePullSecrets = v.Spec.ImagePullSecrets
	if v.Spec.Volumes != nil {
		s.Volumes = make([]corev1.Volume, len(v.Spec.Volumes))
		for i, vol := range v.Spec.Volumes {
			s.Volumes[i].Name = vol.Name
			s.Volumes[i].Projected = vol.Projected
		}
	}
	s.InitContainers = containersOf(v.Spec.InitContainers)
	s.Containers = containersOf(v.Spec.Containers)
	return pod
}

func containersOf(views []containerView) []corev1.Container {
	if views == nil {
		return nil
	}
	out := make([]corev1.Container, len(views))
	envs := 0
	for i := range views {
		envs += len(views[i].Env)
	}
	env := make([]corev1.EnvVar, envs) // one allocation for every container's env
	for i := range views {
		c := &views[i]
		out[i].Name, out[i].Image, out[i].VolumeMounts = c.Name, c.Image, c.VolumeMounts
		if c.Env != nil {
			own := env[:len(c.Env):len(c.Env)] // capped: appending to one container's env copies it
			env = env[len(c.Env):]
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
