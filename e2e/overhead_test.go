package e2e

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	serviceAccount(t, plain, "app", nil)
	serviceAccount(t, opted, "app", nil)
	association(t, opted, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA}})
	mustCreate(t, newPod(opted, "warmup", "app"))
	require.Equal(t, "aws", stored(t, opted, "warmup").Annotations[policy.AnnotationInjected])

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
	var base, with []time.Duration
	for round := range 2 {
		_ = round
		base = append(base, measure(plain)...)
		with = append(with, measure(opted)...)
		cleanupPods(t, plain)
		cleanupPods(t, opted)
	}
	sort.Slice(base, func(i, j int) bool { return base[i] < base[j] })
	sort.Slice(with, func(i, j int) bool { return with[i] < with[j] })
	pct := func(d []time.Duration, p float64) time.Duration { return d[int(float64(len(d)-1)*p)] }
	t.Logf("pod creation through the API server, %d pods each, sequential:", len(base))
	t.Logf("  without lanyard: p50 %v  p99 %v", pct(base, 0.50), pct(base, 0.99))
	t.Logf("  with lanyard:    p50 %v  p99 %v", pct(with, 0.50), pct(with, 0.99))
	t.Logf("  overhead:        p50 %v  p99 %v", pct(with, 0.50)-pct(base, 0.50), pct(with, 0.99)-pct(base, 0.99))
}

func cleanupPods(t *testing.T, ns string) {
	t.Helper()
	require.NoError(t, k8s.DeleteAllOf(ctx(t), newPod(ns, "", "app"), inNamespace(ns)))
}
