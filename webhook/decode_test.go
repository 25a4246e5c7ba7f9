package webhook

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
)

// apiServerReview is a pod CREATE review as the API server writes it (the benchmark pod with a
// valueFrom env var per container), with annotations escaped as the API server escapes them.
func apiServerReview(t testing.TB, containers, env, volumes int) []byte {
	t.Helper()
	pod := benchPod(containers, env, volumes)
	pod.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"a":"<b> & é"}`}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		c.Env = append(c.Env, corev1.EnvVar{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}})
	}
	return podCreateReview(t, pod)
}

func reviewFiles(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "reviews", "*.json"))
	require.NoError(t, err)
	bodies := map[string][]byte{}
	for _, file := range files {
		body, err := os.ReadFile(file)
		require.NoError(t, err)
		bodies[filepath.Base(file)] = body
	}
	return bodies
}

// requireSameDecode checks that the fast decoder's review, if it took the body, is the one kjson
// decodes, and reports whether it took it.
func requireSameDecode(t *testing.T, body []byte) bool {
	t.Helper()
	fast, ok := decodeReviewFast(body)
	if !ok {
		require.Equal(t, reviewRequest{}, fast)
		return false
	}
	var slow reviewRequest
	require.NoError(t, kjson.UnmarshalCaseSensitivePreserveInts(body, &slow), "the fast decoder took what kjson refuses")
	require.Equal(t, slow, fast)
	return true
}

// Reviews as the API server writes them take the fast path and decode as kjson decodes them;
// the unusual ones are left to kjson.
func TestFastDecodeTakesReviewsAsTheAPIServerWritesThem(t *testing.T) {
	leftToKJSON := map[string]bool{
		"malformed.json":        true, // not JSON: kjson's error
		"object-not-a-pod.json": true, // kjson's error names the field
	}
	for name, body := range reviewFiles(t) {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, !leftToKJSON[name], requireSameDecode(t, body))
		})
	}
	for _, size := range [][3]int{{1, 10, 2}, {20, 200, 30}, {3, 0, 0}} {
		t.Run(fmt.Sprintf("containers=%d,env=%d,volumes=%d", size[0], size[1], size[2]), func(t *testing.T) {
			assert.True(t, requireSameDecode(t, apiServerReview(t, size[0], size[1], size[2])))
		})
	}
}

// The envelope: what the fast decoder does not handle, kjson decodes, and Review answers as
// before.
func TestFastDecodeLeavesTheUnusualEnvelopeToKJSON(t *testing.T) {
	const pod = `{"metadata":{"name":"p"},"spec":{"serviceAccountName":"app","containers":[{"name":"a","image":"x"}]}}`
	review := func(request string) string {
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":` + request + `}`
	}
	tests := map[string]struct {
		body string
		fast bool
	}{
		"all it reads":               {review(`{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","resource":"pods"},"subResource":"","namespace":"team-a","operation":"CREATE","dryRun":true,"object":` + pod + `}`), true},
		"escaped strings":            {review(`{"uid":"\u0075","namespace":"team\u002da","operation":"CRE\u0041TE","object":` + pod + `}`), true},
		"null object as in a DELETE": {review(`{"uid":"u","operation":"DELETE","object":null,"oldObject":` + pod + `}`), true},
		"unknown members skipped":    {`{"x":[{"y":[null,true,{"z":-1.0e3}]}],"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"userInfo":{"groups":["a","b"],"extra":{}},"uid":"u","options":{"kind":"CreateOptions"}}}`, true},
		"empty request":              {review(`{}`), true},
		"empty object":               {review(`{"uid":"u","object":{}}`), true},

		"repeated uid":                               {review(`{"uid":"a","uid":"b"}`), false},
		"repeated request":                           {`{"request":{},"request":{"uid":"u"}}`, false},
		"repeated kind member":                       {review(`{"kind":{"kind":"Pod","kind":"Pod"}}`), false},
		"repeated object":                            {review(`{"object":{},"object":` + pod + `}`), false},
		"null request":                               {`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`, false},
		"null dryRun":                                {review(`{"uid":"u","dryRun":null}`), false},
		"null uid":                                   {review(`{"uid":null}`), false},
		"a string for dryRun":                        {review(`{"uid":"u","dryRun":"true"}`), false},
		"a number for the uid":                       {review(`{"uid":1}`), false},
		"an escaped member name":                     {review(`{"\u0075id":"u"}`), false},
		"names are case-sensitive":                   {`{"APIVersion":"admission.k8s.io/v1","Kind":"AdmissionReview","Request":{"uid":"u"}}`, true},
		"a review that is a list":                    {`[]`, false},
		"trailing data":                              {review(`{"uid":"u"}`) + `{}`, false},
		"malformed JSON in a member that is skipped": {review(`{"uid":"u","options":{"a":tru}}`), false},
	}
	m, _ := newMutator(testPolicy())
	m.Metrics = nil
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.fast, requireSameDecode(t, []byte(tc.body)))
			// Whichever way it was decoded, Review answers: no panic, an answer or an HTTP error.
			out, _, herr := m.Review(t.Context(), []byte(tc.body))
			assert.True(t, herr != nil || json.Valid(out))
		})
	}
}

// FuzzFastDecodeAgrees: a review the fast decoder takes, kjson takes too and decodes to the same
// reviewRequest (the pod's view included, labels as the same bytes).
func FuzzFastDecodeAgrees(f *testing.F) {
	for _, body := range reviewFiles(f) {
		f.Add(body)
	}
	f.Add(apiServerReview(f, 1, 10, 2))
	f.Add(apiServerReview(f, 2, 3, 7))
	f.Fuzz(func(t *testing.T, body []byte) {
		requireSameDecode(t, body)
	})
}

// BenchmarkDecodeReview compares the decoders on the benchmark's pod shapes: the fast path, the
// kjson decode it replaces, and kjson keeping the pod raw (the floor's decode).
func BenchmarkDecodeReview(b *testing.B) {
	for _, bc := range []struct {
		name                     string
		containers, env, volumes int
	}{{"typical", 1, 10, 2}, {"large", 20, 200, 30}} {
		body := apiServerReview(b, bc.containers, bc.env, bc.volumes)
		b.Run(bc.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, ok := decodeReviewFast(body); !ok {
					b.Fatal("not taken")
				}
			}
		})
		b.Run(bc.name+"/kjson", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var review reviewRequest
				if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &review); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/kjson-raw-pod", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var review rawReviewRequest
				if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &review); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
