// Package budget measures lanyard against SPEC §9's performance budget in one run: the table of
// `make bench` (bench/suite). For each fixture size N (ServiceAccounts + IdentityAssociations on
// a real API server, seeded with loadgen.Seed) it starts `lanyard serve` fresh while the status
// reconciler still has every new status to write and measures p99 at the open-loop rate at once;
// then, with the statuses written and lanyard restarted, CPU per admission and throughput of the
// typical pod (and of the large pod at one size) in a closed loop, p99 at the rate, and RSS after
// the runs and once idle — each against the floor server measured in the same run. It owns the
// plan, the lanyard process, the table and the block of docs/performance.md the table goes in.
package budget

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/bench/loadgen"
)

// Plan is what one run measures.
type Plan struct {
	Sizes        []int         // fixture sizes, ascending; each is seeded on top of the last
	LargeAt      []int         // the sizes the large pod is measured at
	Namespace    string        // of the ServiceAccounts and the pods
	Workers      int           // closed loop, typical pod
	LargeWorkers int           // closed loop, large pod
	Rate         float64       // open loop: reviews per second, typical pod (Poisson arrivals)
	Duration     time.Duration // measured per server and figure
	Warmup       time.Duration // load before each measured run, not counted
	Rounds       int           // rounds of each figure, alternating which server goes first
	Idle         time.Duration // wait after the runs before the idle RSS
	Timeout      time.Duration // per review
	SeedWorkers  int           // creates in flight while seeding
	ProfileDir   string        // when set: CPU profiles of lanyard's measured runs (lanyard serves pprof)
}

// DefaultPlan is `make bench`'s: N = 1,000 and 20,000, large pod at 1,000, 8 and 4 workers,
// 500 reviews/s, 6 s measured after 1 s of warm-up.
func DefaultPlan() Plan {
	return Plan{Sizes: []int{1000, 20000}, LargeAt: []int{1000}, Namespace: "bench", Workers: 8, LargeWorkers: 4, Rate: 500,
		Duration: 6 * time.Second, Warmup: time.Second, Rounds: 1, Idle: 5 * time.Second, Timeout: 10 * time.Second, SeedWorkers: 32}
}

// Check says what is wrong with the plan.
func (p Plan) Check() error {
	switch {
	case len(p.Sizes) == 0 || !slices.IsSorted(p.Sizes) || p.Sizes[0] < 1:
		return fmt.Errorf("sizes %v: at least one, ascending, positive", p.Sizes)
	case p.Workers < 1 || p.LargeWorkers < 1 || p.Rounds < 1 || p.SeedWorkers < 1:
		return fmt.Errorf("workers, large workers, rounds and seed workers must be at least 1")
	case p.Rate <= 0 || p.Duration <= 0 || p.Warmup < 0 || p.Idle < 0 || p.Timeout <= 0:
		return fmt.Errorf("rate, duration and timeout must be positive, warm-up and idle not negative")
	}
	return nil
}

// Figures is one server's outcome of one figure's runs (rounds added up).
type Figures struct {
	Requests, Patched, Errors int64
	FirstError                string
	PerSecond                 float64
	// Latencies of every review of the runs together, but P99: the median of the runs' own p99s,
	// so that a hiccup of the shared machine during one round does not decide the figure.
	Latencies     loadgen.Latencies
	CPUPerRequest time.Duration // 0 when the server's process is not known
}

// medianP99s is the median of the runs' p99s (the mean of the middle two for an even count).
func medianP99s(p99s []time.Duration) time.Duration {
	if len(p99s) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(p99s))
	mid := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[mid]
	}
	return (sorted[mid-1] + sorted[mid]) / 2
}

// runs adds up one server's measured runs of a figure.
type runs struct {
	stats loadgen.Stats
	ticks int64
	p99s  []time.Duration
}

func (a *runs) add(m loadgen.Measurement) {
	a.p99s = append(a.p99s, loadgen.Summarize(m.Stats.Latencies).P99)
	a.stats.Merge(m.Stats)
	a.ticks += m.ServerTicks
}

// figures are the runs' Figures, p99 the median of theirs.
func (a *runs) figures(hz int64) Figures {
	f := figuresOf(&a.stats, a.ticks, hz)
	f.Latencies.P99 = medianP99s(a.p99s)
	return f
}

func figuresOf(st *loadgen.Stats, ticks, hz int64) Figures {
	f := Figures{Requests: st.Requests, Patched: st.Patched, Errors: st.Errors(), FirstError: st.FirstError,
		PerSecond: st.PerSecond(), Latencies: loadgen.Summarize(st.Latencies)}
	if ticks > 0 && st.Requests > 0 {
		f.CPUPerRequest = time.Duration(float64(ticks) * float64(time.Second) / float64(hz) / float64(st.Requests))
	}
	if f.Requests > 0 && f.Patched != f.Requests && f.FirstError == "" {
		f.FirstError = fmt.Sprintf("%d of %d answers without a patch", f.Requests-f.Patched, f.Requests)
	}
	return f
}

// Pair is a figure measured on both servers.
type Pair struct {
	Lanyard, Floor Figures
}

// Memory is a server's resident memory from /proc.
type Memory struct {
	AfterRuns, Idle, Peak, IdleAnon int64 // KiB: VmRSS right after the runs and after Plan.Idle, VmHWM, RssAnon idle
}

// Size is what was measured at one fixture size.
type Size struct {
	N                  int
	Seeded             loadgen.Seeded
	SeedTime           time.Duration
	CatchUp            Figures // lanyard at Plan.Rate right after a fresh start
	CatchUpFloor       Figures // the floor at Plan.Rate, in turn with those runs
	CatchUpToWrite     int     // statuses lanyard had to write when it started (the new associations)
	CatchUpWritten     int     // statuses it wrote during the measured run
	CatchUpWrittenTill int     // statuses the last fresh process had written when its run ended
	CatchUpReadyAfter  time.Duration
	// FreshStart: lanyard at Plan.Rate right after a fresh start with every status already
	// written, the control for CatchUp; FreshStartWrites the statuses those processes wrote.
	FreshStart         Figures
	FreshStartFloor    Figures // the floor, in turn with those runs
	FreshStartWrites   int
	StatusesBySuite    int // statuses written by the suite (as lanyard would) before the steady runs
	SteadyStatusWrites int // status writes of the restarted lanyard (none when it finds them as it would write them)
	// lanyard's own handling time, p99 (the upper bound of its histogram bucket), during the
	// catch-up run and the steady open-loop run: the part of the latency that is lanyard's work.
	HandlingP99CatchUp, HandlingP99Fresh, HandlingP99Steady time.Duration
	ReadyAfter                                              time.Duration
	Typical                                                 Pair  // closed loop, Plan.Workers
	Large                                                   *Pair // closed loop, Plan.LargeWorkers; nil where not measured
	Steady                                                  Pair  // open loop at Plan.Rate
	LanyardMemory                                           Memory
	FloorMemory                                             Memory
}

// Report is the whole run.
type Report struct {
	Plan       Plan
	ClockTicks int64
	Sizes      []Size
	Profiles   []string // CPU profiles written
}

// Env is what Run needs besides the plan: a client of the cluster (to seed and to write statuses,
// not rate limited by much), how to run lanyard, and the floor server, already serving as a process
// of its own.
type Env struct {
	Client   client.Client
	Lanyard  *Lanyard
	Floor    loadgen.Server
	Progress io.Writer
}

// statusWrites counts the status patches lanyard sent (controller-runtime's client-go metrics):
// with the certificate files mode, its status reconciler is the only writer of PATCHes.
func statusWrites(p *Process) (int, bool, error) {
	v, ok, err := p.Metric("rest_client_requests_total", `method="PATCH"`)
	return int(v), ok, err
}

// Run measures plan in env.
func Run(ctx context.Context, plan Plan, env Env) (*Report, error) {
	if err := plan.Check(); err != nil {
		return nil, err
	}
	hz, _ := loadgen.ClockTicks()
	rep := &Report{Plan: plan, ClockTicks: hz}
	r := &runner{start: time.Now(), plan: plan, env: env, hz: hz, report: rep}
	seeded := 0
	for _, n := range plan.Sizes {
		size, err := r.size(ctx, seeded, n)
		if err != nil {
			return rep, fmt.Errorf("with %d ServiceAccounts and associations: %w", n, err)
		}
		rep.Sizes = append(rep.Sizes, size)
		seeded = n
	}
	return rep, nil
}

type runner struct {
	start  time.Time
	plan   Plan
	env    Env
	hz     int64
	report *Report
}

func (r *runner) logf(format string, args ...any) {
	if r.env.Progress != nil {
		fmt.Fprintf(r.env.Progress, "bench: %5.1fs "+format+"\n", append([]any{time.Since(r.start).Seconds()}, args...)...)
	}
}

func (r *runner) size(ctx context.Context, from, n int) (Size, error) {
	plan := r.plan
	s := Size{N: n}
	r.logf("N = %d: seeding ServiceAccounts and IdentityAssociations sa-%d … sa-%d in namespace %s", n, from, n-1, plan.Namespace)
	start := time.Now()
	var err error
	if s.Seeded, err = loadgen.Seed(ctx, r.env.Client, plan.Namespace, from, n, plan.SeedWorkers); err != nil {
		return s, err
	}
	s.SeedTime = time.Since(start)
	r.logf("N = %d: seeded %d + %d in %s", n, s.Seeded.ServiceAccounts, s.Seeded.Associations, s.SeedTime.Round(100*time.Millisecond))
	typical, err := loadgen.NewReviews(loadgen.Typical, plan.Namespace, n)
	if err != nil {
		return s, err
	}
	open := loadgen.Config{Rate: plan.Rate, Poisson: true, Inflight: 512, Duration: plan.Duration, Timeout: plan.Timeout}

	// A fresh start: every new association has no status yet, and the status reconciler writes
	// them while admissions arrive at the open-loop rate. Each round is a new process (each writes
	// a few statuses: the next still finds almost all to write).
	s.CatchUpToWrite = n - from
	r.logf("N = %d: %d statuses to write; p99 at %g/s during the catch-up after fresh starts", n, n-from, plan.Rate)
	catchUp, err := r.freshStarts(ctx, typical, open, fmt.Sprintf("%d-catchup", n))
	if err != nil {
		return s, err
	}
	s.CatchUp, s.CatchUpFloor, s.HandlingP99CatchUp, s.CatchUpReadyAfter = catchUp.figures, catchUp.floor, catchUp.handlingP99, catchUp.readyAfter
	s.CatchUpWritten, s.CatchUpWrittenTill = catchUp.writtenInRuns, catchUp.writtenTill

	// Steady state: the statuses written (what the reconciler would write), lanyard started again.
	if s.StatusesBySuite, err = loadgen.WriteStatuses(ctx, r.env.Client, plan.Namespace, plan.SeedWorkers); err != nil {
		return s, err
	}
	// The control for the catch-up: fresh starts exactly as above, with every status already
	// written. What the catch-up adds to these is the catch-up's doing; the rest is a new
	// process's first seconds.
	r.logf("N = %d: %d statuses written by the suite; p99 at %g/s after fresh starts with nothing to write", n, s.StatusesBySuite, plan.Rate)
	fresh, err := r.freshStarts(ctx, typical, open, fmt.Sprintf("%d-fresh", n))
	if err != nil {
		return s, err
	}
	s.FreshStart, s.FreshStartFloor, s.HandlingP99Fresh, s.FreshStartWrites = fresh.figures, fresh.floor, fresh.handlingP99, fresh.writtenInRuns
	p, err := r.env.Lanyard.Start(ctx)
	if err != nil {
		return s, err
	}
	s.ReadyAfter = p.ReadyAfter
	r.logf("N = %d: lanyard ready in %s for the steady runs", n, p.ReadyAfter.Round(10*time.Millisecond))
	if err := r.steady(ctx, p, &s, typical, open); err != nil {
		return s, stopAfter(p, err)
	}
	if err := p.Stop(); err != nil {
		r.logf("lanyard stopped with: %v", err)
	}
	return s, nil
}

// freshRuns are the open-loop runs of Plan.Rounds freshly started lanyard processes, merged, and
// the floor's runs alternating with them (before a start, or after a stop).
type freshRuns struct {
	figures       Figures
	floor         Figures
	handlingP99   time.Duration
	readyAfter    time.Duration // of the first process
	writtenInRuns int           // status writes during the measured runs, all processes
	writtenTill   int           // status writes of the last process from its start to its run's end
}

// freshStarts starts lanyard Plan.Rounds times and measures each process at once, from the first
// review on, for Plan.Warmup and Plan.Duration; the floor is measured the same way just before
// each start or just after each stop, in turn, so that both columns see the machine as it was.
func (r *runner) freshStarts(ctx context.Context, reviews *loadgen.Reviews, cfg loadgen.Config, name string) (freshRuns, error) {
	var out freshRuns
	var lanyardRuns, floorRuns runs
	handled := buckets{}
	floorRun := func() error {
		m, err := r.measure(ctx, nil, r.env.Floor, reviews, cfg, "")
		if err == nil {
			floorRuns.add(m)
		}
		return err
	}
	for round := range r.plan.Rounds {
		if round%2 == 1 {
			if err := floorRun(); err != nil {
				return out, err
			}
		}
		p, err := r.env.Lanyard.Start(ctx)
		if err != nil {
			return out, err
		}
		if round == 0 {
			out.readyAfter = p.ReadyAfter
		}
		r.logf("  fresh start %d of %d: lanyard ready in %s", round+1, r.plan.Rounds, p.ReadyAfter.Round(10*time.Millisecond))
		before, _, err := statusWrites(p)
		if err != nil {
			return out, stopAfter(p, err)
		}
		handledBefore, _ := p.Histogram(handlingHistogram)
		m, err := r.measure(ctx, p, p.Server(), reviews, cfg, fmt.Sprintf("%s-%d", name, round+1))
		if err != nil {
			return out, stopAfter(p, err)
		}
		if handledAfter, err := p.Histogram(handlingHistogram); err == nil && handledBefore != nil {
			handled.addBetween(handledBefore, handledAfter)
		}
		after, _, err := statusWrites(p)
		if err != nil {
			return out, stopAfter(p, err)
		}
		run := loadgen.Summarize(m.Stats.Latencies)
		r.logf("    p99 %s, max %s; %d statuses written in the run", run.P99.Round(10*time.Microsecond), run.Max.Round(10*time.Microsecond), after-before)
		lanyardRuns.add(m)
		out.writtenInRuns += after - before
		out.writtenTill = after
		if err := p.Stop(); err != nil {
			r.logf("lanyard stopped with: %v", err)
		}
		if round%2 == 0 {
			if err := floorRun(); err != nil {
				return out, err
			}
		}
	}
	out.figures, out.floor = lanyardRuns.figures(r.hz), floorRuns.figures(r.hz)
	out.handlingP99 = quantileBetween(buckets{}, handled, 0.99)
	return out, nil
}

func (r *runner) steady(ctx context.Context, p *Process, s *Size, typical *loadgen.Reviews, open loadgen.Config) error {
	plan := r.plan
	r.awaitReconciled(ctx, p, s.N)
	var err error
	closed := loadgen.Config{Workers: plan.Workers, Duration: plan.Duration, Timeout: plan.Timeout}
	if s.Typical, err = r.pair(ctx, p, typical, closed, fmt.Sprintf("%d-typical", s.N)); err != nil {
		return err
	}
	if slices.Contains(plan.LargeAt, s.N) {
		large, err := loadgen.NewReviews(loadgen.Large, plan.Namespace, s.N)
		if err != nil {
			return err
		}
		closed.Workers = plan.LargeWorkers
		pair, err := r.pair(ctx, p, large, closed, fmt.Sprintf("%d-large", s.N))
		if err != nil {
			return err
		}
		s.Large = &pair
	}
	handledBefore, _ := p.Histogram(handlingHistogram)
	if s.Steady, err = r.pair(ctx, p, typical, open, fmt.Sprintf("%d-rate", s.N)); err != nil {
		return err
	}
	if handledAfter, err := p.Histogram(handlingHistogram); err == nil {
		s.HandlingP99Steady = quantileBetween(handledBefore, handledAfter, 0.99)
	}
	lanyardAfter, err := loadgen.ReadProc(fmt.Sprint(p.PID))
	if err != nil {
		return err
	}
	if s.SteadyStatusWrites, _, err = statusWrites(p); err != nil {
		return err
	}
	floorAfter, err := loadgen.ReadProc(fmt.Sprint(r.env.Floor.PID))
	if err != nil {
		return err
	}
	if plan.Idle > 0 {
		r.logf("N = %d: idle for %s", s.N, plan.Idle)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(plan.Idle):
		}
	}
	lanyardIdle, err := loadgen.ReadProc(fmt.Sprint(p.PID))
	if err != nil {
		return err
	}
	floorIdle, err := loadgen.ReadProc(fmt.Sprint(r.env.Floor.PID))
	if err != nil {
		return err
	}
	s.LanyardMemory = Memory{AfterRuns: lanyardAfter.RSSKiB, Idle: lanyardIdle.RSSKiB, Peak: lanyardIdle.HWMKiB, IdleAnon: lanyardIdle.AnonKiB}
	s.FloorMemory = Memory{AfterRuns: floorAfter.RSSKiB, Idle: floorIdle.RSSKiB, Peak: floorIdle.HWMKiB, IdleAnon: floorIdle.AnonKiB}
	return nil
}

// awaitReconciled waits (20 s at most) until the status reconciler's first pass is over — its
// queue empty, and either every one of the n associations taken or nothing added for a second —
// so that the pass is not measured.
func (r *runner) awaitReconciled(ctx context.Context, p *Process, n int) {
	const name = `name="identityassociation-status"`
	start := time.Now()
	// A restart queues only the associations whose status is stale: the pass is over when the
	// queue is empty and stays so while nothing more is added.
	lastAdds, stableSince := -1.0, time.Now()
	for time.Since(start) < 20*time.Second && ctx.Err() == nil {
		adds, found, err := p.Metric("workqueue_adds_total", name)
		if err != nil || (!found && time.Since(start) > 2*time.Second) {
			return // not the leader (another lanyard is): no status reconciler here
		}
		depth, _, err := p.Metric("workqueue_depth", name)
		if err != nil {
			return
		}
		if adds != lastAdds || depth > 0 {
			lastAdds, stableSince = adds, time.Now()
		}
		if found && depth == 0 && (int(adds) >= n || time.Since(stableSince) >= time.Second) {
			written, _, _ := statusWrites(p)
			r.logf("status reconciler idle after %s (%d queued, %d statuses written)", time.Since(start).Round(100*time.Millisecond), int(adds), written)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.logf("status reconciler still busy after %s; measuring anyway", time.Since(start).Round(time.Second))
}

// pair measures one figure on lanyard and the floor, Plan.Rounds times, alternating which goes
// first.
func (r *runner) pair(ctx context.Context, p *Process, reviews *loadgen.Reviews, cfg loadgen.Config, name string) (Pair, error) {
	lanyard, floor := p.Server(), r.env.Floor
	var measured [2]runs
	for round := range r.plan.Rounds {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			srv := []loadgen.Server{lanyard, floor}[i]
			var m loadgen.Measurement
			var err error
			if i == 0 {
				m, err = r.measure(ctx, p, srv, reviews, cfg, fmt.Sprintf("%s-%d", name, round+1))
			} else {
				m, err = r.measure(ctx, nil, srv, reviews, cfg, "")
			}
			if err != nil {
				return Pair{}, err
			}
			measured[i].add(m)
		}
	}
	return Pair{Lanyard: measured[0].figures(r.hz), Floor: measured[1].figures(r.hz)}, nil
}

// measure runs one measured load against srv; with p and a profile directory, it records
// lanyard's CPU profile over the warm-up and the run.
func (r *runner) measure(ctx context.Context, p *Process, srv loadgen.Server, reviews *loadgen.Reviews, cfg loadgen.Config, profile string) (loadgen.Measurement, error) {
	what := fmt.Sprintf("%s pod, %d workers", reviews.Shape().Name, cfg.Workers)
	if cfg.Rate > 0 {
		what = fmt.Sprintf("%s pod, %g/s", reviews.Shape().Name, cfg.Rate)
	}
	r.logf("  %s: %s for %s", srv.Name, what, cfg.Duration)
	var profiled chan error
	if p != nil && r.plan.ProfileDir != "" && profile != "" {
		path := filepath.Join(r.plan.ProfileDir, "lanyard-"+profile+".pprof")
		profiled = make(chan error, 1)
		go func() { profiled <- p.ProfileCPU(ctx, r.plan.Warmup+cfg.Duration, path) }()
		r.report.Profiles = append(r.report.Profiles, path)
	}
	m, err := loadgen.Measure(ctx, srv, reviews, cfg, r.plan.Warmup)
	if profiled != nil {
		if perr := <-profiled; perr != nil {
			r.logf("  CPU profile: %v", perr)
		}
	}
	if err != nil {
		return m, fmt.Errorf("%s, %s: %w", srv.Name, what, err)
	}
	return m, nil
}

// stopAfter stops p and returns err.
func stopAfter(p *Process, err error) error {
	_ = p.Stop()
	return err
}
