package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/sync/semaphore"
)

// Defaults of Limits.
const (
	// DefaultMaxInflightReviews: two cores answer a typical review in ~50 µs, so 64 reviews in
	// flight is a queue of milliseconds, not a bottleneck.
	DefaultMaxInflightReviews = 64
	// DefaultMaxInflightBytes bounds the request bodies held at once. A review costs about three
	// times its body while it is worked on (body, decoded view, response), so this keeps the
	// working set of admission under ~200 MiB even when every review is as large as allowed.
	DefaultMaxInflightBytes = 64 << 20
	// minReviewWeight is what a validator review counts for at least, whatever its size.
	minReviewWeight = 16 << 10
	// readChunk is how much of a body is reserved and read at a time.
	readChunk = 32 << 10
)

// Limits bound the reviews lanyard works on at once, by number and by memory, so memory stays
// bounded whatever clients send. A review waits for room until its deadline and is then refused
// with 503 (the webhook's failurePolicy decides).
//
// Memory is two pools of maxBytes each, so that nobody waits while holding what another waiter
// needs: bodies take body bytes as they arrive (a client that announces a large body and sends
// nothing holds nothing); a review whose body is read takes a slot, then its whole working
// memory at once from the work pool (which only running reviews hold, and they never wait on it
// again); an answer larger than that reservation takes the rest without waiting.
type Limits struct {
	reviews  *semaphore.Weighted
	body     *semaphore.Weighted
	work     *semaphore.Weighted
	maxBytes int64
	metrics  *Metrics
}

// NewLimits returns limits of maxReviews reviews and maxBytes of bodies and of working memory in
// flight.
func NewLimits(maxReviews int, maxBytes int64, metrics *Metrics) *Limits {
	if maxReviews <= 0 {
		maxReviews = DefaultMaxInflightReviews
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxInflightBytes
	}
	return &Limits{reviews: semaphore.NewWeighted(int64(maxReviews)), body: semaphore.NewWeighted(maxBytes),
		work: semaphore.NewWeighted(maxBytes), maxBytes: maxBytes, metrics: metrics}
}

// reservation is what one request holds of the limits.
type reservation struct {
	l         *Limits
	bodyBytes int64
	workBytes int64
	slot      bool
}

func (l *Limits) reserve() *reservation { return &reservation{l: l} }

func tooMuch(max int64) error {
	return fmt.Errorf("one review cannot take more than %d bytes (--max-inflight-review-bytes)", max)
}

// addBody waits for n more body bytes until ctx ends.
func (r *reservation) addBody(ctx context.Context, n int64) error {
	if r.l == nil || n <= 0 {
		return nil
	}
	if r.bodyBytes+n > r.l.maxBytes {
		return tooMuch(r.l.maxBytes)
	}
	if err := r.l.body.Acquire(ctx, n); err != nil {
		return err
	}
	r.bodyBytes += n
	return nil
}

// takeWork waits, holding a slot but no work bytes, for a review's whole working memory.
func (r *reservation) takeWork(ctx context.Context, n int64) error {
	if r.l == nil || n <= 0 {
		return nil
	}
	if n > r.l.maxBytes {
		return tooMuch(r.l.maxBytes)
	}
	if err := r.l.work.Acquire(ctx, n); err != nil {
		return err
	}
	r.workBytes = n
	return nil
}

// growWork takes what an answer needs beyond the working reservation, without waiting: a
// running review never waits on the pool it holds.
func (r *reservation) growWork(n int64) error {
	if r.l == nil || n <= r.workBytes {
		return nil
	}
	if !r.l.work.TryAcquire(n - r.workBytes) {
		return errors.New("no room for the answer")
	}
	r.workBytes = n
	return nil
}

// takeSlot waits for a review slot until ctx ends.
func (r *reservation) takeSlot(ctx context.Context) error {
	if r.l == nil {
		return nil
	}
	if err := r.l.reviews.Acquire(ctx, 1); err != nil {
		return err
	}
	r.slot = true
	r.l.metrics.inflight(1)
	return nil
}

// release gives everything back.
func (r *reservation) release() {
	if r.l == nil {
		return
	}
	if r.slot {
		r.l.metrics.inflight(-1)
		r.l.reviews.Release(1)
		r.slot = false
	}
	if r.bodyBytes > 0 {
		r.l.body.Release(r.bodyBytes)
		r.bodyBytes = 0
	}
	if r.workBytes > 0 {
		r.l.work.Release(r.workBytes)
		r.workBytes = 0
	}
}

// acquire takes a slot and size bytes at once (the association validator, whose body is read by
// controller-runtime).
func (l *Limits) acquire(ctx context.Context, size int64) (release func(), err error) {
	res := l.reserve()
	if err := res.takeSlot(ctx); err != nil {
		return nil, err
	}
	if err := res.takeWork(ctx, min(max(size, minReviewWeight), l.maxBytesOrZero())); err != nil {
		res.release()
		return nil, err
	}
	return res.release, nil
}

func (l *Limits) maxBytesOrZero() int64 {
	if l == nil {
		return 0
	}
	return l.maxBytes
}

// Handler applies the limits to another admission handler (the association validator): the
// body limit and the in-flight bounds, with the same Status answers as the pod handler.
func (l *Limits) Handler(next http.Handler, maxBodyBytes int64, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBodyBytes {
			_ = writeStatus(w, &httpError{http.StatusRequestEntityTooLarge, reasonTooLarge,
				fmt.Sprintf("request body of %d bytes exceeds the limit of %d", r.ContentLength, maxBodyBytes)})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), requestBudget(r, timeout))
		defer cancel()
		size := r.ContentLength
		if size < 0 {
			size = maxBodyBytes
		}
		release, err := l.acquire(ctx, size)
		if err != nil {
			_ = writeStatus(w, overloaded(err))
			return
		}
		defer release()
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func overloaded(err error) *httpError {
	return &httpError{http.StatusServiceUnavailable, reasonOverloaded,
		"lanyard is at its limit of reviews or review bytes in flight (--max-inflight-reviews, --max-inflight-review-bytes) and could not take this one before its deadline: " + err.Error()}
}

// perObjectBytes is what one JSON object of a review costs while it is worked on: decoded into
// the pod view and the typed pod, and edited (a minimal container is ~30 bytes of JSON but ~1 KiB
// of memory). Measured: a 5,667-container review took ~17 MiB.
const perObjectBytes = 1536

// workingBytes estimates the memory a review takes while it is worked on, from its body alone: the
// body, plus its objects (a cheap count of '{'), which dominate for pods of many small containers.
func workingBytes(body []byte) int64 {
	return int64(len(body)) + int64(bytes.Count(body, []byte{'{'}))*perObjectBytes
}

// requestBudget is how long one review may take: the API server's own timeout for the call (it
// sends ?timeout=), bounded by lanyard's, less a margin to write the answer in time.
func requestBudget(r *http.Request, limit time.Duration) time.Duration {
	budget := limit
	if t := r.URL.Query().Get("timeout"); t != "" {
		if d, err := time.ParseDuration(t); err == nil && d > 0 && d < limit {
			budget = d
		}
	}
	return budget - min(budget/10, 200*time.Millisecond)
}
