package mutate

import (
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

type containerList int

const (
	initContainers containerList = iota
	regularContainers
)

func (l containerList) jsonName() string {
	if l == initContainers {
		return "initContainers"
	}
	return "containers"
}

// Changes are the additions Compute decided on for one pod. They are rendered as JSON Patch (Patch)
// or applied to a typed pod (Apply); both describe the same edit.
type Changes struct {
	// Injected lists what the pod carries from lanyard afterwards ("aws", "azure", "gcp",
	// "registry/<attachment>"), the value of the lanyard.dev/injected annotation.
	Injected []string
	// Warnings explain what was left alone on purpose (pre-set env, collisions): at most
	// MaxWarnings, then one counting the rest.
	Warnings []string

	annotations []annotation
	volumes     []corev1.Volume
	pullSecrets []string
	// containers are the container edits in the order they were made, which is the order they are
	// rendered in. index holds the same edits by position (initContainers, then containers) so
	// that finding a container's edit costs O(1) rather than a scan of the edits so far; it is made
	// on first use, inside inline for pods with few containers (no allocation).
	containers []*containerEdit
	index      []*containerEdit
	inline     [4]*containerEdit
	// numInit and numContainers are the lengths of the pod's lists.
	numInit, numContainers int
	// moreWarnings counts the warnings beyond MaxWarnings, summed up in one last warning.
	moreWarnings int

	// Whether the pod already has entries in these members: a non-empty list is appended to element
	// by element (no whole-array rewrites); an absent, null or empty one is added whole ("add" on
	// an existing member replaces it, which for an empty list or map loses nothing).
	hasAnnotations bool
	hasVolumes     bool
	hasPullSecrets bool
	// createMetadata: the pod's JSON has no metadata member, so the patch creates it first.
	createMetadata bool
	// envHint and mountHint size a container's edit lists on first use.
	envHint, mountHint int
}

type annotation struct{ key, value string }

type containerEdit struct {
	list      containerList
	index     int
	hasEnv    bool
	hasMounts bool
	mounts    []corev1.VolumeMount
	env       []corev1.EnvVar
}

func newChanges(pod *corev1.Pod) *Changes {
	return &Changes{
		hasAnnotations: len(pod.Annotations) > 0,
		hasVolumes:     len(pod.Spec.Volumes) > 0,
		hasPullSecrets: len(pod.Spec.ImagePullSecrets) > 0,
		numInit:        len(pod.Spec.InitContainers),
		numContainers:  len(pod.Spec.Containers),
	}
}

// CreateMetadata tells the patch renderings that the pod's JSON (a hand-made review, a pod template
// written without metadata) has no metadata member: the annotations then need it created first.
// A typed pod always has metadata, so Apply is unaffected.
func (ch *Changes) CreateMetadata() { ch.createMetadata = true }

// Empty reports whether there is nothing to change.
func (ch *Changes) Empty() bool {
	if len(ch.annotations) > 0 || len(ch.volumes) > 0 || len(ch.pullSecrets) > 0 {
		return false
	}
	for _, c := range ch.containers {
		if len(c.mounts) > 0 || len(c.env) > 0 {
			return false
		}
	}
	return true
}

func (ch *Changes) setAnnotation(key, value string) {
	for i := range ch.annotations { // at most a few
		if ch.annotations[i].key == key {
			ch.annotations[i].value = value
			return
		}
	}
	ch.annotations = append(ch.annotations, annotation{key, value})
}

// container returns the edit of one container, creating it on first use.
func (ch *Changes) container(list containerList, index int, c *corev1.Container) *containerEdit {
	if ch.index == nil {
		if n := ch.numInit + ch.numContainers; n <= len(ch.inline) {
			ch.index = ch.inline[:n]
		} else {
			ch.index = make([]*containerEdit, n)
		}
	}
	pos := index
	if list == regularContainers {
		pos += ch.numInit
	}
	if e := ch.index[pos]; e != nil {
		return e
	}
	e := &containerEdit{list: list, index: index, hasEnv: len(c.Env) > 0, hasMounts: len(c.VolumeMounts) > 0,
		env: make([]corev1.EnvVar, 0, ch.envHint), mounts: make([]corev1.VolumeMount, 0, ch.mountHint)}
	ch.index[pos] = e
	ch.containers = append(ch.containers, e)
	return e
}

// Patch renders the changes as JSON Patch operations against the pod's JSON (as received, not
// re-marshalled). Only "add" operations are emitted: into an object member (annotations), as a new
// list when the pod has none, or appended with "/-".
func (ch *Changes) Patch() []jsonpatch.Operation {
	return ch.PatchAt("")
}

// PatchAt is Patch for a pod template found at the JSON pointer prefix (e.g. "/spec/template" in a
// Deployment); the template must have a metadata object.
func (ch *Changes) PatchAt(prefix string) []jsonpatch.Operation {
	if ch.Empty() {
		return nil
	}
	ops := make([]jsonpatch.Operation, 0, 5+len(ch.volumes)+len(ch.pullSecrets))
	if len(ch.annotations) > 0 {
		if ch.createMetadata {
			ops = append(ops, add(prefix+"/metadata", map[string]any{}))
		}
		if ch.hasAnnotations {
			for _, a := range ch.annotations {
				ops = append(ops, add(prefix+"/metadata/annotations/"+escapePointer(a.key), a.value))
			}
		} else {
			m := make(map[string]string, len(ch.annotations))
			for _, a := range ch.annotations {
				m[a.key] = a.value
			}
			ops = append(ops, add(prefix+"/metadata/annotations", m))
		}
	}
	ops = appendList(ops, prefix+"/spec/volumes", ch.hasVolumes, ch.volumes)
	for _, c := range ch.containers {
		base := prefix + "/spec/" + c.list.jsonName() + "/" + strconv.Itoa(c.index)
		ops = appendList(ops, base+"/volumeMounts", c.hasMounts, c.mounts)
		ops = appendList(ops, base+"/env", c.hasEnv, c.env)
	}
	if len(ch.pullSecrets) > 0 {
		refs := make([]corev1.LocalObjectReference, len(ch.pullSecrets))
		for i, s := range ch.pullSecrets {
			refs[i] = corev1.LocalObjectReference{Name: s}
		}
		ops = appendList(ops, prefix+"/spec/imagePullSecrets", ch.hasPullSecrets, refs)
	}
	return ops
}

func appendList[T any](ops []jsonpatch.Operation, path string, exists bool, items []T) []jsonpatch.Operation {
	if len(items) == 0 {
		return ops
	}
	if !exists {
		return append(ops, add(path, items))
	}
	for i := range items {
		ops = append(ops, add(path+"/-", items[i]))
	}
	return ops
}

func add(path string, value any) jsonpatch.Operation {
	return jsonpatch.Operation{Operation: "add", Path: path, Value: value}
}

// escapePointer escapes a JSON Pointer reference token (RFC 6901).
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Apply edits pod, which must be the pod the changes were computed for (or a copy of it).
func (ch *Changes) Apply(pod *corev1.Pod) {
	if len(ch.annotations) > 0 && pod.Annotations == nil {
		pod.Annotations = make(map[string]string, len(ch.annotations))
	}
	for _, a := range ch.annotations {
		pod.Annotations[a.key] = a.value
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, ch.volumes...)
	for _, c := range ch.containers {
		list := pod.Spec.Containers
		if c.list == initContainers {
			list = pod.Spec.InitContainers
		}
		list[c.index].VolumeMounts = append(list[c.index].VolumeMounts, c.mounts...)
		list[c.index].Env = append(list[c.index].Env, c.env...)
	}
	for _, s := range ch.pullSecrets {
		pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
}
