package jsonw

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStringMatchesEncodingJSON(t *testing.T) {
	tests := map[string]string{
		"plain":            "arn:aws:iam::111122223333:role/x",
		"empty":            "",
		"quotes and slash": `a "quoted" \ back\slash`,
		"control chars":    "tab\tnew\nline\rcr\x00nul\x1f",
		"unicode":          "héllo wörld ✓ 日本",
		"invalid utf8":     "bad\xffbyte\xc3",
		"line separators":  "a\u2028b\u2029c",
		"html":             "<a>&</a>",
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			got := String(nil, s)
			var back string
			require.NoError(t, json.Unmarshal(got, &back), "valid JSON: %s", got)
			var want string
			js, _ := json.Marshal(s)
			require.NoError(t, json.Unmarshal(js, &want))
			assert.Equal(t, want, back, "decodes to what encoding/json's encoding decodes to")
		})
	}
}

func FuzzString(f *testing.F) {
	f.Add("x\"y\\z\n\x00\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		got := String(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(got, &back))
		js, _ := json.Marshal(s)
		var want string
		require.NoError(t, json.Unmarshal(js, &want))
		require.Equal(t, want, back)
	})
}
