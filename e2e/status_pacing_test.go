package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Status writes are background work: while the webhook admits pods, statuses to write go at a
// trickle (--status-writes-per-second-busy, 5/s after a burst of 5), and at full rate once
// admissions stop.
func TestStatusWritesYieldToAdmissions(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	metricsAddr := restartWithMetrics(t)

	// Admissions straight to the webhook as the API server sends them, up to 40 a second until the
	// statuses written meanwhile are counted (the webhook counts as busy from 10 a second).
	body := podReview(t, ns, newPod(ns, "p", "app"))
	load, stop := context.WithCancel(context.Background())
	defer stop()
	var reviews, failed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				if _, err := trySendReview(body); err != nil {
					failed.Add(1)
				} else {
					reviews.Add(1)
				}
				select {
				case <-load.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	time.Sleep(time.Second) // the reconciler sees the webhook busy
	before, since := patchesSent(t, metricsAddr), time.Now()
	const n = 80
	ias := make([]*v1alpha1.IdentityAssociation, n)
	for i := range ias {
		ias[i] = association(t, ns, fmt.Sprintf("sa-%d", i), v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
	}
	creating := time.Since(since)
	time.Sleep(2 * time.Second)
	written := patchesSent(t, metricsAddr) - before
	window := time.Since(since)
	stop()
	wg.Wait()
	t.Logf("%d reviews admitted; %d of %d new statuses written in the %s of admissions since their creation began (%s to create them)",
		reviews.Load(), written, n, window.Round(100*time.Millisecond), creating.Round(100*time.Millisecond))
	require.Zero(t, failed.Load())
	// Unpaced, every status is written within a second or two of its association's creation.
	// Paced: the burst, then 5 a second.
	assert.Positive(t, written, "statuses still go out while admitting")
	assert.LessOrEqual(t, written, 5+int(5*window.Seconds())+5, "status writes while the webhook admits pods")

	// Quiet again: the rest at the idle rate (50/s).
	require.Eventually(t, func() bool {
		for _, ia := range ias {
			var got v1alpha1.IdentityAssociation
			if k8s.Get(ctx(t), client.ObjectKeyFromObject(ia), &got) != nil ||
				meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady) == nil {
				return false
			}
		}
		return true
	}, 15*time.Second, 100*time.Millisecond, "every status written once admissions stopped")
}
