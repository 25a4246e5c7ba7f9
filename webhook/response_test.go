package webhook

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/mutate"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// TestResponseJSONMatchesEncodingJSON: the hand-written response decodes to exactly what
// encoding/json writes for the equivalent admissionv1.AdmissionReview.
func TestResponseJSONMatchesEncodingJSON(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{{Name: "X", Value: "1"}}}}}}
	changes, err := mutate.Compute(pod, &policy.Applied{Identity: policy.Identity{
		AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: "arn:aws:iam::111122223333:role/r", STSRegionalEndpoints: true},
	}}, mutate.Options{})
	require.NoError(t, err)

	tests := map[string]response{
		"allowed, nothing else": {uid: "u-1", allowed: true},
		"patch, audit, warnings": {uid: "u-2", allowed: true, changes: changes, injected: []string{"aws", "registry/acr"},
			warnings: []string{`container "a" already sets X: "quoted" \ and <html>`, "second\nline"}},
		"denied": {uid: "u\"3", allowed: false, result: &metav1.Status{Status: metav1.StatusFailure, Code: 422,
			Reason: metav1.StatusReasonInvalid, Message: "pod annotation lanyard.dev/token-expiration: invalid value \"5\""}},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := r.appendJSON(nil, 0)
			require.NoError(t, err)

			want := admissionv1.AdmissionResponse{UID: r.uid, Allowed: r.allowed, Result: r.result}
			if r.changes != nil {
				want.Patch, err = json.Marshal(r.changes.Patch())
				require.NoError(t, err)
				pt := admissionv1.PatchTypeJSONPatch
				want.PatchType = &pt
			}
			if len(r.injected) > 0 {
				want.AuditAnnotations = map[string]string{"injected": "aws,registry/acr"}
			}
			for _, w := range r.warnings {
				want.Warnings = append(want.Warnings, "lanyard: "+w)
			}
			wantJSON, err := json.Marshal(admissionv1.AdmissionReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Response: &want})
			require.NoError(t, err)

			var gotReview, wantReview admissionv1.AdmissionReview
			require.NoError(t, json.Unmarshal(got, &gotReview), "valid JSON: %s", got)
			require.NoError(t, json.Unmarshal(wantJSON, &wantReview))
			if r.changes != nil { // same operations; byte order of map keys may differ
				require.JSONEq(t, string(wantReview.Response.Patch), string(gotReview.Response.Patch))
				gotReview.Response.Patch, wantReview.Response.Patch = nil, nil
			}
			require.Equal(t, wantReview, gotReview)
		})
	}
}

// The patch is base64-encoded where it was rendered, after the rest of the answer: the encoding
// is base64.StdEncoding's and what comes before it is left alone.
func TestEncodeBase64InPlaceMatchesStdEncoding(t *testing.T) {
	for n := range 70 {
		t.Run(fmt.Sprintf("%d bytes", n), func(t *testing.T) {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i*151 + n) // every bit pattern in time, all 3 positions of a group
			}
			prefix := `{"patch":"`
			got := encodeBase64InPlace(append([]byte(prefix), data...), len(prefix))
			require.Equal(t, prefix+base64.StdEncoding.EncodeToString(data), string(got))
		})
	}
}

func FuzzEncodeBase64InPlace(f *testing.F) {
	f.Add([]byte("prefix"), []byte(`[{"op":"add"}]`), 0)
	f.Fuzz(func(t *testing.T, prefix, data []byte, spare int) {
		b := make([]byte, 0, len(prefix)+len(data)+spare&63) // room to grow into, or not
		b = append(append(b, prefix...), data...)
		got := encodeBase64InPlace(b, len(prefix))
		require.Equal(t, string(prefix)+base64.StdEncoding.EncodeToString(data), string(got))
	})
}

// The patch's volumes are byte for byte what encoding/json writes for them: the token volumes
// lanyard adds are written without reflection, anything else (GCP's downward API source, strings
// encoding/json escapes) through it.
func TestPatchVolumesAreWhatEncodingJSONWrites(t *testing.T) {
	tests := map[string]policy.Identity{
		"AWS IRSA":                         {AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: "arn:aws:iam::111122223333:role/r"}},
		"AWS IRSA, an audience of its own": {AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: "arn:aws:iam::111122223333:role/r", Audience: "api://x-y.z", TokenExpirationSeconds: 600}},
		"AWS IRSA, an audience escaped":    {AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: "arn:aws:iam::111122223333:role/r", Audience: `a&b<c>"d"\é`}},
		"AWS Pod Identity":                 {AWS: &policy.AWS{Mode: v1alpha1.AWSModePodIdentity}},
		"Azure":                            {Azure: &policy.Azure{ClientID: "c", TenantID: "t"}},
		"GCP":                              {GCP: &policy.GCP{WorkloadIdentityProvider: "projects/1/locations/global/workloadIdentityPools/p/providers/q", ServiceAccountEmail: "sa@p.iam.gserviceaccount.com"}},
		"every provider":                   {AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: "arn:aws:iam::111122223333:role/r"}, Azure: &policy.Azure{ClientID: "c", TenantID: "t"}, GCP: &policy.GCP{WorkloadIdentityProvider: "p", ServiceAccountEmail: "e"}},
	}
	for name, identity := range tests {
		t.Run(name, func(t *testing.T) {
			for _, pod := range []*corev1.Pod{
				{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}},
				{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}, Volumes: []corev1.Volume{{Name: "v"}}}},
			} {
				changes, err := mutate.Compute(pod, &policy.Applied{Identity: identity}, mutate.Options{})
				require.NoError(t, err)
				written, err := changes.AppendPatchJSON(nil, "")
				require.NoError(t, err)
				var got []struct {
					Path  string          `json:"path"`
					Value json.RawMessage `json:"value"`
				}
				require.NoError(t, json.Unmarshal(written, &got))
				want := changes.Patch()
				require.Len(t, got, len(want))
				volumes := 0
				for i, op := range want {
					if !strings.HasPrefix(op.Path, "/spec/volumes") {
						continue
					}
					volumes++
					js, err := json.Marshal(op.Value)
					require.NoError(t, err)
					require.Equal(t, string(js), string(got[i].Value), op.Path)
				}
				require.Positive(t, volumes)
			}
		})
	}
}
