package webhook

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	kjson "sigs.k8s.io/json"
)

// FuzzReview feeds arbitrary bodies to the admission handler (the webhook's untrusted input).
// Properties: no panic; an answer is either an HTTP error status or a valid AdmissionReview that
// echoes the uid; a patch only adds and applies to the object that was sent; applying it and
// reviewing again yields no patch.
func FuzzReview(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "reviews", "*.json"))
	require.NoError(f, err)
	for _, file := range files {
		body, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(body)
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"kind":"Pod"},"resource":{"resource":"pods"},"operation":"CREATE","namespace":"team-a","object":{"metadata":{"annotations":{"lanyard.dev/containers":"a"}},"spec":{"serviceAccountName":"irsa","containers":[{"name":"a","env":[{"name":"AWS_ROLE_ARN","valueFrom":{}}]}]}}}}`))
	m, _ := newMutator(testPolicy())
	m.Metrics = nil
	f.Fuzz(func(t *testing.T, body []byte) {
		out, _, herr := m.Review(context.Background(), body)
		if herr != nil {
			require.GreaterOrEqual(t, herr.status, 400)
			return
		}
		var resp admissionv1.AdmissionReview
		require.NoError(t, json.Unmarshal(out, &resp), "the response is valid JSON: %s", out)
		require.NotNil(t, resp.Response)
		var req struct {
			Request struct {
				UID    string          `json:"uid"`
				Object json.RawMessage `json:"object"`
			} `json:"request"`
		}
		// Read the review as the handler does (case-sensitive field names).
		require.NoError(t, kjson.UnmarshalCaseSensitivePreserveInts(body, &req), "an answered review was valid JSON")
		require.Equal(t, req.Request.UID, string(resp.Response.UID))
		if len(resp.Response.Patch) == 0 {
			return
		}
		var ops []map[string]any
		require.NoError(t, json.Unmarshal(resp.Response.Patch, &ops))
		for _, op := range ops {
			require.Equal(t, "add", op["op"])
		}
		// The API server sends objects as it encodes them: valid UTF-8, no duplicate keys. Only
		// for such objects is "the patch applies" a meaningful property (JSON Patch libraries
		// disagree on duplicate keys and invalid UTF-8).
		var canonical any
		strict, err := kjson.UnmarshalStrict(req.Request.Object, &canonical, kjson.DisallowDuplicateFields)
		if err != nil || len(strict) > 0 || !utf8.Valid(req.Request.Object) {
			return
		}
		patch, err := jsonpatch.DecodePatch(resp.Response.Patch)
		require.NoError(t, err)
		patched, err := patch.Apply(req.Request.Object)
		require.NoError(t, err, "the patch applies to the object sent")

		// Review the patched pod again: nothing more to add.
		var generic map[string]any
		require.NoError(t, kjson.UnmarshalCaseSensitivePreserveInts(body, &generic))
		generic["request"].(map[string]any)["object"] = json.RawMessage(patched)
		again, err := json.Marshal(generic)
		require.NoError(t, err)
		out2, _, herr2 := m.Review(context.Background(), again)
		require.Nil(t, herr2)
		var resp2 admissionv1.AdmissionReview
		require.NoError(t, json.Unmarshal(out2, &resp2))
		require.Empty(t, resp2.Response.Patch, "reinvocation adds nothing")
	})
}
