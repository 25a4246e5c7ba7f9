package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/policy"
)

// reviewIn is an AdmissionReview of a pod CREATE in the request namespace ns (the namespace the
// API server admits the pod to, whatever the object says).
func reviewIn(ns, object string) []byte {
	return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"safety-1",` +
		`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},` +
		`"namespace":"` + ns + `","operation":"CREATE","object":` + object + `}}`)
}

// answer runs one review through m and returns the response and its patch as text.
func answer(t *testing.T, m *PodMutator, body []byte) (*admissionv1.AdmissionResponse, string) {
	t.Helper()
	out, _, herr := m.Review(context.Background(), body)
	require.Nil(t, herr)
	var review admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(out, &review))
	require.NotNil(t, review.Response)
	return review.Response, string(review.Response.Patch)
}

// A pod never gets an identity its ServiceAccount is not associated with: not through its own
// labels or annotations, another namespace's ServiceAccount, ServiceAccount name tricks, pre-set
// lanyard annotations, or compat annotations when they are switched off.
func TestNoIdentityThatIsNotAssociated(t *testing.T) {
	container := `"containers":[{"name":"app","image":"registry.example.com/app:1"}]`
	tests := map[string]struct {
		namespace string
		object    string
		compatOff bool
	}{
		"the pod's labels name lanyard's and the anchors' keys": {
			object: `{"metadata":{"labels":{"azure.workload.identity/use":"true","lanyard.dev/inject":"enabled","eks.amazonaws.com/role-arn":"x"}},` +
				`"spec":{"serviceAccountName":"nobody",` + container + `}}`,
		},
		"the pod's annotations name a role, a client ID and a provider": {
			object: `{"metadata":{"annotations":{"` + policy.EKSRoleARN + `":"` + irsaRoleARN + `","azure.workload.identity/client-id":"` + azureClientID +
				`","` + policy.AnnotationGCPCredentialConfig + `":"{}"}},"spec":{"serviceAccountName":"nobody",` + container + `}}`,
		},
		"a ServiceAccount of that name is associated in another namespace": {
			namespace: "elsewhere",
			object:    `{"metadata":{"namespace":"elsewhere"},"spec":{"serviceAccountName":"irsa",` + container + `}}`,
		},
		"the object claims the associated namespace, the request is for another": {
			namespace: "elsewhere",
			object:    `{"metadata":{"namespace":"` + testNamespace + `"},"spec":{"serviceAccountName":"irsa",` + container + `}}`,
		},
		"the deprecated serviceAccount field names an associated ServiceAccount": {
			object: `{"metadata":{},"spec":{"serviceAccount":"irsa","serviceAccountName":"nobody",` + container + `}}`,
		},
		"namespace/name as the ServiceAccount name": {
			object: `{"metadata":{},"spec":{"serviceAccountName":"` + testNamespace + `/irsa",` + container + `}}`,
		},
		"the ServiceAccount name with a trailing space": {
			object: `{"metadata":{},"spec":{"serviceAccountName":"irsa ",` + container + `}}`,
		},
		"the ServiceAccount name in upper case": {
			object: `{"metadata":{},"spec":{"serviceAccountName":"IRSA",` + container + `}}`,
		},
		"the ServiceAccount name with a path": {
			object: `{"metadata":{},"spec":{"serviceAccountName":"../irsa",` + container + `}}`,
		},
		"lanyard's injected annotation pre-set": {
			object: `{"metadata":{"annotations":{"` + policy.AnnotationInjected + `":"aws,azure,gcp"}},"spec":{"serviceAccountName":"nobody",` + container + `}}`,
		},
		"compat annotations on the ServiceAccount while compat is off": {
			object:    `{"metadata":{},"spec":{"serviceAccountName":"legacy",` + container + `}}`,
			compatOff: true,
		},
	}
	// The other namespace is opted in and has a ServiceAccount "irsa" of its own, unassociated.
	reader := testPolicy()
	reader.AddNamespace(&metav1.ObjectMeta{Name: "elsewhere", Labels: map[string]string{
		"kubernetes.io/metadata.name": "elsewhere", policy.InjectLabel: policy.InjectEnabled,
	}})
	reader.AddServiceAccount(&metav1.ObjectMeta{Namespace: "elsewhere", Name: "irsa"})
	// The control: the same pod of the associated ServiceAccount gets its identity.
	m, _ := newMutator(reader)
	_, patch := answer(t, m, reviewIn(testNamespace, `{"metadata":{},"spec":{"serviceAccountName":"irsa",`+container+`}}`))
	require.Contains(t, patch, irsaRoleARN)

	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, _ := newMutator(reader)
			if tc.compatOff {
				m.Resolver = policy.NewResolver(reader, policy.Options{CompatAnnotations: false})
			}
			ns := tc.namespace
			if ns == "" {
				ns = testNamespace
			}
			resp, patch := answer(t, m, reviewIn(ns, tc.object))
			assert.True(t, resp.Allowed)
			assert.Empty(t, patch, "no identity, no patch")
		})
	}
}

// Pre-set values cannot point an injected identity elsewhere: lanyard's own annotation that the
// GCP credential file is rendered from is replaced by lanyard's value, and env vars the pod sets
// by hand are left as they are (with a warning) but do not change the identity injected.
func TestPresetValuesDoNotRedirectTheInjectedIdentity(t *testing.T) {
	m, _ := newMutator(testPolicy())
	evil := `{\"type\":\"external_account\",\"audience\":\"//iam.googleapis.com/projects/666/locations/global/workloadIdentityPools/evil/providers/evil\"}`
	_, patch := answer(t, m, reviewIn(testNamespace, `{"metadata":{"annotations":{"`+policy.AnnotationGCPCredentialConfig+`":"`+evil+`"}},`+
		`"spec":{"serviceAccountName":"gcp","containers":[{"name":"app","image":"i"}]}}`))
	require.NotEmpty(t, patch)
	assert.NotContains(t, patch, "evil", "the pod's own credential configuration is not kept")
	assert.Contains(t, patch, strings.TrimPrefix(gcpProvider, "//iam.googleapis.com/"), "lanyard's provider is written")

	resp, patch := answer(t, m, reviewIn(testNamespace, `{"metadata":{},"spec":{"serviceAccountName":"irsa","containers":[{"name":"app","image":"i",`+
		`"env":[{"name":"AWS_ROLE_ARN","value":"arn:aws:iam::666666666666:role/evil"}]}]}}`))
	assert.NotContains(t, patch, "666666666666")
	assert.NotContains(t, patch, irsaRoleARN, "the AWS variables are a group: a pod that sets one by hand gets none of lanyard's")
	assert.NotEmpty(t, resp.Warnings, "the pre-set variable is reported")
}
