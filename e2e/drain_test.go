package e2e

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// SIGTERM drain: readiness fails at once (so endpoints drop the replica) while admission goes on
// being answered for the shutdown delay; no review sent before or during the drain fails.
func TestGracefulDrain(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
	review := podReview(t, ns, newPod(ns, "drain", "app"))

	lanyard.Stop()
	lanyard.shutdownDelay = 2 * time.Second
	require.NoError(t, lanyard.Start())
	t.Cleanup(func() {
		lanyard.Stop()
		lanyard.shutdownDelay = 0
		require.NoError(t, lanyard.Start())
	})

	// Clients keep admitting pods through the drain.
	var sent, failed atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				resp, err := trySendReview(review)
				if err != nil || resp.Response == nil || !resp.Response.Allowed || len(resp.Response.Patch) == 0 {
					failed.Add(1)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)

	l := lanyard
	l.drain(t)
	time.Sleep(time.Second) // still inside the 2 s shutdown delay
	close(stop)
	wg.Wait()

	assert.Positive(t, sent.Load())
	assert.Zero(t, failed.Load(), "no admission failed during the drain (%d sent)", sent.Load())
	select {
	case err := <-l.done:
		assert.NoError(t, err, "a clean shutdown")
	case <-time.After(30 * time.Second):
		t.Fatal("lanyard did not shut down after the delay")
	}
	l.mu.Lock()
	l.cancel = nil
	l.mu.Unlock()
}
