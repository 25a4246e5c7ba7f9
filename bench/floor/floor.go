// Package floor is SPEC §9's baseline admission webhook, the least one can do: decode the
// AdmissionReview keeping the pod raw and answer allowed=true with a fixed JSON patch. lanyard's
// figures are measured against it: in process (webhook's BenchmarkBaseline) and over HTTPS
// (bench/load).
package floor

import (
	"encoding/json"
	"errors"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kjson "sigs.k8s.io/json"
)

// review is the review as the floor decodes it: the pod stays raw.
type review struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    *struct {
		UID    types.UID       `json:"uid"`
		Object json.RawMessage `json:"object"`
	} `json:"request"`
}

var patchType = admissionv1.PatchTypeJSONPatch

// Patch is the fixed answer.
var Patch = []byte(`[{"op":"add","path":"/metadata/annotations","value":{"lanyard.dev/injected":"aws"}}]`)

// Answer is the floor's whole work on one review body.
func Answer(body []byte) ([]byte, error) {
	var r review
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &r); err != nil {
		return nil, err
	}
	if r.Request == nil {
		return nil, errors.New("no request")
	}
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: &admissionv1.AdmissionResponse{UID: r.Request.UID, Allowed: true, Patch: Patch, PatchType: &patchType},
	})
}
