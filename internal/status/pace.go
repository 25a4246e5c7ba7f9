package status

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Pacer spaces the reconciler's status writes. Statuses are background work: a status patch
// costs the API server and etcd several times what a pod creation costs, and after a fresh start
// against thousands of associations the reconciler has one to write for each. While the webhook is
// admitting pods, statuses therefore go at a trickle (Busy), so that the catch-up does not slow
// the admissions that share the API server (and, on a small control plane, its CPUs); when
// admissions are quiet they go at Idle.
type Pacer struct {
	// Idle and Busy are the status writes per second while admissions are quiet or busy.
	Idle, Busy float64
	// BusyAt is the admission rate (reviews per second) from which the webhook counts as busy.
	BusyAt float64
	// Admissions counts the reviews the webhook has handled (monotonic).
	Admissions func() uint64
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time

	once    sync.Once
	mu      sync.Mutex
	limiter *rate.Limiter
	// The last sample of Admissions and when it was taken.
	seen   uint64
	seenAt time.Time
	busy   bool
}

// DefaultPacer writes up to 50 statuses a second (the client's own rate limit) while admissions
// are quiet, and 5 while the webhook admits 10 or more pods a second: a fresh start against 20,000
// associations then writes every status in under 7 minutes when the cluster is quiet and about an
// hour under sustained pod creation, and a single new association gets its status at once either
// way (the burst).
func DefaultPacer(admissions func() uint64) *Pacer {
	return &Pacer{Idle: 50, Busy: 5, BusyAt: 10, Admissions: admissions}
}

// pacerBurst writes this many statuses without waiting, so that an association created or
// changed by hand shows its status at once even while the webhook is busy.
const pacerBurst = 5

// sampleEvery is the shortest window over which the admission rate is measured.
const sampleEvery = 250 * time.Millisecond

func (p *Pacer) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Wait blocks until the next status write may go, or ctx ends.
func (p *Pacer) Wait(ctx context.Context) error {
	r, delay := p.reserve()
	if delay == 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.CancelAt(p.now()) // the write does not happen: its turn goes to the next one
		return ctx.Err()
	}
}

// reserve takes the next write's turn and says how long until it comes.
func (p *Pacer) reserve() (*rate.Reservation, time.Duration) {
	p.once.Do(func() { p.limiter = rate.NewLimiter(rate.Limit(p.Idle), pacerBurst) })
	now := p.now()
	p.adjust(now)
	r := p.limiter.ReserveN(now, 1)
	return r, r.DelayFrom(now)
}

// adjust samples the admission rate (at most every sampleEvery) and sets the write rate for it.
func (p *Pacer) adjust(now time.Time) {
	if p.Admissions == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	count := p.Admissions()
	if p.seenAt.IsZero() {
		// The first write: nothing to compare with yet, so the last window is unknown; assume busy
		// when anything has been admitted at all (a fresh start under load is the case to protect).
		p.seen, p.seenAt, p.busy = count, now, count > 0
		p.setLimit(now)
		return
	}
	elapsed := now.Sub(p.seenAt)
	if elapsed < sampleEvery {
		return
	}
	perSecond := float64(count-p.seen) / elapsed.Seconds()
	p.seen, p.seenAt, p.busy = count, now, perSecond >= p.BusyAt
	p.setLimit(now)
}

func (p *Pacer) setLimit(now time.Time) {
	limit := p.Idle
	if p.busy {
		limit = p.Busy
	}
	if p.limiter.Limit() != rate.Limit(limit) {
		p.limiter.SetLimitAt(now, rate.Limit(limit))
	}
}
