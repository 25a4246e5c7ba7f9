package mutate

import (
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
)

// DecodePod decodes a pod's JSON as the API server does: field names match case-sensitively, so
// the typed pod read here describes exactly the JSON members the patch will address.
func DecodePod(raw []byte) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, pod); err != nil {
		return nil, err
	}
	return pod, nil
}
