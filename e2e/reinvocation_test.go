package e2e

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// addSidecarWebhook is a second mutating webhook that appends a container named late-sidecar
// (once), as a service mesh injector would.
func addSidecarWebhook(t *testing.T) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var pod corev1.Pod
		_ = json.Unmarshal(review.Request.Object.Raw, &pod)
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		present := false
		for _, c := range pod.Spec.Containers {
			present = present || c.Name == "late-sidecar"
		}
		if !present {
			patch, _ := json.Marshal([]map[string]any{{"op": "add", "path": "/spec/containers/-",
				"value": map[string]any{"name": "late-sidecar", "image": "registry.example.com/sidecar:1"}}})
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = patch, &pt
		}
		review.Response, review.Request = resp, nil
		_ = json.NewEncoder(w).Encode(review)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Scenario 6: a webhook ordered after lanyard adds a container; reinvocationPolicy IfNeeded calls
// lanyard again and the added container is injected too, with nothing duplicated.
func TestReinvocation(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA}})

	// Named after "lanyard", so the API server calls it second.
	podWebhook(t, "zz-e2e-add-sidecar-"+ns, "add-sidecar.e2e.lanyard.dev", ns, addSidecarWebhook(t))

	mustCreate(t, newPod(ns, "p", "app"))
	p := stored(t, ns, "p")
	require.Len(t, p.Spec.Containers, 2)
	assert.Equal(t, "late-sidecar", p.Spec.Containers[1].Name)
	for _, c := range p.Spec.Containers {
		assert.Equal(t, roleARN, envMap(c)["AWS_ROLE_ARN"], "container %s injected", c.Name)
		assert.Len(t, c.Env, 3, "container %s: env not duplicated", c.Name)
		assert.Len(t, c.VolumeMounts, 1, "container %s: mount not duplicated", c.Name)
	}
	count := 0
	for _, v := range p.Spec.Volumes {
		if v.Name == "aws-iam-token" {
			count++
		}
	}
	assert.Equal(t, 1, count, "token volume not duplicated")
}

// podWebhook registers srv as a mutating webhook for pod creation in namespace ns (removed after
// the test). Configurations are called in name order.
func podWebhook(t *testing.T, configName, webhookName, ns string, srv *httptest.Server) {
	t.Helper()
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: configName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    webhookName,
			AdmissionReviewVersions: []string{"v1"},
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To(srv.URL + "/"),
				CABundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			SideEffects:       &none,
			FailurePolicy:     &fail,
			TimeoutSeconds:    ptr.To[int32](5),
		}},
	}
	mustCreate(t, cfg)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), cfg) })
}
