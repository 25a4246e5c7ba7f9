package mutate_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-dev/lanyard/mutate"
)

func TestPodViewLabel(t *testing.T) {
	tests := map[string]struct {
		pod     string
		want    string
		wantErr string
	}{
		"present":           {`{"metadata":{"labels":{"app":"x","lanyard.dev/inject":"disabled"}}}`, "disabled", ""},
		"absent":            {`{"metadata":{"labels":{"app":"x"}}}`, "", ""},
		"no labels":         {`{"metadata":{}}`, "", ""},
		"null labels":       {`{"metadata":{"labels":null}}`, "", ""},
		"escaped slash":     {`{"metadata":{"labels":{"lanyard.dev\/inject":"disabled"}}}`, "disabled", ""},
		"unicode escape":    {`{"metadata":{"labels":{"lanyard.dev\u002finject":"disabled"}}}`, "disabled", ""},
		"key only in value": {`{"metadata":{"labels":{"note":"lanyard.dev/inject"}}}`, "", ""},
		"a value that is not a string is an error, not an absent label": {
			`{"metadata":{"labels":{"lanyard.dev/inject":false}}}`, "", "metadata.labels must map label names to strings: found a JSON bool"},
		"labels that are not an object are an error": {
			`{"metadata":{"labels":["lanyard.dev/inject"]}}`, "", "metadata.labels must map label names to strings: found a JSON array"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var v mutate.PodView
			require.NoError(t, json.Unmarshal([]byte(tc.pod), &v))
			got, err := v.Label("lanyard.dev/inject")
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// A pod whose JSON has no metadata member: both renderings create it before the annotations, and
// the patch applies.
func TestCreateMetadata(t *testing.T) {
	raw := []byte(`{"spec":{"serviceAccountName":"app","containers":[{"name":"a","image":"x"}]}}`)
	var v mutate.PodView
	require.NoError(t, json.Unmarshal(raw, &v))
	require.False(t, v.HasMetadata())
	ch, err := mutate.Compute(v.Pod(), fuzzApplied(0x03), mutate.Options{})
	require.NoError(t, err)
	ch.CreateMetadata()

	want, err := json.Marshal(ch.Patch())
	require.NoError(t, err)
	got, err := ch.AppendPatchJSON(nil, "")
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
	patched := applyPatch(t, raw, ch.Patch())
	pod, err := mutate.DecodePod(patched)
	require.NoError(t, err)
	assert.Equal(t, "aws", pod.Annotations["lanyard.dev/injected"])
}
