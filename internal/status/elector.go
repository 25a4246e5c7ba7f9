package status

import (
	"context"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/lanyard-dev/lanyard/internal/leader"
)

// Runner runs the status reconciler, on the elected leader when LeaderElection is set (package
// leader: losing the lease only stops the reconciler until the lease is won again).
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
	return leader.Election{Config: r.Config, Namespace: r.Namespace, ID: r.ID, Disabled: !r.LeaderElection, Log: r.Log}.
		Run(ctx, "status reconciler", r.runTerm)
}

func (r *Runner) runTerm(ctx context.Context) error {
	// Every cache the statuses are computed from must be whole first — the controller itself
	// waits only for its informers, not for the Reader's ServiceAccount store: a status computed
	// from a half-listed store would say "ServiceAccount not found" for ServiceAccounts that exist.
	if !r.Reconciler.Reader.WaitForSync(ctx) {
		return ctx.Err()
	}
	ctl, err := r.Reconciler.newController(r.Cache, r.Log)
	if err != nil {
		return err
	}
	return ctl.Start(ctx)
}
