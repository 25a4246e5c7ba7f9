package manifest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzSplit: any input splits without panicking; every document's bytes come from the input in
// order, and a parsed document's JSON is valid.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n# c\n---\nkind: List\nitems: []\n"))
	f.Add([]byte("--- # x\n{\"a\": 1}\n...\n---\n- 1\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Split("fuzz.yaml", data)
		if err != nil {
			return
		}
		rest := data
		for _, d := range docs {
			i := bytes.Index(rest, d.Raw)
			require.GreaterOrEqual(t, i, 0, "document %d's bytes come from the input", d.Index)
			rest = rest[i+len(d.Raw):]
			if d.JSON != nil {
				require.True(t, json.Valid(d.JSON), "document %d: valid JSON", d.Index)
			}
		}
	})
}
