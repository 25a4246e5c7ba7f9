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
		pod  string
		want string
	}{
		"present":           {`{"metadata":{"labels":{"app":"x","lanyard.dev/inject":"disabled"}}}`, "disabled"},
		"absent":            {`{"metadata":{"labels":{"app":"x"}}}`, ""},
		"no labels":         {`{"metadata":{}}`, ""},
		"null labels":       {`{"metadata":{"labels":null}}`, ""},
		"escaped slash":     {`{"metadata":{"labels":{"lanyard.dev\/inject":"disabled"}}}`, "disabled"},
		"unicode escape":    {`{"metadata":{"labels":{"lanyard.dev\u002finject":"disabled"}}}`, "disabled"},
		"key only in value": {`{"metadata":{"labels":{"note":"lanyard.dev/inject"}}}`, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var v mutate.PodView
			require.NoError(t, json.Unmarshal([]byte(tc.pod), &v))
			assert.Equal(t, tc.want, v.Label("lanyard.dev/inject"))
		})
	}
}
