package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Scenario 9a: with lanyard stopped, pod creation in an opted-in namespace fails as the shipped
// failurePolicy (Fail) says, and the error says why; namespaces not opted in are unaffected.
func TestLanyardDownFailsClosed(t *testing.T) {
	ns := namespace(t, true)
	plain := namespace(t, false)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})

	lanyard.Stop()
	t.Cleanup(func() { require.NoError(t, lanyard.Start()) })

	err := k8s.Create(ctx(t), newPod(ns, "while-down", "app"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `failed calling webhook "pods.lanyard.dev"`)
	mustCreate(t, newPod(plain, "not-opted-in", "default"))

	require.NoError(t, lanyard.Start())
	mustCreate(t, newPod(ns, "after-restart", "app"))
	assert.Equal(t, "aws", stored(t, ns, "after-restart").Annotations[policy.AnnotationInjected])
}

// Scenario 9b: lanyard keeps admitting from its cache while the API server restarts: reviews sent
// straight to it during the outage are answered with the right patch, and once the API server is
// back pods are injected with no lanyard restart.
func TestAPIServerRestart(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{Azure: &v1alpha1.AzureIdentity{ClientID: clientID, TenantID: tenantID}})
	mustCreate(t, newPod(ns, "before", "app"))
	require.Equal(t, "azure", stored(t, ns, "before").Annotations[policy.AnnotationInjected])
	review := podReview(t, ns, newPod(ns, "during", "app"))

	// A second replica with leader election on, as a Deployment of two runs it.
	addr, err := freeAddr()
	require.NoError(t, err)
	_, portText, _ := net.SplitHostPort(addr)
	secondPort, _ := strconv.Atoi(portText)
	second := &lanyardProcess{binary: lanyard.binary, kubeconfig: lanyard.kubeconfig, port: secondPort}
	require.NoError(t, second.Start())
	t.Cleanup(second.Stop)

	// envtest sends SIGTERM and, when the API server has not exited within its stop timeout
	// (it drains watches), SIGKILL: either way it is down afterwards.
	if err := testEnv.ControlPlane.APIServer.Stop(); err != nil && !strings.Contains(err.Error(), "timeout waiting for process kube-apiserver to stop") {
		t.Fatalf("stopping the API server: %v", err)
	}
	stopped := true
	t.Cleanup(func() {
		if stopped {
			_ = testEnv.ControlPlane.APIServer.Start()
		}
	})
	// Longer than the status lease (15 s): both replicas keep admitting from their caches.
	outage := time.Now()
	for time.Since(outage) < 17*time.Second {
		for _, port := range []int{testEnv.WebhookInstallOptions.LocalServingPort, secondPort} {
			resp, err := trySendReviewTo(port, review)
			require.NoError(t, err, "replica on port %d", port)
			require.NotNil(t, resp.Response)
			assert.True(t, resp.Response.Allowed)
			assert.NotEmpty(t, resp.Response.Patch, "answered from the cache while the API server is down")
		}
		time.Sleep(500 * time.Millisecond)
	}

	require.NoError(t, testEnv.ControlPlane.APIServer.Start())
	stopped = false
	for _, l := range []*lanyardProcess{lanyard, second} {
		select {
		case err := <-l.done:
			t.Fatalf("lanyard exited during the API server outage: %v", err)
		default: // still the same process: an outage must not take the webhook down
		}
	}
	require.Eventually(t, func() bool {
		return k8s.Create(ctx(t), newPod(ns, "after", "app")) == nil
	}, 30*time.Second, 200*time.Millisecond)
	assert.Equal(t, "azure", stored(t, ns, "after").Annotations[policy.AnnotationInjected])

	// lanyard's informers resume watching: policy created after the restart reaches its cache
	// (after the outage the reflectors retry with backoff, so this can take a few seconds).
	attachment(t, ns+"-after-restart", v1alpha1.RegistryAttachmentSpec{Registry: "resumed.azurecr.io",
		Pull: v1alpha1.PullMethod{ImagePullSecret: &v1alpha1.SecretReference{Name: "resumed-pull"}}})
	require.Eventually(t, func() bool {
		p := newPod(ns, "resumed", "app", "resumed.azurecr.io/app:1")
		if err := k8s.Create(ctx(t), p, client.DryRunAll); err != nil {
			return false
		}
		return len(p.Spec.ImagePullSecrets) == 1 && p.Spec.ImagePullSecrets[0].Name == "resumed-pull"
	}, 60*time.Second, 250*time.Millisecond, "lanyard's caches catch up after the API server restart")

	// One of the two holds the status lease again and statuses are written.
	require.Eventually(t, func() bool {
		var lease coordinationv1.Lease
		if err := k8s.Get(ctx(t), client.ObjectKey{Namespace: lanyardNamespace, Name: "lanyard-status.lanyard.dev"}, &lease); err != nil {
			return false
		}
		return lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" &&
			lease.Spec.RenewTime != nil && time.Since(lease.Spec.RenewTime.Time) < 15*time.Second
	}, 60*time.Second, 250*time.Millisecond, "a replica leads again after the outage")
	fresh := association(t, ns, "fresh-after-outage", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
	require.Eventually(t, func() bool {
		var got v1alpha1.IdentityAssociation
		return k8s.Get(ctx(t), client.ObjectKeyFromObject(fresh), &got) == nil &&
			meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady) != nil
	}, 60*time.Second, 250*time.Millisecond, "the leader writes statuses after the outage")

	// An association deleted after the outage stops applying once the resumed watch delivers the
	// deletion, and stays gone: no pod admitted afterwards gets it.
	var ias v1alpha1.IdentityAssociationList
	require.NoError(t, k8s.List(ctx(t), &ias))
	for i := range ias.Items {
		if ias.Items[i].Spec.Namespace == ns {
			require.NoError(t, k8s.Delete(ctx(t), &ias.Items[i]))
		}
	}
	injected := func(name string) string {
		p := newPod(ns, name, "app")
		require.NoError(t, k8s.Create(ctx(t), p, client.DryRunAll))
		return p.Annotations[policy.AnnotationInjected]
	}
	require.Eventually(t, func() bool { return injected("deleted") == "" }, 30*time.Second, 100*time.Millisecond,
		"the deletion reaches lanyard's cache")
	for i := range 20 {
		require.Empty(t, injected(fmt.Sprintf("deleted-%d", i)), "a deleted association never applies again")
	}
}

func podReview(t *testing.T, ns string, pod *corev1.Pod) []byte {
	t.Helper()
	pod.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	raw, err := json.Marshal(pod)
	require.NoError(t, err)
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID(fmt.Sprintf("e2e-%d", time.Now().UnixNano())),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: ns, Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw},
		},
	})
	require.NoError(t, err)
	return body
}

// sendReview posts a review to lanyard over TLS, trusting envtest's webhook CA.
func sendReview(t *testing.T, body []byte) *admissionv1.AdmissionReview {
	t.Helper()
	out, err := trySendReview(body)
	require.NoError(t, err)
	return out
}

var reviewClient = sync.OnceValue(func() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(testEnv.WebhookInstallOptions.LocalServingCAData)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
})

// trySendReview is sendReview for goroutines: it reports failures instead of failing the test.
func trySendReview(body []byte) (*admissionv1.AdmissionReview, error) {
	return trySendReviewTo(testEnv.WebhookInstallOptions.LocalServingPort, body)
}

// trySendReviewTo is trySendReview to the lanyard serving on port.
func trySendReviewTo(port int, body []byte) (*admissionv1.AdmissionReview, error) {
	wio := &testEnv.WebhookInstallOptions
	url := "https://" + net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(port)) + "/mutate-v1-pod"
	resp, err := reviewClient().Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	out := &admissionv1.AdmissionReview{}
	return out, json.NewDecoder(resp.Body).Decode(out)
}
