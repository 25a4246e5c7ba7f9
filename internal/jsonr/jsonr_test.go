package jsonr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readString reads data as one JSON string both ways jsonr reads strings, requiring them to agree.
func readString(t testing.TB, data []byte) (string, bool) {
	t.Helper()
	d := NewDecoder(data)
	s := d.String()
	ok := d.End()

	spans := NewDecoder(data)
	spans.text = append(spans.text, "before"...) // a span starts where the text ends
	span := spans.StringSpan()
	spanOK := spans.End()
	require.Equal(t, ok, spanOK, "String and StringSpan take the same strings")
	if ok {
		require.Equal(t, s, span.In(spans.TakeText()), "String and StringSpan read the same")
	}

	among := NewDecoder(data)
	known := among.StringAmong("", "a", "CREATE", "pöd")
	require.Equal(t, ok, among.End(), "String and StringAmong take the same strings")
	if ok {
		require.Equal(t, s, known, "String and StringAmong read the same")
	}
	return s, ok
}

func TestStringUnescapesAsEncodingJSON(t *testing.T) {
	tests := map[string]string{
		"plain":                                `"arn:aws:iam::111122223333:role/x"`,
		"empty":                                `""`,
		"every short escape":                   `"\"\\\/\b\f\n\r\t"`,
		"unicode escapes in either case":       `"\u003cb\u003E \u0026 \u00e9"`,
		"surrogate pairs":                      `"\ud83d\ude00 \uD83D\uDE00"`,
		"lone and reversed surrogates":         `"\ud83d x \ude00 \ude00\ud83d \ud83d\u0041 \ud83d\ud83d\ude00 \ud83d"`,
		"non-ASCII is kept":                    `"pöd-日本-😀"`,
		"invalid UTF-8 becomes U+FFFD":         "\"a\xffb\xc3(c\xed\xa0\x80\"",
		"invalid UTF-8 after an escape":        "\"\\n\xff\"",
		"whitespace around":                    " \t\r\n\"x\" \n",
		"escapes after plain text":             `"abc\ndef"`,
		"a quote right after a unicode escape": `"\u0041"`,
		"a known string":                       `"CREATE"`,
		"a known string escaped":               `"CRE\u0041TE"`,
		"a known string's prefix":              `"CREAT"`,
		"a known string extended":              `"CREATED"`,
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := readString(t, []byte(data))
			require.True(t, ok, "refused")
			var want string
			require.NoError(t, json.Unmarshal([]byte(data), &want))
			assert.Equal(t, want, got)
		})
	}
}

func TestStringRefusesWhatIsNotAString(t *testing.T) {
	tests := map[string]string{
		"empty":                       ``,
		"null":                        `null`,
		"a number":                    `1`,
		"an object":                   `{}`,
		"unterminated":                `"abc`,
		"unterminated escape":         `"abc\`,
		"control character":           "\"a\nb\"",
		"invalid escape":              `"\x"`,
		"short unicode escape":        `"\u12"`,
		"non-hex unicode":             `"\u12g4"`,
		"single quotes":               `'a'`,
		"trailing data":               `"a" "b"`,
		"unterminated after \\":       `"\n`,
		"a known string unterminated": `"CREATE`,
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			_, ok := readString(t, []byte(data))
			assert.False(t, ok)
		})
	}
}

func TestObjectMembers(t *testing.T) {
	read := func(data string) (map[string]string, bool) {
		d := NewDecoder([]byte(data))
		got := map[string]string{}
		var seen uint32
		for more := d.Object(); more; more = d.More() {
			switch name := string(d.Name()); name {
			case "a":
				d.Once(&seen, 0)
				got[name] = d.String()
			case "b":
				d.Once(&seen, 1)
				got[name] = d.String()
			default:
				d.Skip()
			}
		}
		return got, d.End()
	}
	t.Run("members read, the rest skipped", func(t *testing.T) {
		got, ok := read(` { "x" : [1, {"y": null}] , "b":"2", "a" : "1" } `)
		require.True(t, ok)
		assert.Equal(t, map[string]string{"a": "1", "b": "2"}, got)
	})
	refused := map[string]string{
		"a repeated member":                 `{"a":"1","a":"2"}`,
		"an escaped name":                   `{"\u0061":"1"}`,
		"a name without a colon":            `{"a" "1"}`,
		"a trailing comma":                  `{"a":"1",}`,
		"an unquoted name":                  `{a:"1"}`,
		"a value of another type":           `{"a":1}`,
		"null for a value":                  `{"a":null}`,
		"an unterminated object":            `{"a":"1"`,
		"not an object":                     `["a"]`,
		"malformed JSON in a skipped value": `{"x":tru}`,
	}
	for name, data := range refused {
		t.Run(name+" is refused", func(t *testing.T) {
			_, ok := read(data)
			assert.False(t, ok)
		})
	}
}

func TestStringMap(t *testing.T) {
	tests := map[string]struct {
		data string
		want map[string]string // nil: refused
	}{
		"empty is not nil":                  {`{}`, map[string]string{}},
		"escaped keys and values":           {`{"a\u002fb":"\u003c","\ud83d\ude00":"pair"}`, map[string]string{"a/b": "<", "😀": "pair"}},
		"a repeated key":                    {`{"a":"1","a":"2"}`, nil},
		"a repeated key once unescaped":     {`{"a":"1","\u0061":"2"}`, nil},
		"a value of another type":           {`{"a":1}`, nil},
		"a null value":                      {`{"a":null}`, nil},
		"a missing colon":                   {`{"a" "1"}`, nil},
		"not an object":                     {`["a"]`, nil},
		"null":                              {`null`, nil},
		"a trailing comma":                  {`{"a":"1",}`, nil},
		"an object value":                   {`{"a":{}}`, nil},
		"whitespace around keys and values": {` { "a" : "1" , "b" : "2" } `, map[string]string{"a": "1", "b": "2"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder([]byte(tc.data))
			got := d.StringMap()
			if !d.End() {
				assert.Nil(t, tc.want, "refused")
				return
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestStringList(t *testing.T) {
	d := NewDecoder([]byte(`[]`))
	assert.Equal(t, []string{}, d.StringList(), "empty is not nil")
	assert.True(t, d.End())

	d = NewDecoder([]byte(`["a","\u0062"]`))
	assert.Equal(t, []string{"a", "b"}, d.StringList())
	assert.True(t, d.End())

	for _, data := range []string{`null`, `["a",1]`, `["a",]`, `{}`} {
		d = NewDecoder([]byte(data))
		d.StringList()
		assert.False(t, d.End(), data)
	}
}

func TestBoolAndNull(t *testing.T) {
	tests := map[string]struct {
		data       string
		null, want bool
		ok         bool
	}{
		"true":              {data: `true`, want: true, ok: true},
		"false":             {data: `false`, ok: true},
		"null":              {data: `null`, null: true, ok: true},
		"a string for bool": {data: `"true"`},
		"true run on":       {data: `truex`},
		"false run on":      {data: `falsey`},
		"misspelt null":     {data: `nul`},
		"short true":        {data: `tru`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder([]byte(tc.data))
			null := d.Null()
			var got bool
			if !null {
				got = d.Bool()
			}
			ok := d.End()
			assert.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, tc.null, null)
				assert.Equal(t, tc.want, got)
			}
		})
	}
}

func TestSkipObjectTakesAnyObject(t *testing.T) {
	for data, ok := range map[string]bool{
		`{}`: true,
		`{"secretKeyRef":{"name":"s"},"x\u0041":[1]}`: true,
		`[]`:              false,
		`null`:            false,
		`{"a":1,}`:        false,
		`{"a" 1}`:         false,
		`{"a":[1}`:        false,
		`"not an object"`: false,
	} {
		d := NewDecoder([]byte(data))
		d.SkipObject()
		assert.Equal(t, ok, d.End(), data)
	}
}

func TestRawValueKeepsTheBytes(t *testing.T) {
	d := NewDecoder([]byte(`{"labels": { "app" : "x", "b\u002fc":"d" } }`))
	require.True(t, d.Object())
	require.Equal(t, "labels", string(d.Name()))
	raw := d.RawValue()
	require.False(t, d.More())
	require.True(t, d.End())
	assert.Equal(t, `{ "app" : "x", "b\u002fc":"d" }`, string(raw))

	d = NewDecoder([]byte(`[1,}`))
	assert.Nil(t, d.RawValue(), "refused")
}

// Skip takes exactly the well formed JSON values, nested up to its bound.
func TestSkipTakesWellFormedJSON(t *testing.T) {
	tests := map[string]string{
		"empty":                             ``,
		"only whitespace":                   ` `,
		"every type":                        `{"a":[{},[],[[{}]],true,false,null,0,-0,1E2,0.5e-1,-1.5e+3,"\u00e9\"\\"],"\u0062":{}}`,
		"trailing data":                     `{} {}`,
		"trailing comma":                    `{"a":1,}`,
		"trailing comma in a list":          `[1,]`,
		"missing colon":                     `{"a" 1}`,
		"unquoted name":                     `{a:1}`,
		"mismatched brackets":               `[1}`,
		"control character in a string":     "\"a\tb\"",
		"invalid escape":                    `"\'"`,
		"short unicode escape":              `"\u12g4"`,
		"invalid UTF-8 is accepted":         "\"\xff\"",
		"leading zero":                      `01`,
		"bare minus":                        `-`,
		"fraction without digits":           `1.`,
		"exponent without digits":           `1e+`,
		"plus sign":                         `+1`,
		"misspelt literal":                  `nul`,
		"literal run on":                    `truex`,
		"byte order mark":                   "\xef\xbb\xbf{}",
		"NUL":                               "{}\x00",
		"nested as deep as it skips":        strings.Repeat(`[`, maxSkipDepth) + `1` + strings.Repeat(`]`, maxSkipDepth),
		"empty containers do not nest":      strings.Repeat(`[`, maxSkipDepth) + `[],{}` + strings.Repeat(`]`, maxSkipDepth),
		"a string ending the document":      `"abc`,
		"a name ending the document":        `{"a"`,
		"an escape ending the document":     `"\`,
		"a member without a value":          `{"a":}`,
		"a list closed by a brace":          `[}`,
		"an object closed by a bracket":     `{"a":1]`,
		"a number with two fractions":       `1.2.3`,
		"a negative number without digits":  `-a`,
		"numbers in every form":             `[0,-0,0.0,1e5,1E-5,-12.5e+10]`,
		"a number with a leading dot":       `.5`,
		"a number with an exponent and dot": `1e5.5`,
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder([]byte(data))
			d.Skip()
			assert.Equal(t, json.Valid([]byte(data)), d.End())
		})
	}
	t.Run("nesting deeper than it skips is refused", func(t *testing.T) {
		data := []byte(strings.Repeat(`[`, maxSkipDepth+1) + `1` + strings.Repeat(`]`, maxSkipDepth+1))
		require.True(t, json.Valid(data))
		d := NewDecoder(data)
		d.Skip()
		assert.False(t, d.End())
	})
}

// Reset starts the next document afresh, also after a refused one, and keeps only scratch space of
// a bounded size.
func TestResetReadsTheNextDocument(t *testing.T) {
	d := NewDecoder([]byte(`{"a":1`))
	d.Skip()
	require.False(t, d.End())

	d.Reset([]byte(`{"a":"x\ty","b":"z"}`))
	assert.Equal(t, map[string]string{"a": "x\ty", "b": "z"}, d.StringMap())
	assert.True(t, d.End())
	assert.NotNil(t, d.text, "small scratch space is kept")

	huge := `"` + strings.Repeat("x", maxKeptScratch+1) + `"`
	d.Reset([]byte(huge))
	d.StringSpan()
	require.Len(t, d.TakeText(), maxKeptScratch+1)
	d.Reset(nil)
	assert.Nil(t, d.text, "scratch space beyond the bound is dropped")
	assert.Nil(t, d.data, "the last document is not kept")
}

// Once refused, a decoder reads nothing more.
func TestRefusedReadsNothing(t *testing.T) {
	d := NewDecoder([]byte(`{"a":"b"}`))
	d.Refuse()
	assert.False(t, d.Object())
	assert.Nil(t, d.Name())
	assert.Empty(t, d.String())
	assert.False(t, d.Bool())
	assert.Nil(t, d.RawValue())
	assert.Nil(t, d.StringMap())
	assert.False(t, d.End())
}

// FuzzStringAgrees: String (and StringSpan) take exactly the JSON strings encoding/json takes, and
// unescape them alike.
func FuzzStringAgrees(f *testing.F) {
	for _, s := range []string{`"a"`, `"\"\\\/\b\f\n\r\t"`, `"\u003c\ud83d\ude00\ud83d\u0041\ude00"`, "\"\xff\xc3(\"", `"\u12"`, " \"x\" "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := readString(t, data)
		var v any
		isString := json.Unmarshal(data, &v) == nil
		if isString {
			_, isString = v.(string)
		}
		require.Equal(t, isString, ok, "taken by encoding/json as a string: %v, by jsonr: %v", isString, ok)
		if ok {
			require.Equal(t, v, got)
		}
	})
}

// FuzzSkipAgrees: Skip takes exactly what encoding/json finds valid (unless it nests deeper than
// Skip goes), and RawValue returns the value as written.
func FuzzSkipAgrees(f *testing.F) {
	for _, s := range []string{`{"a":[{},[],true,false,null,-1.5e+3,"\u00e9"]}`, `[1,]`, `01`, "\"\xff\"", `{"\u0061":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(data)
		raw := d.RawValue()
		ok := d.End()
		valid := json.Valid(data)
		if !valid {
			require.False(t, ok, "took malformed JSON")
			return
		}
		if depth(data) > maxSkipDepth {
			require.False(t, ok, "skipped deeper than its bound")
			return
		}
		require.True(t, ok, "refused valid JSON")
		require.Equal(t, string(bytes.TrimSpace(data)), string(raw))
	})
}

// depth is how deeply valid JSON nests objects and arrays that are not empty (an empty one holds
// no value: Skip does not count it).
func depth(data []byte) int {
	deepest, n, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			if next := bytes.TrimLeft(data[i+1:], " \t\r\n"); next[0] == c+2 { // '}' or ']'
				i = len(data) - len(next) // past the empty one, its end too
				continue
			}
			n++
			deepest = max(deepest, n)
		case c == '}' || c == ']':
			n--
		}
	}
	return deepest
}
