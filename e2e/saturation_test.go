package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// goroutinesOf reads go_goroutines from a lanyard's metrics endpoint.
func goroutinesOf(t *testing.T, metricsAddr string) int {
	t.Helper()
	n, found := metricSum(t, metricsAddr, "go_goroutines", "")
	require.True(t, found, "no go_goroutines in the metrics")
	return int(n)
}

// reviewStatus posts a review to the lanyard at addr and returns the HTTP status (for goroutines:
// it reports failures instead of failing the test).
func reviewStatus(addr string, body []byte) (int, error) {
	resp, err := reviewClient().Post("https://"+addr+"/mutate-v1-pod?timeout=5s", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// The API server hangs while reviews for ServiceAccounts lanyard has not cached arrive from 32
// clients at once, each needing a live read: every review is answered with an error inside the
// webhook's timeout (the failurePolicy decides), none is admitted without its identity, goroutines
// stay bounded while it lasts and return to where they were, and reviews the cache can answer
// are answered normally meanwhile.
func TestLiveLookupsSaturatedWhileTheAPIServerHangs(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "cached", nil)
	association(t, ns, "cached", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
	proxy := newAPIProxy(t, restConfigHost(t))
	proxy.set("up")
	metricsAddr, err := freeAddr()
	require.NoError(t, err)
	second, addr := secondLanyard(t, proxy, "--metrics-bind-address", metricsAddr)
	require.Eventually(t, func() bool { return probe(second, "/readyz") == http.StatusOK }, 30*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		status, out, _ := reviewAt(t, addr, podReview(t, ns, newPod(ns, "warm", "cached")))
		return status == http.StatusOK && out.Response.AuditAnnotations["injected"] == "aws"
	}, 10*time.Second, 100*time.Millisecond)
	before := goroutinesOf(t, metricsAddr)

	// Reviews of ServiceAccounts lanyard has never seen, built before the API server hangs.
	reviews := make([][]byte, 2000)
	for i := range reviews {
		name := fmt.Sprintf("unknown-%d", i)
		reviews[i] = podReview(t, ns, newPod(ns, name, name))
	}
	proxy.set("stalled")
	var sent, refused, admitted, slow, failed atomic.Int64
	var seq atomic.Int64
	stop := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				seq.Add(1)
				start := time.Now()
				status, err := reviewStatus(addr, reviews[int(seq.Load())%len(reviews)])
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				if time.Since(start) > 5*time.Second {
					slow.Add(1)
				}
				if status == http.StatusOK {
					admitted.Add(1)
				} else {
					refused.Add(1)
				}
			}
		})
	}
	peak := 0
	for time.Now().Before(stop) {
		peak = max(peak, goroutinesOf(t, metricsAddr))
		status, out, _ := reviewAt(t, addr, podReview(t, ns, newPod(ns, "meanwhile", "cached")))
		require.Equal(t, http.StatusOK, status, "a review the cache answers is not held up by the hung lookups")
		assert.Equal(t, "aws", out.Response.AuditAnnotations["injected"])
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	proxy.set("up")

	t.Logf("%d reviews of uncached ServiceAccounts while the API server hung: %d refused, %d admitted; goroutines %d before, peak %d",
		sent.Load(), refused.Load(), admitted.Load(), before, peak)
	assert.Zero(t, admitted.Load(), "no pod of an unconfirmed ServiceAccount is admitted")
	assert.Zero(t, failed.Load(), "every review gets an HTTP answer")
	assert.Zero(t, slow.Load(), "every answer inside the webhook's timeout")
	assert.Less(t, peak, before+400, "goroutines stay bounded")
	require.Eventually(t, func() bool { return goroutinesOf(t, metricsAddr) <= before+20 }, 15*time.Second, 250*time.Millisecond,
		"goroutines return to where they were")
}
