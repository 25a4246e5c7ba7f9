package status

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeAdmissions is a review counter and a clock the test moves.
type fakeAdmissions struct {
	now     time.Time
	reviews uint64
}

func (f *fakeAdmissions) pacer() *Pacer {
	p := DefaultPacer(func() uint64 { return f.reviews })
	p.Now = func() time.Time { return f.now }
	return p
}

// advance moves the clock by d while the webhook admits perSecond reviews a second.
func (f *fakeAdmissions) advance(d time.Duration, perSecond float64) {
	f.reviews += uint64(perSecond * d.Seconds())
	f.now = f.now.Add(d)
}

// delays reserves n writes at the current instant and returns the wait of the last.
func delays(p *Pacer, n int) time.Duration {
	var d time.Duration
	for range n {
		_, d = p.reserve()
	}
	return d
}

func TestPacerWritesAtIdleRateWhileAdmissionsAreQuiet(t *testing.T) {
	f := &fakeAdmissions{now: time.Unix(1_000_000, 0)}
	p := f.pacer()
	assert.Zero(t, delays(p, pacerBurst), "the burst goes at once")
	assert.Equal(t, 20*time.Millisecond, delays(p, 1), "past the burst, one write every 1/50 s")
	f.advance(time.Second, 2) // 2 admissions a second: below BusyAt
	delays(p, pacerBurst)
	assert.False(t, p.busy)
	assert.Equal(t, 20*time.Millisecond, delays(p, 1))
}

func TestPacerSlowsWritesWhileTheWebhookIsBusy(t *testing.T) {
	f := &fakeAdmissions{now: time.Unix(1_000_000, 0)}
	p := f.pacer()
	_, d := p.reserve()
	require.Zero(t, d)
	f.advance(time.Second, 500) // a fresh start under load: 500 reviews a second
	// The burst refilled at the idle rate meanwhile; once it is spent, writes are 1/5 s apart.
	delays(p, pacerBurst-1)
	_, first := p.reserve()
	_, second := p.reserve()
	assert.Equal(t, 200*time.Millisecond, second-first)

	f.advance(10*time.Second, 0) // admissions stop: back to the idle rate
	delays(p, pacerBurst-1)
	_, first = p.reserve()
	_, second = p.reserve()
	assert.Equal(t, 20*time.Millisecond, second-first)
}

func TestPacerSamplesTheAdmissionRateOverAWindow(t *testing.T) {
	f := &fakeAdmissions{now: time.Unix(1_000_000, 0), reviews: 1}
	p := f.pacer()
	p.reserve()
	assert.True(t, p.busy, "admissions seen before the first write: a fresh start under load counts as busy")
	f.advance(100*time.Millisecond, 0)
	p.reserve()
	assert.True(t, p.busy, "a window shorter than sampleEvery decides nothing")
	f.advance(sampleEvery, 0)
	p.reserve()
	assert.False(t, p.busy)
	f.advance(time.Second, 10) // exactly BusyAt
	p.reserve()
	assert.True(t, p.busy)
}

func TestPacerWaitEndsWithItsContextAndGivesBackTheTurn(t *testing.T) {
	p := &Pacer{Idle: 0.001, Busy: 0.001, BusyAt: 10} // one write every 1,000 s past the burst
	ctx := context.Background()
	for range pacerBurst {
		require.NoError(t, p.Wait(ctx))
	}
	cancelled, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Wait(cancelled), context.DeadlineExceeded)
	_, d := p.reserve()
	assert.Less(t, d, 1001*time.Second, "the cancelled write's turn was given back")
	assert.Greater(t, d, 990*time.Second)
}
