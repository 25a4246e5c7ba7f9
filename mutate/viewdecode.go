package mutate

import (
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
)

// ViewDecoder decodes a PodView, and the JSON document around it, in one pass without
// reflection: decoding a review with sigs.k8s.io/json is most of the webhook's CPU, for a pod of
// many env vars nearly all of it.
//
// It reads JSON as the API server writes it: well formed, no duplicate members, no null or other
// type where it decodes a value, member names without escapes. On anything else it fails, and
// every later read yields zero values; End reports it, and the caller decodes the document with
// sigs.k8s.io/json instead. So what it accepts it decodes exactly as
// kjson.UnmarshalCaseSensitivePreserveInts does (the fuzz tests check it), and the rest gets
// kjson's results and errors. Members it does not decode are skipped, but still checked to be
// well formed JSON, as kjson checks the whole document.
//
// An object is read as
//
//	var seen uint32
//	for more := d.Object(); more; more = d.More() {
//		switch string(d.Name()) {
//		case "a":
//			d.Once(&seen, 0)
//			a = d.String()
//		default:
//			d.Skip()
//		}
//	}
type ViewDecoder struct {
	data   []byte
	pos    int
	failed bool

	// Scratch space reused by the arrays and maps of one document, so that each of them costs one
	// allocation of its final size, and the strings of an env list, a map or a container's mounts
	// one string (text).
	unescaped  []byte // String's, for a string with escapes
	text       []byte
	pairs      []span
	env        []envSpans
	mounts     []mountSpans
	containers []containerView
	volumes    []volumeView
	secrets    []corev1.LocalObjectReference
}

// maxSkipDepth bounds the nesting of a skipped value (far below the 10000 at which kjson refuses
// a document, so what is skipped here kjson accepts); deeper values are left to kjson.
const maxSkipDepth = 512

// NewViewDecoder returns a decoder reading the JSON document data.
func NewViewDecoder(data []byte) *ViewDecoder {
	return &ViewDecoder{data: data}
}

// DecodePodView decodes a pod's JSON on the fast path; ok is false when ViewDecoder does not
// handle it (decode it with sigs.k8s.io/json then).
func DecodePodView(data []byte) (view *PodView, ok bool) {
	d := NewViewDecoder(data)
	view = d.PodView()
	if !d.End() {
		return nil, false
	}
	return view, true
}

// End reports whether the whole document was decoded: nothing failed and only whitespace follows.
func (d *ViewDecoder) End() bool {
	d.skipSpace()
	if d.pos != len(d.data) {
		d.fail()
	}
	return !d.failed
}

func (d *ViewDecoder) fail() {
	d.failed = true
	d.pos = len(d.data) // every later read finds nothing
}

func (d *ViewDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, 0 at the end (a 0 byte is not JSON either).
func (d *ViewDecoder) peek() byte {
	if d.pos < len(d.data) && d.data[d.pos] > ' ' {
		return d.data[d.pos] // the API server writes no whitespace
	}
	d.skipSpace()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// Object starts reading an object and reports whether a member follows. Anything but an object
// fails.
func (d *ViewDecoder) Object() bool {
	if d.peek() != '{' {
		d.fail()
		return false
	}
	d.pos++
	if d.peek() == '}' {
		d.pos++
		return false
	}
	return true
}

// More reports whether another member follows the one just read.
func (d *ViewDecoder) More() bool {
	switch d.peek() {
	case ',':
		d.pos++
		return true
	case '}':
		d.pos++
		return false
	}
	d.fail()
	return false
}

// Name reads a member's name and the colon after it. The bytes are the document's and valid until
// it changes. A name with escapes fails.
func (d *ViewDecoder) Name() []byte {
	if d.peek() != '"' {
		d.fail()
		return nil
	}
	start := d.pos + 1
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			name := d.data[start:i]
			d.pos = i + 1
			if d.peek() != ':' {
				d.fail()
				return nil
			}
			d.pos++
			return name
		case c == '\\' || c < ' ':
			d.fail()
			return nil
		}
	}
	d.fail()
	return nil
}

// Once marks member i (< 32) of an object as read: a second member of the same name fails.
func (d *ViewDecoder) Once(seen *uint32, i uint) {
	bit := uint32(1) << i
	if *seen&bit != 0 {
		d.fail()
	}
	*seen |= bit
}

// array starts reading an array and reports whether an item follows.
func (d *ViewDecoder) array() bool {
	if d.peek() != '[' {
		d.fail()
		return false
	}
	d.pos++
	if d.peek() == ']' {
		d.pos++
		return false
	}
	return true
}

// moreItems reports whether another item follows the one just read.
func (d *ViewDecoder) moreItems() bool {
	switch d.peek() {
	case ',':
		d.pos++
		return true
	case ']':
		d.pos++
		return false
	}
	d.fail()
	return false
}

// plainInString marks the bytes a string holds as they are: not the quote, backslash, control
// characters, or the bytes of non-ASCII characters (which must be checked to be UTF-8).
var plainInString = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// String reads a string, unescaped as encoding/json does (invalid UTF-8 and lone surrogates
// become U+FFFD).
func (d *ViewDecoder) String() string {
	if d.peek() != '"' {
		d.fail()
		return ""
	}
	start := d.pos + 1
	for i := start; i < len(d.data); i++ {
		c := d.data[i]
		if plainInString[c] {
			continue
		}
		if c == '"' {
			d.pos = i + 1
			return string(d.data[start:i])
		}
		d.unescaped = d.unquote(d.unescaped[:0], start, i)
		return string(d.unescaped)
	}
	d.fail()
	return ""
}

// span is where a string read by appendText is in d.text.
type span struct{ start, end int }

// appendText reads a string into d.text: the strings of an array or map go there, and become one
// string at its end (see takeText), instead of one allocation each.
func (d *ViewDecoder) appendText() span {
	if d.peek() != '"' {
		d.fail()
		return span{}
	}
	at := len(d.text)
	start := d.pos + 1
	for i := start; i < len(d.data); i++ {
		c := d.data[i]
		if plainInString[c] {
			continue
		}
		if c == '"' {
			d.pos = i + 1
			d.text = append(d.text, d.data[start:i]...)
		} else {
			d.text = d.unquote(d.text, start, i)
		}
		return span{at, len(d.text)}
	}
	d.fail()
	return span{}
}

// takeText returns the strings read by appendText as one string, and empties d.text. Each string
// of the view keeps that one alive (the strings of one env list, map, ...): a view lives only as
// long as its review.
func (d *ViewDecoder) takeText() string {
	s := string(d.text)
	d.text = d.text[:0]
	return s
}

// unquote appends the string at data[start:] to b, unescaped, where the first byte needing care
// is at i.
func (d *ViewDecoder) unquote(b []byte, start, i int) []byte {
	data := d.data
	b = append(b, data[start:i]...)
	for i < len(data) {
		c := data[i]
		switch {
		case plainInString[c]:
			b = append(b, c)
			i++
		case c == '"':
			d.pos = i + 1
			return b
		case c == '\\':
			if i+1 >= len(data) {
				d.fail()
				return b
			}
			switch e := data[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hexRune(data[i:])
				if r < 0 {
					d.fail()
					return b
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if pair := utf16.DecodeRune(r, hexRune(data[i:])); pair != utf8.RuneError {
						b = utf8.AppendRune(b, pair)
						i += 6
						continue
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				d.fail()
				return b
			}
			i += 2
		case c < ' ':
			d.fail()
			return b
		default:
			r, size := utf8.DecodeRune(data[i:])
			b = utf8.AppendRune(b, r) // invalid UTF-8 (size 1) becomes U+FFFD
			i += size
		}
	}
	d.fail()
	return b
}

// hexRune reads the \uXXXX escape at the start of s; -1 if there is none.
func hexRune(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// Null reads a null if one is next, and reports whether it did.
func (d *ViewDecoder) Null() bool {
	if d.peek() != 'n' {
		return false
	}
	d.literal("null")
	return !d.failed
}

// Bool reads true or false.
func (d *ViewDecoder) Bool() bool {
	switch d.peek() {
	case 't':
		d.literal("true")
		return !d.failed
	case 'f':
		d.literal("false")
		return false
	}
	d.fail()
	return false
}

func (d *ViewDecoder) literal(lit string) {
	if end := d.pos + len(lit); end <= len(d.data) && string(d.data[d.pos:end]) == lit {
		d.pos = end
		return
	}
	d.fail()
}

// Skip reads a value of any type, checking that it is well formed, and drops it.
func (d *ViewDecoder) Skip() {
	var inObject [maxSkipDepth / 64]uint64 // a bit per open container: object or array
	depth := 0
	for {
		switch d.peek() { // a value starts
		case '{':
			d.pos++
			if d.peek() == '}' {
				d.pos++
				break
			}
			if depth == maxSkipDepth {
				d.fail()
				return
			}
			inObject[depth/64] |= 1 << (depth % 64)
			depth++
			d.skipName()
			continue
		case '[':
			d.pos++
			if d.peek() == ']' {
				d.pos++
				break
			}
			if depth == maxSkipDepth {
				d.fail()
				return
			}
			inObject[depth/64] &^= 1 << (depth % 64)
			depth++
			continue
		case '"':
			d.skipString()
		case 't':
			d.literal("true")
		case 'f':
			d.literal("false")
		case 'n':
			d.literal("null")
		default:
			d.skipNumber()
		}
		// A value ended: close the containers it ends, up to the next member or item.
		for {
			if depth == 0 || d.failed {
				return
			}
			object := inObject[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			c := d.peek()
			if c == ',' {
				d.pos++
				if object {
					d.skipName()
				}
				break
			}
			if object && c == '}' || !object && c == ']' {
				d.pos++
				depth--
				continue
			}
			d.fail()
			return
		}
	}
}

func (d *ViewDecoder) skipName() {
	if d.peek() != '"' {
		d.fail()
		return
	}
	d.skipString()
	if d.peek() != ':' {
		d.fail()
		return
	}
	d.pos++
}

// skipString checks the string at d.pos as encoding/json does: escapes must be valid, invalid
// UTF-8 is accepted.
func (d *ViewDecoder) skipString() {
	data := d.data
	for i := d.pos + 1; i < len(data); {
		c := data[i]
		switch {
		case plainInString[c] || c >= utf8.RuneSelf:
			i++
		case c == '"':
			d.pos = i + 1
			return
		case c == '\\' && i+1 < len(data):
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if hexRune(data[i:]) < 0 {
					d.fail()
					return
				}
				i += 6
			default:
				d.fail()
				return
			}
		default:
			d.fail()
			return
		}
	}
	d.fail()
}

// skipNumber checks a number at d.pos against JSON's grammar.
func (d *ViewDecoder) skipNumber() {
	data, i := d.data, d.pos
	digits := func() bool {
		start := i
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		digits()
	default:
		d.fail()
		return
	}
	if i < len(data) && data[i] == '.' {
		i++
		if !digits() {
			d.fail()
			return
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if !digits() {
			d.fail()
			return
		}
	}
	d.pos = i
}

// rawValue skips a value and returns its bytes (the document's).
func (d *ViewDecoder) rawValue() []byte {
	d.skipSpace()
	start := d.pos
	d.Skip()
	if d.failed {
		return nil
	}
	return d.data[start:d.pos]
}

// decodeRare decodes a member that is rarely present and complex (a typed Kubernetes struct) with
// kjson itself, into v.
func (d *ViewDecoder) decodeRare(v any) {
	raw := d.rawValue()
	if d.failed {
		return
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, v); err != nil {
		d.fail()
	}
}

// stringMap reads an object of strings into a map (non-nil, also when empty).
func (d *ViewDecoder) stringMap() map[string]string {
	pairs := d.pairs[:0]
	for more := d.Object(); more; more = d.More() {
		key := d.appendText()
		if d.peek() != ':' {
			d.fail()
			break
		}
		d.pos++
		pairs = append(pairs, key, d.appendText())
	}
	d.pairs = pairs
	text := d.takeText()
	if d.failed {
		return nil
	}
	m := make(map[string]string, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		m[text[pairs[i].start:pairs[i].end]] = text[pairs[i+1].start:pairs[i+1].end]
	}
	if len(m) != len(pairs)/2 {
		d.fail() // a key repeats
	}
	return m
}

// exactCopy returns the items read into scratch as a slice of their own (non-nil, also when
// empty), leaving scratch for the next array.
func exactCopy[T any](scratch []T) []T {
	out := make([]T, len(scratch))
	copy(out, scratch)
	return out
}

// PodView reads a pod's JSON into a view (as json.Unmarshal would, see PodView). It is meaningful
// only if the decoder has not failed.
func (d *ViewDecoder) PodView() *PodView {
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

func (d *ViewDecoder) metadata() *metadataView {
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
			m.Labels = append(json.RawMessage(nil), d.rawValue()...) // as json.RawMessage keeps it: a copy
		case "annotations":
			d.Once(&seen, 4)
			m.Annotations = d.stringMap()
		default:
			d.Skip()
		}
	}
	return m
}

func (d *ViewDecoder) spec(s *specView) {
	var seen uint32
	for more := d.Object(); more; more = d.More() {
		switch string(d.Name()) {
		case "serviceAccountName":
			d.Once(&seen, 0)
			s.ServiceAccountName = d.String()
		case "nodeSelector":
			d.Once(&seen, 1)
			s.NodeSelector = d.stringMap()
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

func (d *ViewDecoder) volumeList() []volumeView {
	d.volumes = d.volumes[:0]
	for more := d.array(); more; more = d.moreItems() {
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

func (d *ViewDecoder) secretList() []corev1.LocalObjectReference {
	d.secrets = d.secrets[:0]
	for more := d.array(); more; more = d.moreItems() {
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

func (d *ViewDecoder) containerList() []containerView {
	d.containers = d.containers[:0]
	for more := d.array(); more; more = d.moreItems() {
		c := d.container()
		d.containers = append(d.containers, c)
	}
	return exactCopy(d.containers)
}

func (d *ViewDecoder) container() containerView {
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

// envSpans is an env var being read: its strings are in d.text.
type envSpans struct {
	name, value span
	valueFrom   bool
}

func (d *ViewDecoder) envList() []envView {
	d.env = d.env[:0]
	for more := d.array(); more; more = d.moreItems() {
		var e envSpans
		var seen uint32
		for more := d.Object(); more; more = d.More() {
			switch string(d.Name()) {
			case "name":
				d.Once(&seen, 0)
				e.name = d.appendText()
			case "value":
				d.Once(&seen, 1)
				e.value = d.appendText()
			case "valueFrom":
				d.Once(&seen, 2)
				// Only whether it is set counts: any object, its members unread.
				for more := d.Object(); more; more = d.More() {
					d.skipName()
					d.Skip()
				}
				e.valueFrom = true
			default:
				d.Skip()
			}
		}
		d.env = append(d.env, e)
	}
	text := d.takeText()
	out := make([]envView, len(d.env))
	for i, e := range d.env {
		out[i].Name, out[i].Value = text[e.name.start:e.name.end], text[e.value.start:e.value.end]
		if e.valueFrom {
			out[i].ValueFrom = &struct{}{}
		}
	}
	return out
}

// stringList reads an array of strings (non-nil, also when empty).
func (d *ViewDecoder) stringList() []string {
	list := []string{}
	for more := d.array(); more; more = d.moreItems() {
		list = append(list, d.String())
	}
	return list
}

// mountSpans is a volume mount being read: its plain strings are in d.text, the rest in mount.
type mountSpans struct {
	mount                                 corev1.VolumeMount
	name, mountPath, subPath, subPathExpr span
}

// mountList reads volume mounts, every field of corev1.VolumeMount (a test fails when the API adds
// one).
func (d *ViewDecoder) mountList() []corev1.VolumeMount {
	d.mounts = d.mounts[:0]
	for more := d.array(); more; more = d.moreItems() {
		var m mountSpans
		var seen uint32
		for more := d.Object(); more; more = d.More() {
			switch string(d.Name()) {
			case "name":
				d.Once(&seen, 0)
				m.name = d.appendText()
			case "readOnly":
				d.Once(&seen, 1)
				m.mount.ReadOnly = d.Bool()
			case "recursiveReadOnly":
				d.Once(&seen, 2)
				mode := corev1.RecursiveReadOnlyMode(d.String())
				m.mount.RecursiveReadOnly = &mode
			case "mountPath":
				d.Once(&seen, 3)
				m.mountPath = d.appendText()
			case "subPath":
				d.Once(&seen, 4)
				m.subPath = d.appendText()
			case "mountPropagation":
				d.Once(&seen, 5)
				mode := corev1.MountPropagationMode(d.String())
				m.mount.MountPropagation = &mode
			case "subPathExpr":
				d.Once(&seen, 6)
				m.subPathExpr = d.appendText()
			case "bindMountOptions":
				d.Once(&seen, 7)
				m.mount.BindMountOptions = d.stringList()
			default:
				d.Skip()
			}
		}
		d.mounts = append(d.mounts, m)
	}
	text := d.takeText()
	out := make([]corev1.VolumeMount, len(d.mounts))
	for i := range d.mounts {
		m := &d.mounts[i]
		out[i] = m.mount
		out[i].Name, out[i].MountPath = text[m.name.start:m.name.end], text[m.mountPath.start:m.mountPath.end]
		out[i].SubPath, out[i].SubPathExpr = text[m.subPath.start:m.subPath.end], text[m.subPathExpr.start:m.subPathExpr.end]
	}
	return out
}
