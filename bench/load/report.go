package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"time"

	"github.com/lanyard-dev/lanyard/bench/loadgen"
)

// report is the whole run, as printed (markdown) or written (-json).
type report struct {
	Load                string        `json:"load"`
	ClockTicksPerSecond int64         `json:"clockTicksPerSecond"`
	ClockTicksSource    string        `json:"clockTicksSource"`
	CPUs                int           `json:"cpus"`
	Smoke               bool          `json:"smoke"`
	Shapes              []shapeReport `json:"shapes"`
}

// shapeReport compares both servers on one pod shape.
type shapeReport struct {
	Shape       loadgen.Shape      `json:"shape"`
	ReviewBytes int                `json:"reviewBytes"`
	Target      serverReport       `json:"target"`
	Floor       serverReport       `json:"floor"`
	Ratio       map[string]*number `json:"ratio"` // target / floor per figure; null where undefined
}

// serverReport is one server's figures over all rounds of a shape.
type serverReport struct {
	Name            string  `json:"name"`
	URL             string  `json:"url"`
	PID             int     `json:"pid,omitempty"`
	Requests        int64   `json:"requests"`
	OK              int64   `json:"ok"`
	Patched         int64   `json:"patched"`
	Allowed         int64   `json:"allowedWithoutPatch"`
	Denied          int64   `json:"denied"`
	HTTPErrors      int64   `json:"httpErrors"`
	TransportErrors int64   `json:"transportErrors"`
	BadAnswers      int64   `json:"badAnswers"`
	Errors          int64   `json:"errors"`
	FirstError      string  `json:"firstError,omitempty"`
	Seconds         float64 `json:"seconds"`
	// The figures compared; null where not measured (no -target-pid) or undefined.
	RequestsPerSecond     *number `json:"requestsPerSecond"`
	P50Ms                 *number `json:"p50Ms"`
	P90Ms                 *number `json:"p90Ms"`
	P99Ms                 *number `json:"p99Ms"`
	MaxMs                 *number `json:"maxMs"`
	PatchedShare          *number `json:"patchedShare"`
	CPUTicks              int64   `json:"cpuTicks"`
	CPUMicrosPerRequest   *number `json:"cpuMicrosPerRequest"`
	RSSMiB                *number `json:"rssMiB"`
	HWMMiB                *number `json:"hwmMiB"`
	ClientCPUMicrosPerReq *number `json:"clientCpuMicrosPerRequest"`
	serverMeasured        bool
}

// number is a figure that may be missing (nil) and is never NaN or infinite.
type number float64

func num(v float64) *number {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	n := number(v)
	return &n
}

func ms(d time.Duration) *number { return num(float64(d) / float64(time.Millisecond)) }

func newServerReport(sd *side, hz int64) serverReport {
	st := sd.stats
	r := serverReport{Name: sd.server.Name, URL: sd.server.URL, PID: sd.server.PID,
		Requests: st.Requests, OK: st.OK, Patched: st.Patched, Allowed: st.Allowed, Denied: st.Denied,
		HTTPErrors: st.HTTPErrors, TransportErrors: st.TransportErrors, BadAnswers: st.BadAnswers,
		Errors: st.Errors(), FirstError: st.FirstError, Seconds: st.Elapsed.Seconds()}
	if st.Requests == 0 {
		return r
	}
	lat := loadgen.Summarize(st.Latencies)
	r.RequestsPerSecond = num(float64(st.Requests) / st.Elapsed.Seconds())
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = ms(lat.P50), ms(lat.P90), ms(lat.P99), ms(lat.Max)
	if st.OK > 0 {
		r.PatchedShare = num(float64(st.Patched) / float64(st.OK))
	}
	perRequest := func(ticks int64) *number {
		return num(float64(ticks) * 1e6 / float64(hz) / float64(st.Requests))
	}
	if sd.last != nil {
		r.serverMeasured = true
		r.CPUTicks = sd.ticks
		r.CPUMicrosPerRequest = perRequest(sd.ticks)
		r.RSSMiB, r.HWMMiB = num(float64(sd.last.RSSKiB)/1024), num(float64(sd.last.HWMKiB)/1024)
	}
	r.ClientCPUMicrosPerReq = perRequest(sd.clientTicks)
	return r
}

// figure is one row of the comparison.
type figure struct {
	key, label string
	value      func(serverReport) *number
	format     func(float64) string
}

var figures = []figure{
	{"requestsPerSecond", "requests/s", func(r serverReport) *number { return r.RequestsPerSecond }, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
	{"p50", "latency p50", func(r serverReport) *number { return r.P50Ms }, fmtMs},
	{"p90", "latency p90", func(r serverReport) *number { return r.P90Ms }, fmtMs},
	{"p99", "latency p99", func(r serverReport) *number { return r.P99Ms }, fmtMs},
	{"max", "latency max", func(r serverReport) *number { return r.MaxMs }, fmtMs},
	{"patchedShare", "answers with a patch", func(r serverReport) *number { return r.PatchedShare }, func(v float64) string { return fmt.Sprintf("%.1f %%", 100*v) }},
	{"errors", "errors (non-200, transport, bad answers)", func(r serverReport) *number { return num(float64(r.Errors)) }, nil},
	{"cpuPerRequest", "server CPU per request (user+sys)", func(r serverReport) *number { return r.CPUMicrosPerRequest }, func(v float64) string { return fmt.Sprintf("%.1f µs", v) }},
	{"rss", "server RSS (VmRSS, after the run)", func(r serverReport) *number { return r.RSSMiB }, fmtMiB},
	{"hwm", "server peak RSS (VmHWM, since start)", func(r serverReport) *number { return r.HWMMiB }, fmtMiB},
	{"clientCpuPerRequest", "load client CPU per request", func(r serverReport) *number { return r.ClientCPUMicrosPerReq }, func(v float64) string { return fmt.Sprintf("%.1f µs", v) }},
}

func fmtMs(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.0f µs", v*1000)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func fmtMiB(v float64) string { return fmt.Sprintf("%.1f MiB", v) }

func newShapeReport(s loadgen.Shape, reviewBytes int, target, floor *side, hz int64) shapeReport {
	sr := shapeReport{Shape: s, ReviewBytes: reviewBytes, Target: newServerReport(target, hz), Floor: newServerReport(floor, hz),
		Ratio: map[string]*number{}}
	for _, f := range figures {
		t, fl := f.value(sr.Target), f.value(sr.Floor)
		if t != nil && fl != nil && *fl != 0 {
			sr.Ratio[f.key] = num(float64(*t) / float64(*fl))
		} else {
			sr.Ratio[f.key] = nil
		}
	}
	return sr
}

func describeLoad(o options) string {
	var b strings.Builder
	if o.rate > 0 {
		fmt.Fprintf(&b, "open loop, %g reviews/s (%s arrivals, latency from the due time, at most %d outstanding)", o.rate, o.arrivals, o.inflight)
	} else {
		fmt.Fprintf(&b, "closed loop, %d workers", o.workers)
	}
	fmt.Fprintf(&b, ", %s measured per server after %s of warm-up", o.duration, o.warmup)
	if o.requests > 0 {
		fmt.Fprintf(&b, " (at most %d reviews)", o.requests)
	}
	fmt.Fprintf(&b, ", %d round(s), pod CREATE reviews over HTTPS (HTTP/1.1 keep-alive), ServiceAccounts sa-0…sa-%d in namespace %s",
		o.rounds, o.serviceAccounts-1, o.namespace)
	return b.String()
}

func (r *report) writeJSON(w io.Writer) error {
	r.CPUs = runtime.NumCPU()
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

func (r *report) writeMarkdown(w io.Writer) {
	r.CPUs = runtime.NumCPU()
	fmt.Fprintf(w, "Load: %s.\n", r.Load)
	fmt.Fprintf(w, "CPU from /proc/<pid>/stat (utime+stime) at %d ticks/s (%s); %d CPUs, shared by the load client and both servers.\n",
		r.ClockTicksPerSecond, r.ClockTicksSource, r.CPUs)
	if r.Smoke {
		fmt.Fprintln(w, "Smoke run: both columns are floor servers (no lanyard); the ratios should be close to 1.")
	}
	for _, sr := range r.Shapes {
		t, f := sr.Target, sr.Floor
		fmt.Fprintf(w, "\n### %s pod (%d container(s) × %d env, %d volume(s); review %s)\n\n", sr.Shape.Name, sr.Shape.Containers, sr.Shape.Env, sr.Shape.Volumes, fmtBytes(sr.ReviewBytes))
		fmt.Fprintf(w, "| figure | %s | %s | %s / %s |\n|---|---|---|---|\n", t.Name, f.Name, t.Name, f.Name)
		fmt.Fprintf(w, "| reviews sent | %d | %d | |\n", t.Requests, f.Requests)
		for _, fig := range figures {
			ratio := "—"
			if v := sr.Ratio[fig.key]; v != nil {
				ratio = fmt.Sprintf("%.2f", float64(*v))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", fig.label, cell(t, fig), cell(f, fig), ratio)
		}
		for _, s := range []serverReport{t, f} {
			if s.FirstError != "" {
				fmt.Fprintf(w, "\n%s: %d non-200, %d transport errors, %d bad answers, %d denied; first: %s\n",
					s.Name, s.HTTPErrors, s.TransportErrors, s.BadAnswers, s.Denied, s.FirstError)
			}
			if !s.serverMeasured {
				fmt.Fprintf(w, "\n%s: no process id (-target-pid), so no server CPU or memory.\n", s.Name)
			}
		}
	}
}

func cell(r serverReport, f figure) string {
	v := f.value(r)
	switch {
	case v == nil:
		return "n/a"
	case f.format == nil:
		return fmt.Sprintf("%.0f", float64(*v))
	default:
		return f.format(float64(*v))
	}
}

func fmtBytes(n int) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/1024)
}

// smokeCheck fails a smoke run unless every review was answered with a patch by both servers.
func (r *report) smokeCheck() error {
	var problems []string
	for _, sr := range r.Shapes {
		for _, s := range []serverReport{sr.Target, sr.Floor} {
			if s.Requests == 0 || s.Errors > 0 || s.Patched != s.Requests {
				problems = append(problems, fmt.Sprintf("%s: %d reviews, %d errors, %d patched", s.Name, s.Requests, s.Errors, s.Patched))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New("smoke run failed: " + strings.Join(problems, "; "))
	}
	return nil
}
