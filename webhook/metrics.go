package webhook

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a pod admission, the "result" label of the latency histogram.
const (
	resultInjected  = "injected"  // patch returned
	resultUnchanged = "unchanged" // processed, nothing to add
	resultSkipped   = "skipped"   // not a pod CREATE, system namespace, opted out
	resultDenied    = "denied"    // invalid annotations
	resultError     = "error"     // malformed request, lookup failure, panic
)

// Reasons of lanyard_admission_errors_total.
const (
	reasonBadRequest = "bad_request"
	reasonTooLarge   = "too_large"
	reasonLookup     = "lookup"
	reasonPanic      = "panic"
	reasonBadPod     = "bad_pod"
	reasonInternal   = "internal"
	reasonOverloaded = "overloaded" // no room within the in-flight limits before the deadline
	reasonDeadline   = "deadline"   // the request ended before its review did
	reasonWrite      = "write"      // the answer could not be delivered
)

// Metrics are lanyard's admission metrics; controller-runtime adds its generic webhook metrics
// (requests, latency, in-flight) for every registered path.
type Metrics struct {
	duration   map[string]prometheus.Observer
	injections map[string]prometheus.Counter
	misses     *prometheus.CounterVec
	errors     map[string]prometheus.Counter
	inflightG  prometheus.Gauge
	connsG     prometheus.Gauge
	// reviews counts every review answered, for the status writes' pacing (cheaper to read than
	// the histogram).
	reviews atomic.Uint64
}

// Reviews returns how many reviews have been answered.
func (m *Metrics) Reviews() uint64 {
	if m == nil {
		return 0
	}
	return m.reviews.Load()
}

// NewMetrics creates and registers the metrics. The histogram's buckets start at 50µs: lanyard
// answers in well under a millisecond, and a first bucket of 125ms would hide everything.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lanyard_admission_duration_seconds",
		Help:    "Time to answer a pod admission request, from body read to response written, by result.",
		Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1},
	}, []string{"result"})
	injections := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lanyard_injections_total",
		Help: "Pods given something, by provider (aws, azure, gcp, registry).",
	}, []string{"provider"})
	misses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lanyard_lookup_misses_total",
		Help: "Cache misses that needed a live read, by resource.",
	}, []string{"resource"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lanyard_admission_errors_total",
		Help: "Admission requests answered with an error, by reason.",
	}, []string{"reason"})
	inflight := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lanyard_inflight_reviews",
		Help: "Admission reviews being worked on (bounded by --max-inflight-reviews).",
	})
	conns := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lanyard_open_connections",
		Help: "Open connections to the admission server (bounded by --max-connections).",
	})
	inflight = register(reg, inflight)
	conns = register(reg, conns)
	duration = register(reg, duration)
	injections = register(reg, injections)
	misses = register(reg, misses)
	errs = register(reg, errs)

	m := &Metrics{
		duration:   map[string]prometheus.Observer{},
		injections: map[string]prometheus.Counter{},
		misses:     misses,
		errors:     map[string]prometheus.Counter{},
		inflightG:  inflight,
		connsG:     conns,
	}
	// Resolve every label value once: no hashing or allocation per request.
	for _, r := range []string{resultInjected, resultUnchanged, resultSkipped, resultDenied, resultError} {
		m.duration[r] = duration.WithLabelValues(r)
	}
	for _, p := range []string{"aws", "azure", "gcp", "registry"} {
		m.injections[p] = injections.WithLabelValues(p)
	}
	for _, r := range []string{reasonBadRequest, reasonTooLarge, reasonLookup, reasonPanic, reasonBadPod, reasonInternal, reasonOverloaded, reasonDeadline, reasonWrite} {
		m.errors[r] = errs.WithLabelValues(r)
	}
	return m
}

// register registers c, or returns the collector already registered under its name (a server
// restarted within one process keeps counting where it was).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// LookupMiss counts a cache miss; it is the cluster reader's OnMiss hook.
func (m *Metrics) LookupMiss(resource string) {
	if m != nil {
		m.misses.WithLabelValues(resource).Inc()
	}
}

func (m *Metrics) inflight(delta float64) {
	if m != nil {
		m.inflightG.Add(delta)
	}
}

// OpenConnections records the number of open admission connections (the server's hook).
func (m *Metrics) OpenConnections(n int) {
	if m != nil {
		m.connsG.Set(float64(n))
	}
}

func (m *Metrics) observe(result string, seconds float64) {
	if m != nil {
		m.duration[result].Observe(seconds)
		m.reviews.Add(1)
	}
}

func (m *Metrics) error(reason string) {
	if m != nil {
		m.errors[reason].Inc()
	}
}

func (m *Metrics) injected(items []string) {
	if m == nil {
		return
	}
	registry := false
	for _, it := range items {
		if c, ok := m.injections[it]; ok {
			c.Inc()
		} else if !registry {
			registry = true
			m.injections["registry"].Inc()
		}
	}
}
