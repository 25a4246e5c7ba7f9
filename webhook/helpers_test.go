package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// The policy the handler tests run against (see testPolicy).
const (
	testNamespace    = "team-a"
	lanyardNamespace = "lanyard-system"

	podIdentityRoleARN = "arn:aws:iam::111122223333:role/orders"
	irsaRoleARN        = "arn:aws:iam::111122223333:role/web"
	legacyRoleARN      = "arn:aws:iam::111122223333:role/legacy"
	azureClientID      = "11111111-2222-3333-4444-555555555555"
	azureTenantID      = "66666666-7777-8888-9999-000000000000"
	gcpProvider        = "projects/123456789/locations/global/workloadIdentityPools/prod-pool/providers/k8s-oidc"
	gcpEmail           = "ingest@analytics.iam.gserviceaccount.com"
)

func association(name, ns, sa string, spec v1alpha1.IdentityAssociationSpec) *v1alpha1.IdentityAssociation {
	spec.Namespace, spec.ServiceAccountName = ns, sa
	return &v1alpha1.IdentityAssociation{
		TypeMeta:   metav1.TypeMeta{APIVersion: "lanyard.dev/v1alpha1", Kind: "IdentityAssociation"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       spec,
	}
}

// testPolicy is the cluster the review fixtures are written against: one ServiceAccount per case
// in namespace team-a, plus associations in kube-system and lanyard's namespace that must never be
// applied.
func testPolicy() *policy.Static {
	s := policy.NewStatic()
	s.AddNamespace(&metav1.ObjectMeta{Name: testNamespace, Labels: map[string]string{
		"kubernetes.io/metadata.name": testNamespace, policy.InjectLabel: policy.InjectEnabled,
	}})
	for _, sa := range []string{"pod-identity", "irsa", "azure", "gcp", "puller", "contested"} {
		s.AddServiceAccount(&metav1.ObjectMeta{Namespace: testNamespace, Name: sa})
	}
	s.AddServiceAccount(&metav1.ObjectMeta{Namespace: testNamespace, Name: "legacy", Annotations: map[string]string{
		policy.EKSRoleARN: legacyRoleARN,
	}})
	s.AddIdentityAssociation(association("orders", testNamespace, "pod-identity", v1alpha1.IdentityAssociationSpec{
		AWS: &v1alpha1.AWSIdentity{RoleARN: podIdentityRoleARN, Mode: v1alpha1.AWSModePodIdentity, Region: "us-west-2"},
	}))
	s.AddIdentityAssociation(association("web", testNamespace, "irsa", v1alpha1.IdentityAssociationSpec{
		AWS: &v1alpha1.AWSIdentity{RoleARN: irsaRoleARN, Mode: v1alpha1.AWSModeIRSA, Region: "eu-central-1"},
	}))
	s.AddIdentityAssociation(association("reports", testNamespace, "azure", v1alpha1.IdentityAssociationSpec{
		Azure: &v1alpha1.AzureIdentity{ClientID: azureClientID, TenantID: azureTenantID},
	}))
	s.AddIdentityAssociation(association("ingest", testNamespace, "gcp", v1alpha1.IdentityAssociationSpec{
		GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: gcpProvider, ServiceAccountEmail: gcpEmail},
	}))
	s.AddIdentityAssociation(association("search-a", testNamespace, "contested", v1alpha1.IdentityAssociationSpec{
		AWS: &v1alpha1.AWSIdentity{RoleARN: irsaRoleARN, Mode: v1alpha1.AWSModeIRSA},
	}))
	s.AddIdentityAssociation(association("search-b", testNamespace, "contested", v1alpha1.IdentityAssociationSpec{
		AWS: &v1alpha1.AWSIdentity{RoleARN: podIdentityRoleARN},
	}))
	// Pods whose spec.serviceAccountName is left empty resolve to "default".
	s.AddIdentityAssociation(association("fallback", testNamespace, "default", v1alpha1.IdentityAssociationSpec{
		AWS: &v1alpha1.AWSIdentity{RoleARN: irsaRoleARN, Mode: v1alpha1.AWSModeIRSA},
	}))
	// Would inject if the namespace were not excluded.
	for _, ns := range []string{"kube-system", lanyardNamespace} {
		s.AddIdentityAssociation(association(ns+"-irsa", ns, "irsa", v1alpha1.IdentityAssociationSpec{
			AWS: &v1alpha1.AWSIdentity{RoleARN: irsaRoleARN, Mode: v1alpha1.AWSModeIRSA},
		}))
	}
	s.AddRegistryAttachment(&v1alpha1.RegistryAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: "myacr"},
		Spec: v1alpha1.RegistryAttachmentSpec{
			Registry: "myacr.azurecr.io",
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
				policy.InjectLabel: policy.InjectEnabled,
			}},
			Pull: v1alpha1.PullMethod{ImagePullSecret: &v1alpha1.SecretReference{Name: "acr-pull"}},
		},
	})
	return s
}

// newMutator returns the mutator under test over reader, with its own metrics registry.
func newMutator(reader policy.Reader) (*PodMutator, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return &PodMutator{
		Resolver:         policy.NewResolver(reader, policy.Options{CompatAnnotations: true}),
		LanyardNamespace: lanyardNamespace,
		Metrics:          NewMetrics(reg),
	}, reg
}

// newServer serves h over real TLS; the client trusts the server's certificate.
func newServer(t testing.TB, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv, srv.Client()
}

type httpResult struct {
	status      int
	contentType string
	header      http.Header
	body        []byte
}

// post sends body to the mutating path as the API server does.
func post(t testing.TB, srv *httptest.Server, c *http.Client, body io.Reader, contentType string) httpResult {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+MutatePodPath, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, c, req)
}

func do(t testing.TB, c *http.Client, req *http.Request) httpResult {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return httpResult{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), header: resp.Header, body: b}
}

// podSpec and podMeta return the pod's spec and metadata in a decoded review, for edits.
func podSpec(review map[string]any) map[string]any {
	return review["request"].(map[string]any)["object"].(map[string]any)["spec"].(map[string]any)
}

func podMeta(review map[string]any) map[string]any {
	return review["request"].(map[string]any)["object"].(map[string]any)["metadata"].(map[string]any)
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "reviews", name))
	require.NoError(t, err)
	return b
}

// fixtureObject returns request.object of a review fixture exactly as written.
func fixtureObject(t testing.TB, review []byte) json.RawMessage {
	t.Helper()
	var doc struct {
		Request struct {
			Object json.RawMessage `json:"object"`
		} `json:"request"`
	}
	require.NoError(t, json.Unmarshal(review, &doc))
	return doc.Request.Object
}

// withObject returns the review with request.object replaced, every other member kept.
func withObject(t testing.TB, review []byte, object json.RawMessage) []byte {
	t.Helper()
	return withRequestFields(t, review, map[string]any{"object": object})
}

// decodeResponse decodes an HTTP 200 answer into its AdmissionResponse.
func decodeResponse(t testing.TB, res httpResult) *admissionv1.AdmissionResponse {
	t.Helper()
	require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
	assert.Equal(t, "application/json", res.contentType)
	var review admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(res.body, &review))
	assert.Equal(t, "admission.k8s.io/v1", review.APIVersion)
	assert.Equal(t, "AdmissionReview", review.Kind)
	require.NotNil(t, review.Response, "AdmissionReview without response")
	return review.Response
}

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// checkPatch asserts the universal properties of a returned patch and returns the patched object:
// JSON Patch type, only "add" operations, and it applies cleanly to the object as received.
func checkPatch(t testing.TB, resp *admissionv1.AdmissionResponse, object json.RawMessage) []byte {
	t.Helper()
	require.NotNil(t, resp.PatchType)
	assert.Equal(t, admissionv1.PatchTypeJSONPatch, *resp.PatchType)
	var ops []patchOp
	require.NoError(t, json.Unmarshal(resp.Patch, &ops), "patch does not decode: %s", resp.Patch)
	require.NotEmpty(t, ops)
	for _, op := range ops {
		assert.Equal(t, "add", op.Op, "only add operations are allowed: %s %s", op.Op, op.Path)
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	require.NoError(t, err)
	patched, err := p.Apply(object)
	require.NoError(t, err, "patch does not apply to the object as received: %s", resp.Patch)
	return patched
}

// failingReader is a policy.Reader whose every lookup fails, as an unsynced or unreachable cache.
type failingReader struct{ err error }

func (r failingReader) Namespace(context.Context, string) (*metav1.ObjectMeta, error) {
	return nil, r.err
}

func (r failingReader) ServiceAccount(context.Context, string, string) (*metav1.ObjectMeta, []*v1alpha1.IdentityAssociation, error) {
	return nil, nil, r.err
}

func (r failingReader) RegistryAttachments(context.Context) ([]*v1alpha1.RegistryAttachment, error) {
	return nil, r.err
}

func (r failingReader) BroadAssociations(context.Context, string) ([]*v1alpha1.IdentityAssociation, error) {
	return nil, r.err
}

// panickingReader panics in resolution (a bug in a reader must not take the webhook down).
type panickingReader struct{ *policy.Static }

func (panickingReader) ServiceAccount(context.Context, string, string) (*metav1.ObjectMeta, []*v1alpha1.IdentityAssociation, error) {
	panic("reader bug")
}

var errLookup = errors.New("informer cache unreachable")

// histogramCount is the number of observations of lanyard_admission_duration_seconds{result}.
func histogramCount(t testing.TB, reg *prometheus.Registry, result string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "lanyard_admission_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}
