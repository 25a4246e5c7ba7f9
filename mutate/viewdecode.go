package mutate

import (
	"encoding/json"
	"sync"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"

	"github.com/lanyard-dev/lanyard/internal/jsonr"
)

// podDecoder decodes a PodView in one pass without reflection (internal/jsonr): decoding a review
// with sigs.k8s.io/json is most of the webhook's CPU, for a pod of many env vars nearly all of it.
// What jsonr takes it decodes exactly as kjson.UnmarshalCaseSensitivePreserveInts does (the fuzz
// tests check it); what jsonr refuses — and a value this decoder cannot take — the caller decodes
// with kjson instead.
type podDecoder struct {
	*jsonr.Decoder

	// Scratch space reused by the lists of one pod, so that each of them costs one allocation of
	// its final size, and the strings of an env list or a container's mounts one string
	// (jsonr's text).
	env        []envSpans
	mounts     []mountSpans
	containers []containerView
	volumes    []volumeView
	secrets    []corev1.LocalObjectReference
}

// DecodePodView decodes a pod's JSON on the fast path; ok is false when jsonr refuses it (decode
// it with sigs.k8s.io/json then).
func DecodePodView(data []byte) (view *PodView, ok bool) {
	d := jsonr.NewDecoder(data)
	view = DecodePodViewFrom(d)
	if !d.End() {
		return nil, false
	}
	return view, true
}

// DecodePodViewFrom reads the pod's JSON at d into a view (as json.Unmarshal would, see PodView),
// for a pod inside a larger document. The view is meaningful only if d ends without refusing.
func DecodePodViewFrom(d *jsonr.Decoder) *PodView {
	pd := podDecoders.Get().(*podDecoder)
	pd.Decoder = d
	v := pd.podView()
	pd.release()
	return v
}

// podDecoders keeps the scratch space of pods decoded before: most pods are alike, and the lists
// of the next one fit without growing.
var podDecoders = sync.Pool{New: func() any { return new(podDecoder) }}

// maxKeptScratch bounds each scratch list kept for the next pod, in bytes: one huge pod must not
// stay in the pool.
const maxKeptScratch = 64 << 10

func (d *podDecoder) release() {
	d.Decoder = nil
	d.env = reuse(d.env)
	d.mounts = reuse(d.mounts)
	d.containers = reuse(d.containers)
	d.volumes = reuse(d.volumes)
	d.secrets = reuse(d.secrets)
	podDecoders.Put(d)
}

// reuse empties scratch for the next pod, cleared so that it keeps nothing of this one alive, or
// drops it when it is too large to keep.
func reuse[T any](scratch []T) []T {
	var item T
	if cap(scratch)*int(unsafe.Sizeof(item)) > maxKeptScratch {
		return nil
	}
	clear(scratch[:cap(scratch)])
	return scratch[:0]
}

// decodeRare decodes a member that is rarely present and complex (a typed Kubernetes struct) with
// kjson itself, into v.
func (d *podDecoder) decodeRare(v any) {
	raw := d.RawValue()
	if raw == nil {
		return
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, v); err != nil {
		d.Refuse()
	}
}

// exactCopy returns the items read into scratch as a slice of their own (non-nil, also when
// empty), leaving scratch for the next list.
func exactCopy[T any](scratch []T) []T {
	out := make([]T, len(scratch))
	copy(out, scratch)
	return out
}

func (d *podDecoder) podView() *PodView {
	v := &PodView{}
	var seen uint32
	for more := d.Object(); more; more = d.More() {
		switch string(d.Name()) {
		case "metadata":
			d.Once(&seen, 0)
			v.Metadata = d.metadata()
		case "spec":
			d.Once(&seen, 1)
			d.spec(&v.Spec)
		default:
			d.Skip()
		}
	}
	return v
}

func (d *podDecoder) metadata() *metadataView {
	m := &metadataView{}
	var seen uint32
	for more := d.Object(); more; more = d.More() {
		switch string(d.Name()) {
		case "name":
			d.Once(&seen, 0)
			m.Name = d.String()
		case "generateName":
			d.Once(&seen, 1)
			m.GenerateName = d.String()
		case "namespace":
			d.Once(&seen, 2)
			m.Namespace = d.String()
		case "labels":
			d.Once(&seen, 3)
			m.Labels = append(json.RawMessage(nil), d.RawValue()...) // as json.RawMessage keeps it: a copy
		case "annotations":
			d.Once(&seen, 4)
			m.Annotations = d.StringMap()
		default:
			d.Skip()
		}
	}
	return m
}

func (d *podDecoder) spec(s *specView) {
	var seen uint32
	for more := d.Object(); more; more = d.More() {
		switch string(d.Name()) {
		case "serviceAccountName":
			d.Once(&seen, 0)
			s.ServiceAccountName = d.String()
		case "nodeSelector":
			d.Once(&seen, 1)
			s.NodeSelector = d.StringMap()
		case "os":
			d.Once(&seen, 2)
			d.decodeRare(&s.OS)
		case "volumes":
			d.Once(&seen, 3)
			s.Volumes = d.volumeList()
		case "imagePullSecrets":
			d.Once(&seen, 4)
			s.ImagePullSecrets = d.secretList()
		case "initContainers":
			d.Once(&seen, 5)
			s.InitContainers = d.containerList()
		case "containers":
			d.Once(&seen, 6)
			s.Containers = d.containerList()
		default:
			d.Skip()
		}
	}
}

func (d *podDecoder) volumeList() []volumeView {
	d.volumes = d.volumes[:0]
	for more := d.Array(); more; more = d.MoreItems() {
		var vol volumeView
		var seen uint32
		for more := d.Object(); more; more = d.More() {
			switch string(d.Name()) {
			case "name":
				d.Once(&seen, 0)
				vol.Name = d.String()
			case "projected":
				d.Once(&seen, 1)
				d.decodeRare(&vol.Projected)
			default:
				d.Skip()
			}
		}
		d.volumes = append(d.volumes, vol)
	}
	return exactCopy(d.volumes)
}

func (d *podDecoder) secretList() []corev1.LocalObjectReference {
	d.secrets = d.secrets[:0]
	for more := d.Array(); more; more = d.MoreItems() {
		var ref corev1.LocalObjectReference
		var seen uint32
		for more := d.Object(); more; more = d.More() {
			switch string(d.Name()) {
			case "name":
				d.Once(&seen, 0)
				ref.Name = d.String()
			default:
				d.Skip()
			}
		}
		d.secrets = append(d.secrets, ref)
	}
	return exactCopy(d.secrets)
}

func (d *podDecoder) containerList() []containerView {
	d.containers = d.containers[:0]
	for more := d.Array(); more; more = d.MoreItems() {
		c := d.container()
		d.containers = append(d.containers, c)
	}
	return exactCopy(d.containers)
}

func (d *podDecoder) container() containerView {
	var c containerView
	var seen uint32
	for more := d.Object(); more; more = d.More() {
		switch string(d.Name()) {
		case "name":
			d.Once(&seen, 0)
			c.Name = d.String()
		case "image":
			d.Once(&seen, 1)
			c.Image = d.String()
		case "env":
			d.Once(&seen, 2)
			c.Env = d.envList()
		case "volumeMounts":
			d.Once(&seen, 3)
			c.VolumeMounts = d.mountList()
		default:
			d.Skip()
		}
	}
	return c
}

// envSpans is an env var being read: its strings are in jsonr's text.
type envSpans struct {
	name, value jsonr.Span
	valueFrom   bool
}

func (d *podDecoder) envList() []envView {
	d.env = d.env[:0]
	for more := d.Array(); more; more = d.MoreItems() {
		var e envSpans
		var seen uint32
		for more := d.Object(); more; more = d.More() {
			switch string(d.Name()) {
			case "name":
				d.Once(&seen, 0)
				e.name = d.StringSpan()
			case "value":
				d.Once(&seen, 1)
				e.value = d.StringSpan()
			case "valueFrom":
				d.Once(&seen, 2)
				d.SkipObject() // only whether it is set counts
				e.valueFrom = true
			default:
				d.Skip()
			}
		}
		d.env = append(d.env, e)
	}
	text := d.TakeText()
	out := make([]envView, len(d.env))
	for i, e := range d.env {
		out[i].Name, out[i].Value = e.name.In(text), e.value.In(text)
		if e.valueFrom {
			out[i].ValueFrom = &struct{}{}
		}
	}
	return out
}

// mountSpans is a volume mount being read: its plain strings are in jsonr's text, the rest in
// mount.
type mountSpans struct {
	mount                                 corev1.VolumeMount
	name, mountPath, subPath, subPathExpr jsonr.Span
}

// mountList reads volume mounts, every field of corev1.VolumeMount (a test fails when the API adds
// one).
func (d *podDecoder) mountList() []corev1.VolumeMount {
	d.mounts = d.mounts[:0]
	for more := d.Array(); more; more = d.MoreItems() {
		var m mountSpans
		var seen uint32
		for more := d.Object(); more; more = d.More() {
			switch string(d.Name()) {
			case "name":
				d.Once(&seen, 0)
				m.name = d.StringSpan()
			case "readOnly":
				d.Once(&seen, 1)
				m.mount.ReadOnly = d.Bool()
			case "recursiveReadOnly":
				d.Once(&seen, 2)
				mode := corev1.RecursiveReadOnlyMode(d.String())
				m.mount.RecursiveReadOnly = &mode
			case "mountPath":
				d.Once(&seen, 3)
				m.mountPath = d.StringSpan()
			case "subPath":
				d.Once(&seen, 4)
				m.subPath = d.StringSpan()
			case "mountPropagation":
				d.Once(&seen, 5)
				mode := corev1.MountPropagationMode(d.String())
				m.mount.MountPropagation = &mode
			case "subPathExpr":
				d.Once(&seen, 6)
				m.subPathExpr = d.StringSpan()
			case "bindMountOptions":
				d.Once(&seen, 7)
				m.mount.BindMountOptions = d.StringList()
			default:
				d.Skip()
			}
		}
		d.mounts = append(d.mounts, m)
	}
	text := d.TakeText()
	out := make([]corev1.VolumeMount, len(d.mounts))
	for i := range d.mounts {
		m := &d.mounts[i]
		out[i] = m.mount
		out[i].Name, out[i].MountPath = m.name.In(text), m.mountPath.In(text)
		out[i].SubPath, out[i].SubPathExpr = m.subPath.In(text), m.subPathExpr.In(text)
	}
	return out
}
