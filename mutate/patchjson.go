package mutate

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/internal/jsonw"
)

// AppendPatchJSON appends the JSON Patch document of PatchAt(prefix) to dst, written directly
// rather than through reflection: it is the webhook's hot path. The result decodes to the same
// operations as json.Marshal(ch.PatchAt(prefix)); tests and FuzzMutate check it.
func (ch *Changes) AppendPatchJSON(dst []byte, prefix string) ([]byte, error) {
	return ch.AppendPatchJSONWithin(dst, prefix, 0)
}

// ErrPatchTooLarge: the patch would be larger than the bound given to AppendPatchJSONWithin.
var ErrPatchTooLarge = errors.New("the patch exceeds its size bound")

// AppendPatchJSONWithin is AppendPatchJSON that gives up with ErrPatchTooLarge as soon as the
// patch grows beyond maxBytes (0: no bound), before the rest of it is rendered.
func (ch *Changes) AppendPatchJSONWithin(dst []byte, prefix string, maxBytes int) ([]byte, error) {
	start := len(dst)
	over := func(b []byte) bool { return maxBytes > 0 && len(b)-start > maxBytes }
	if ch.Empty() {
		return append(dst, "[]"...), nil
	}
	w := patchWriter{dst: append(dst, '['), first: true}
	if len(ch.annotations) > 0 {
		if ch.createMetadata {
			w.op(prefix, nil, "/metadata", "")
			w.dst = append(w.dst, "{}"...)
			w.end()
		}
		if ch.hasAnnotations {
			for _, a := range ch.annotations {
				w.op(prefix, nil, "/metadata/annotations/", escapePointer(a.key))
				w.dst = jsonw.String(w.dst, a.value)
				w.end()
			}
		} else {
			w.op(prefix, nil, "/metadata/annotations", "")
			sorted := append([]annotation(nil), ch.annotations...)
			sort.Slice(sorted, func(i, j int) bool { return sorted[i].key < sorted[j].key })
			w.dst = append(w.dst, '{')
			for i, a := range sorted {
				w.dst = jsonw.StringField(w.dst, i == 0, a.key, a.value)
			}
			w.dst = append(w.dst, '}')
			w.end()
		}
	}
	if err := w.list(prefix, nil, "/spec/volumes", ch.hasVolumes, len(ch.volumes), func(dst []byte, i int) ([]byte, error) {
		return appendVolume(dst, &ch.volumes[i])
	}); err != nil {
		return nil, err
	}
	// Room for the longest base ("/spec/initContainers/" and any int64) so that building it never
	// allocates; a smaller buffer cost one allocation per container from index 1,000 on.
	if over(w.dst) {
		return nil, ErrPatchTooLarge
	}
	var index [48]byte
	for _, c := range ch.containers {
		if over(w.dst) {
			return nil, ErrPatchTooLarge
		}
		base := strconv.AppendInt(append(append(append(index[:0], "/spec/"...), c.list.jsonName()...), '/'), int64(c.index), 10)
		_ = w.list(prefix, base, "/volumeMounts", c.hasMounts, len(c.mounts), func(dst []byte, i int) ([]byte, error) {
			return appendMount(dst, &c.mounts[i]), nil
		})
		_ = w.list(prefix, base, "/env", c.hasEnv, len(c.env), func(dst []byte, i int) ([]byte, error) {
			return appendEnv(dst, &c.env[i]), nil
		})
	}
	_ = w.list(prefix, nil, "/spec/imagePullSecrets", ch.hasPullSecrets, len(ch.pullSecrets), func(dst []byte, i int) ([]byte, error) {
		return append(jsonw.StringField(append(dst, '{'), true, "name", ch.pullSecrets[i]), '}'), nil
	})
	if w.dst = append(w.dst, ']'); over(w.dst) {
		return nil, ErrPatchTooLarge
	}
	return w.dst, nil
}

type patchWriter struct {
	dst   []byte
	first bool
}

// op opens an add operation at the path made of the pieces, up to its value.
func (w *patchWriter) op(a string, b []byte, c, d string) {
	if !w.first {
		w.dst = append(w.dst, ',')
	}
	w.first = false
	w.dst = append(w.dst, `{"op":"add","path":"`...)
	w.dst = jsonw.StringContent(w.dst, a)
	w.dst = append(w.dst, b...) // a container's "/spec/containers/N": nothing to escape
	w.dst = jsonw.StringContent(w.dst, c)
	w.dst = jsonw.StringContent(w.dst, d)
	w.dst = append(w.dst, `","value":`...)
}

func (w *patchWriter) end() { w.dst = append(w.dst, '}') }

// list writes n items to the list at prefix+base+member: one whole-list add, or appends when the
// list has entries.
func (w *patchWriter) list(prefix string, base []byte, member string, exists bool, n int, item func([]byte, int) ([]byte, error)) error {
	if n == 0 {
		return nil
	}
	var err error
	if !exists {
		w.op(prefix, base, member, "")
		w.dst = append(w.dst, '[')
		for i := range n {
			if i > 0 {
				w.dst = append(w.dst, ',')
			}
			if w.dst, err = item(w.dst, i); err != nil {
				return err
			}
		}
		w.dst = append(w.dst, ']')
		w.end()
		return nil
	}
	for i := range n {
		w.op(prefix, base, member, "/-")
		if w.dst, err = item(w.dst, i); err != nil {
			return err
		}
		w.end()
	}
	return nil
}

func appendEnv(dst []byte, e *corev1.EnvVar) []byte {
	dst = jsonw.StringField(append(dst, '{'), true, "name", e.Name)
	if e.Value != "" {
		dst = jsonw.StringField(dst, false, "value", e.Value)
	}
	return append(dst, '}')
}

func appendMount(dst []byte, m *corev1.VolumeMount) []byte {
	dst = jsonw.StringField(append(dst, '{'), true, "name", m.Name)
	if m.ReadOnly {
		dst = append(dst, `,"readOnly":true`...)
	}
	dst = jsonw.StringField(dst, false, "mountPath", m.MountPath)
	return append(dst, '}')
}

// appendVolume writes a volume exactly as json.Marshal does. The token volumes lanyard adds — a
// projected volume of ServiceAccount tokens, its strings written as they are — are written
// directly, the reflection for them being most of the patch's cost; any other shape goes through
// json.Marshal.
func appendVolume(dst []byte, v *corev1.Volume) ([]byte, error) {
	if !isPlainTokenVolume(v) {
		js, err := json.Marshal(v)
		return append(dst, js...), err
	}
	dst = append(append(append(dst, `{"name":"`...), v.Name...), `","projected":{"sources":[`...)
	for i, src := range v.Projected.Sources {
		if i > 0 {
			dst = append(dst, ',')
		}
		tok := src.ServiceAccountToken
		dst = append(dst, `{"serviceAccountToken":{`...)
		if tok.Audience != "" {
			dst = append(append(append(dst, `"audience":"`...), tok.Audience...), `",`...)
		}
		if tok.ExpirationSeconds != nil {
			dst = append(strconv.AppendInt(append(dst, `"expirationSeconds":`...), *tok.ExpirationSeconds, 10), ',')
		}
		dst = append(append(append(dst, `"path":"`...), tok.Path...), `"}}`...)
	}
	dst = append(dst, ']')
	if mode := v.Projected.DefaultMode; mode != nil {
		dst = strconv.AppendInt(append(dst, `,"defaultMode":`...), int64(*mode), 10)
	}
	return append(dst, "}}"...), nil
}

// isPlainTokenVolume reports whether v is a projected volume of ServiceAccount tokens and nothing
// else, whose strings JSON writes as they are.
func isPlainTokenVolume(v *corev1.Volume) bool {
	p := v.Projected
	if p == nil || v.VolumeSource != (corev1.VolumeSource{Projected: p}) || len(p.Sources) == 0 || !isPlainJSON(v.Name) {
		return false
	}
	for _, src := range p.Sources {
		tok := src.ServiceAccountToken
		if tok == nil || src != (corev1.VolumeProjection{ServiceAccountToken: tok}) || !isPlainJSON(tok.Audience) || !isPlainJSON(tok.Path) {
			return false
		}
	}
	return true
}

// isPlainJSON reports whether encoding/json writes s as it is between quotes: printable ASCII
// without the quote, the backslash, and the <, > and & it escapes for HTML.
func isPlainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < ' ' || c > '~', c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
