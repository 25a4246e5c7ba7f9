// Package leader runs work on the one replica that holds a Lease, term after term. Unlike
// controller-runtime's manager, which exits when it loses its lease, losing the lease here only
// ends the current term: during an API server outage every replica keeps serving admission, and
// the work resumes on whichever replica wins the lease next.
package leader

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Election names a Lease and what to run while holding it.
type Election struct {
	Config *rest.Config
	// Namespace and ID name the Lease.
	Namespace, ID string
	// Disabled runs the work at once, without a lease (one replica, or tests).
	Disabled bool
	Log      logr.Logger
}

// Run runs term while this process holds the lease, campaigning again after every lost lease,
// until ctx ends. term's context ends when the lease is lost.
func (e Election) Run(ctx context.Context, what string, term func(context.Context) error) error {
	if e.Disabled {
		return term(ctx)
	}
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, e.Namespace, e.ID, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())})
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			ReleaseOnCancel: true, Name: e.ID,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(leading context.Context) {
					e.Log.Info("elected: running the " + what)
					if err := term(leading); err != nil {
						e.Log.Error(err, what+" stopped")
					}
				},
				OnStoppedLeading: func() { e.Log.Info("lease lost or released: " + what + " stopped") },
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		elector.Run(ctx) // returns when the lease is lost or ctx ends; then campaign again
	}
	return nil
}
