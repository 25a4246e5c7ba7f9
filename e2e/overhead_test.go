package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// TestPodCreationOverhead measures what lanyard adds to pod creation through the real API server:
// the same pods are created sequentially in a namespace that is not opted in (no webhook call)
// and in one that is (webhook call + injection), and the latency percentiles are compared. It
// reports figures; it asserts only that injection happened, since timing depends on the machine.
func TestPodCreationOverhead(t *testing.T) {
	const n = 200
	plain := namespace(t, false)
	opted := namespace(t, true)
	noop := namespace(t, false)
	samePatch := namespace(t, false)
	serviceAccount(t, plain, "app", nil)
	serviceAccount(t, opted, "app", nil)
	serviceAccount(t, noop, "app", nil)
	serviceAccount(t, samePatch, "app", nil)
	association(t, opted, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA}})
	mustCreate(t, newPod(opted, "warmup", "app"))
	require.Equal(t, "aws", stored(t, opted, "warmup").Annotations[policy.AnnotationInjected])
	// The baseline answers a fixed patch: a one-annotation one, and lanyard's own patch for this
	// pod shape (to tell the API server's cost of a bigger pod from lanyard's).
	baselineWebhook(t, noop, []byte(`[{"op":"add","path":"/metadata/annotations","value":{"e2e/baseline":"yes"}}]`))
	lanyardPatch := sendReview(t, podReview(t, opted, newPod(opted, "probe", "app"))).Response.Patch
	require.NotEmpty(t, lanyardPatch)
	baselineWebhook(t, samePatch, lanyardPatch)

	measure := func(ns string) []time.Duration {
		out := make([]time.Duration, 0, n)
		for i := range n {
			p := newPod(ns, fmt.Sprintf("load-%d", i), "app")
			start := time.Now()
			mustCreate(t, p)
			out = append(out, time.Since(start))
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	// Interleave rounds so that machine noise hits both sides alike.
	var base, fixed, same, with []time.Duration
	for range 2 {
		base = append(base, measure(plain)...)
		fixed = append(fixed, measure(noop)...)
		same = append(same, measure(samePatch)...)
		with = append(with, measure(opted)...)
		for _, ns := range []string{plain, noop, samePatch, opted} {
			cleanupPods(t, ns)
		}
	}
	for _, d := range [][]time.Duration{base, fixed, same, with} {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	}
	pct := func(d []time.Duration, p float64) time.Duration { return d[int(float64(len(d)-1)*p)] }
	t.Logf("pod creation through the API server, %d pods each, sequential:", len(base))
	t.Logf("  no webhook:                     p50 %v  p99 %v", pct(base, 0.50), pct(base, 0.99))
	t.Logf("  baseline webhook (fixed patch): p50 %v  p99 %v", pct(fixed, 0.50), pct(fixed, 0.99))
	t.Logf("  baseline with lanyard's patch:  p50 %v  p99 %v", pct(same, 0.50), pct(same, 0.99))
	t.Logf("  lanyard (IRSA injection):       p50 %v  p99 %v", pct(with, 0.50), pct(with, 0.99))
	t.Logf("  lanyard over no webhook:        p50 %+v  p99 %+v", pct(with, 0.50)-pct(base, 0.50), pct(with, 0.99)-pct(base, 0.99))
	t.Logf("  lanyard over baseline webhook:  p50 %+v  p99 %+v", pct(with, 0.50)-pct(fixed, 0.50), pct(with, 0.99)-pct(fixed, 0.99))
	t.Logf("  lanyard over baseline, same patch: p50 %+v  p99 %+v", pct(with, 0.50)-pct(same, 0.50), pct(with, 0.99)-pct(same, 0.99))
}

// baselineWebhook registers, for one namespace, SPEC §9's baseline: a webhook that decodes the
// AdmissionReview keeping the pod raw and answers a fixed patch.
func baselineWebhook(t *testing.T, ns string, patch []byte) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review struct {
			Request *struct {
				UID    types.UID       `json:"uid"`
				Object json.RawMessage `json:"object"`
			} `json:"request"`
		}
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		pt := admissionv1.PatchTypeJSONPatch
		_ = json.NewEncoder(w).Encode(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Response: &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: patch, PatchType: &pt},
		})
	}))
	t.Cleanup(srv.Close)
	podWebhook(t, "e2e-baseline-"+ns, "baseline.e2e.lanyard.dev", ns, srv)
}

func cleanupPods(t *testing.T, ns string) {
	t.Helper()
	require.NoError(t, k8s.DeleteAllOf(ctx(t), newPod(ns, "", "app"), inNamespace(ns)))
}
