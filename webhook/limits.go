package webhook

import (
	"context"
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
	// minReviewWeight is what a review counts for at least, whatever its size.
	minReviewWeight = 16 << 10
)

// Limits bound the reviews lanyard works on at once, by number and by body bytes, so memory
// stays bounded whatever clients send. A review waits for room until its deadline and is then
// refused with 503 (the webhook's failurePolicy decides).
type Limits struct {
	reviews  *semaphore.Weighted
	bytes    *semaphore.Weighted
	maxBytes int64
	metrics  *Metrics
}

// NewLimits returns limits of maxReviews reviews and maxBytes body bytes in flight.
func NewLimits(maxReviews int, maxBytes int64, metrics *Metrics) *Limits {
	if maxReviews <= 0 {
		maxReviews = DefaultMaxInflightReviews
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxInflightBytes
	}
	return &Limits{reviews: semaphore.NewWeighted(int64(maxReviews)), bytes: semaphore.NewWeighted(maxBytes),
		maxBytes: maxBytes, metrics: metrics}
}

// acquire waits for room for a review of size bytes (the body size, or the body limit when the
// size is not announced). release must be called once the answer is written.
func (l *Limits) acquire(ctx context.Context, size int64) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	weight := min(max(size, minReviewWeight), l.maxBytes)
	if err := l.reviews.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	if err := l.bytes.Acquire(ctx, weight); err != nil {
		l.reviews.Release(1)
		return nil, err
	}
	l.metrics.inflight(1)
	return func() {
		l.metrics.inflight(-1)
		l.bytes.Release(weight)
		l.reviews.Release(1)
	}, nil
}

// Handler applies the limits to another admission handler (the association validator): the
// body limit and the in-flight bounds, with the same Status answers as the pod handler.
func (l *Limits) Handler(next http.Handler, maxBodyBytes int64, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBodyBytes {
			writeStatus(w, &httpError{http.StatusRequestEntityTooLarge, reasonTooLarge,
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
			writeStatus(w, overloaded(err))
			return
		}
		defer release()
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func overloaded(err error) *httpError {
	return &httpError{http.StatusServiceUnavailable, reasonOverloaded,
		"lanyard is at its limit of reviews in flight and could not take this one before its deadline: " + err.Error()}
}

// requestBudget is how long one review may take: the API server's own timeout for the call (it
// sends ?timeout=), bounded by lanyard's.
func requestBudget(r *http.Request, limit time.Duration) time.Duration {
	if t := r.URL.Query().Get("timeout"); t != "" {
		if d, err := time.ParseDuration(t); err == nil && d > 0 && d < limit {
			return d
		}
	}
	return limit
}
