package status

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
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// Runner runs the status reconciler, on the elected leader when LeaderElection is set. It is a
// manager Runnable that does not itself need the manager's leader election: controller-runtime's
// manager exits when it loses its lease, which would take the webhook down with it on every
// replica during an API server outage. Here losing the lease only stops the reconciler until the
// lease is won again.
type Runner struct {
	Reconciler     *Reconciler
	Cache          cache.Cache
	Config         *rest.Config
	LeaderElection bool
	Namespace, ID  string
	Log            logr.Logger
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: the Runner elects itself.
func (r *Runner) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (r *Runner) Start(ctx context.Context) error {
	if !r.LeaderElection {
		return r.runTerm(ctx)
	}
	cs, err := kubernetes.NewForConfig(r.Config)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, r.Namespace, r.ID, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())})
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			ReleaseOnCancel: true, Name: r.ID,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(term context.Context) {
					r.Log.Info("elected: running the status reconciler")
					if err := r.runTerm(term); err != nil {
						r.Log.Error(err, "status reconciler stopped")
					}
				},
				OnStoppedLeading: func() { r.Log.Info("lease lost or released: status reconciler stopped") },
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		elector.Run(ctx) // returns when the lease is lost or ctx ends; then campaign again
	}
	return nil
}

func (r *Runner) runTerm(ctx context.Context) error {
	ctl, err := r.Reconciler.newController(r.Cache, r.Log)
	if err != nil {
		return err
	}
	return ctl.Start(ctx)
}
