// Package jsonr reads JSON without reflection, for the admission hot path: the reading counterpart
// of internal/jsonw. It owns the tokenizing — objects, arrays, member names, strings unescaped as
// encoding/json unescapes them, literals, numbers, skipped and raw values — while the callers own
// the shapes (mutate the pod's view, webhook the AdmissionReview around it).
//
// It is a fast path with a fallback, not a JSON parser of its own: it takes JSON as the API server
// writes it — well formed, no duplicate members, no null or other type where a value is read,
// member names without escapes — and refuses anything else rather than guess. Once refused, every
// later read yields zero values and End reports false; the caller then decodes the document with
// sigs.k8s.io/json. So what a caller decodes through it must equal kjson's decode of the same
// document (the callers' fuzz tests check theirs), and the rest gets kjson's results and errors.
// Values it skips are still checked to be well formed, as kjson checks the whole document.
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
package jsonr

import (
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Decoder reads one JSON document at a time; Reset starts the next, reusing its scratch space.
type Decoder struct {
	data    []byte
	pos     int
	refused bool

	// Scratch space reused by the strings and maps of one document.
	unescaped []byte // String's, for a string with escapes
	text      []byte // StringSpan's, until TakeText
	pairs     []Span // StringMap's keys and values
}

// maxSkipDepth bounds the nesting of a skipped value (far below the 10000 at which kjson refuses a
// document, so what is skipped here kjson accepts); deeper values are refused, left to kjson.
const maxSkipDepth = 512

// NewDecoder returns a decoder reading the JSON document data.
func NewDecoder(data []byte) *Decoder {
	return &Decoder{data: data}
}

// maxKeptScratch bounds the scratch space Reset keeps, in bytes per buffer.
const maxKeptScratch = 64 << 10

// Reset readies the decoder for the document data (nil: none, so a pooled decoder does not keep
// the last one alive). It keeps its scratch space for the next document unless one made it larger
// than maxKeptScratch: one huge document must not stay in a pool.
func (d *Decoder) Reset(data []byte) {
	d.data, d.pos, d.refused = data, 0, false
	d.unescaped = keep(d.unescaped)
	d.text = keep(d.text)
	d.pairs = keep(d.pairs)
}

// keep empties scratch, or drops it when it is too large to keep. Its items hold no pointers:
// nothing stale is kept alive.
func keep[T byte | Span](scratch []T) []T {
	var item T
	if cap(scratch)*int(unsafe.Sizeof(item)) > maxKeptScratch {
		return nil
	}
	return scratch[:0]
}

// End reports whether the whole document was read: nothing was refused and only whitespace
// follows.
func (d *Decoder) End() bool {
	d.skipSpace()
	if d.pos != len(d.data) {
		d.Refuse()
	}
	return !d.refused
}

// Refuse gives up on the document, for a reason of the caller's (a value it cannot take): every
// later read finds nothing and End reports false.
func (d *Decoder) Refuse() {
	d.refused = true
	d.pos = len(d.data)
}

func (d *Decoder) skipSpace() {
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
func (d *Decoder) peek() byte {
	if d.pos < len(d.data) && d.data[d.pos] > ' ' {
		return d.data[d.pos] // the API server writes no whitespace
	}
	d.skipSpace()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// Object starts reading an object and reports whether a member follows. Anything but an object is
// refused.
func (d *Decoder) Object() bool { return d.open('{', '}') }

// More reports whether another member follows the one just read.
func (d *Decoder) More() bool { return d.next('}') }

// Name reads a member's name and the colon after it. The bytes are the document's, valid while it
// is. A name with escapes is refused: compared as written, it could not match.
func (d *Decoder) Name() []byte {
	if d.peek() != '"' {
		d.Refuse()
		return nil
	}
	start := d.pos + 1
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			name := d.data[start:i]
			d.pos = i + 1
			if !d.colon() {
				return nil
			}
			return name
		case c == '\\' || c < ' ':
			d.Refuse()
			return nil
		}
	}
	d.Refuse()
	return nil
}

func (d *Decoder) colon() bool {
	if d.peek() != ':' {
		d.Refuse()
		return false
	}
	d.pos++
	return true
}

// Once marks member i (< 32) of an object as read: a second member of the same name is refused
// (kjson keeps the last one, encoding/json merges objects).
func (d *Decoder) Once(seen *uint32, i uint) {
	bit := uint32(1) << i
	if *seen&bit != 0 {
		d.Refuse()
	}
	*seen |= bit
}

// Array starts reading an array and reports whether an item follows. Anything but an array is
// refused.
func (d *Decoder) Array() bool { return d.open('[', ']') }

// MoreItems reports whether another item follows the one just read.
func (d *Decoder) MoreItems() bool { return d.next(']') }

// open reads the opening bracket of a container and reports whether it has a first element;
// anything else is refused.
func (d *Decoder) open(opening, closing byte) bool {
	if d.peek() != opening {
		d.Refuse()
		return false
	}
	d.pos++
	if d.peek() == closing {
		d.pos++
		return false
	}
	return true
}

// next reads what follows an element of a container: a comma (true) or its closing bracket.
func (d *Decoder) next(closing byte) bool {
	switch d.peek() {
	case ',':
		d.pos++
		return true
	case closing:
		d.pos++
		return false
	}
	d.Refuse()
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
// become U+FFFD). Anything but a string is refused.
func (d *Decoder) String() string {
	if d.peek() != '"' {
		d.Refuse()
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
	d.Refuse()
	return ""
}

// StringAmong reads a string as String does, but when it is one of known — strings JSON writes as
// they are, without escapes — it returns that one instead of a copy: for members that nearly
// always hold one of a few constants, which then cost no allocation.
func (d *Decoder) StringAmong(known ...string) string {
	if d.peek() == '"' {
		rest := d.data[d.pos+1:]
		for _, k := range known {
			if len(rest) > len(k) && rest[len(k)] == '"' && string(rest[:len(k)]) == k {
				d.pos += len(k) + 2
				return k
			}
		}
	}
	return d.String()
}

// Span is where a string read by StringSpan is in the text TakeText returns.
type Span struct{ start, end int }

// In returns the spanned string of text.
func (s Span) In(text string) string { return text[s.start:s.end] }

// StringSpan reads a string as String does, into the decoder's text: the strings of a list or map
// go there and become one string at its end (TakeText), instead of one allocation each.
func (d *Decoder) StringSpan() Span {
	if d.peek() != '"' {
		d.Refuse()
		return Span{}
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
		return Span{at, len(d.text)}
	}
	d.Refuse()
	return Span{}
}

// TakeText returns the strings read by StringSpan since the last TakeText as one string, and
// empties the decoder's text. Each string cut from it keeps all of it alive (the strings of one
// env list, map, ...): fine for values that live only as long as their document.
func (d *Decoder) TakeText() string {
	s := string(d.text)
	d.text = d.text[:0]
	return s
}

// unquote appends the string at data[start:] to b, unescaped, where the first byte needing care
// is at i.
func (d *Decoder) unquote(b []byte, start, i int) []byte {
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
				d.Refuse()
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
					d.Refuse()
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
				d.Refuse()
				return b
			}
			i += 2
		case c < ' ':
			d.Refuse()
			return b
		default:
			r, size := utf8.DecodeRune(data[i:])
			b = utf8.AppendRune(b, r) // invalid UTF-8 (size 1) becomes U+FFFD
			i += size
		}
	}
	d.Refuse()
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
func (d *Decoder) Null() bool {
	if d.peek() != 'n' {
		return false
	}
	d.literal("null")
	return !d.refused
}

// Bool reads true or false. Anything else is refused.
func (d *Decoder) Bool() bool {
	switch d.peek() {
	case 't':
		d.literal("true")
		return !d.refused
	case 'f':
		d.literal("false")
		return false
	}
	d.Refuse()
	return false
}

func (d *Decoder) literal(lit string) {
	if end := d.pos + len(lit); end <= len(d.data) && string(d.data[d.pos:end]) == lit {
		d.pos = end
		return
	}
	d.Refuse()
}

// Skip reads a value of any type, checking that it is well formed, and drops it. A value nested
// deeper than maxSkipDepth is refused (kjson takes it).
func (d *Decoder) Skip() {
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
				d.Refuse()
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
				d.Refuse()
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
			if depth == 0 || d.refused {
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
			d.Refuse()
			return
		}
	}
}

// SkipObject reads an object of any members, checking that it is well formed, and drops it: for a
// member whose presence counts, not its content. Anything but an object is refused.
func (d *Decoder) SkipObject() {
	for more := d.Object(); more; more = d.More() {
		d.skipName()
		d.Skip()
	}
}

// skipName skips a member's name, escapes and all, and the colon after it.
func (d *Decoder) skipName() {
	if d.peek() != '"' {
		d.Refuse()
		return
	}
	d.skipString()
	d.colon()
}

// skipString checks the string at d.pos as encoding/json does: escapes must be valid, invalid
// UTF-8 is accepted.
func (d *Decoder) skipString() {
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
					d.Refuse()
					return
				}
				i += 6
			default:
				d.Refuse()
				return
			}
		default:
			d.Refuse()
			return
		}
	}
	d.Refuse()
}

// skipNumber checks a number at d.pos against JSON's grammar.
func (d *Decoder) skipNumber() {
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
		d.Refuse()
		return
	}
	if i < len(data) && data[i] == '.' {
		i++
		if !digits() {
			d.Refuse()
			return
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if !digits() {
			d.Refuse()
			return
		}
	}
	d.pos = i
}

// RawValue reads a value of any type as Skip does and returns its bytes: the document's, valid
// while it is; nil once refused.
func (d *Decoder) RawValue() []byte {
	d.skipSpace()
	start := d.pos
	d.Skip()
	if d.refused {
		return nil
	}
	return d.data[start:d.pos]
}

// StringMap reads an object of strings into a map (non-nil, also when empty). A key that repeats,
// also once unescaped, is refused.
func (d *Decoder) StringMap() map[string]string {
	pairs := d.pairs[:0]
	for more := d.Object(); more; more = d.More() {
		key := d.StringSpan()
		if !d.colon() {
			break
		}
		pairs = append(pairs, key, d.StringSpan())
	}
	d.pairs = pairs
	text := d.TakeText()
	if d.refused {
		return nil
	}
	m := make(map[string]string, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i].In(text)] = pairs[i+1].In(text)
	}
	if len(m) != len(pairs)/2 {
		d.Refuse() // a key repeats
	}
	return m
}

// StringList reads an array of strings (non-nil, also when empty).
func (d *Decoder) StringList() []string {
	list := []string{}
	for more := d.Array(); more; more = d.MoreItems() {
		list = append(list, d.String())
	}
	return list
}
