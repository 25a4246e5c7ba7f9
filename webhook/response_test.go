package webhook

import (
	"encoding/json"
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
