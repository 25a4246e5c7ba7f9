package budget

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lanyard-dev/lanyard/bench/loadgen"
)

// Row is one line of the table: a figure, both servers' values, lanyard / floor, and SPEC §9's
// budget with whether it is met. A row with only Figure set heads the rows of one size.
type Row struct {
	Figure, Floor, Lanyard, Ratio, Budget string
}

// budget is a limit on lanyard / floor (or, with absolute, on lanyard's value itself).
type budget struct {
	limit    float64
	atLeast  bool // the value must be at least limit (throughput)
	absolute string
}

func (b budget) cell(v float64) string {
	met := v <= b.limit
	if b.atLeast {
		met = v >= b.limit
	}
	verdict := "met"
	if !met {
		verdict = "**not met**"
	}
	switch {
	case b.absolute != "":
		return fmt.Sprintf("≤ %s: %s", b.absolute, verdict)
	case b.atLeast:
		return fmt.Sprintf("≥ %.2g × floor: %s", b.limit, verdict)
	default:
		return fmt.Sprintf("≤ %.2g × floor: %s", b.limit, verdict)
	}
}

// SPEC §9's budget.
var (
	cpuTypicalBudget = budget{limit: 1.3}
	cpuLargeBudget   = budget{limit: 1.5}
	throughputBudget = budget{limit: 0.75, atLeast: true}
	p99Budget        = budget{limit: 1.2}
	// rssBudget applies with 20,000 ServiceAccounts + 20,000 associations cached.
	rssBudget    = budget{limit: 50 * 1024, absolute: "50 MiB"}
	rssBudgetAtN = 20000
)

// Rows is the table.
func (r *Report) Rows() []Row {
	plan := r.Plan
	var rows []Row
	for _, s := range r.Sizes {
		rows = append(rows, Row{Figure: fmt.Sprintf("**N = %s** ServiceAccounts + associations", thousands(s.N))})
		cpu := func(label string, p Pair, b budget) {
			rows = append(rows, ratioRow(label, fmtCPU(p.Floor.CPUPerRequest), fmtCPU(p.Lanyard.CPUPerRequest),
				float64(p.Lanyard.CPUPerRequest), float64(p.Floor.CPUPerRequest), b))
		}
		cpu(fmt.Sprintf("CPU per admission, typical pod, %d workers", plan.Workers), s.Typical, cpuTypicalBudget)
		if s.Large != nil {
			cpu(fmt.Sprintf("CPU per admission, large pod (%d × %d env), %d workers", loadgen.Large.Containers, loadgen.Large.Env, plan.LargeWorkers), *s.Large, cpuLargeBudget)
		}
		rows = append(rows, ratioRow(fmt.Sprintf("throughput, typical pod, %d workers", plan.Workers),
			fmtRate(s.Typical.Floor.PerSecond), fmtRate(s.Typical.Lanyard.PerSecond), s.Typical.Lanyard.PerSecond, s.Typical.Floor.PerSecond, throughputBudget))
		rate := thousands(int(plan.Rate))
		rows = append(rows, ratioRow(fmt.Sprintf("p99 at %s req/s, typical pod, steady", rate),
			fmtLatency(s.Steady.Floor.Latencies.P99), fmtLatency(s.Steady.Lanyard.Latencies.P99),
			float64(s.Steady.Lanyard.Latencies.P99), float64(s.Steady.Floor.Latencies.P99), p99Budget))
		rows = append(rows, ratioRow(fmt.Sprintf("p99 at %s req/s, typical pod, fresh start during the status catch-up (%s of %s statuses written in the runs)",
			rate, thousands(s.CatchUpWritten), thousands(s.CatchUpToWrite)),
			fmtLatency(s.CatchUpFloor.Latencies.P99), fmtLatency(s.CatchUp.Latencies.P99),
			float64(s.CatchUp.Latencies.P99), float64(s.CatchUpFloor.Latencies.P99), p99Budget))
		control := ratioRow(fmt.Sprintf("p99 at %s req/s, typical pod, fresh start with every status written (control for the row above)", rate),
			fmtLatency(s.FreshStartFloor.Latencies.P99), fmtLatency(s.FreshStart.Latencies.P99),
			float64(s.FreshStart.Latencies.P99), float64(s.FreshStartFloor.Latencies.P99), p99Budget)
		control.Budget = "—"
		rows = append(rows, control)
		rss := Row{Figure: fmt.Sprintf("RSS after the runs → idle %s (peak)", plan.Idle),
			Floor:   fmtMemory(s.FloorMemory),
			Lanyard: fmtMemory(s.LanyardMemory),
			Ratio:   fmtRatio(float64(s.LanyardMemory.Idle), float64(s.FloorMemory.Idle)), Budget: "—"}
		if s.N == rssBudgetAtN {
			rss.Budget = rssBudget.cell(float64(s.LanyardMemory.Idle))
		}
		rows = append(rows, rss)
	}
	return rows
}

func ratioRow(label, floor, lanyard string, l, f float64, b budget) Row {
	row := Row{Figure: label, Floor: floor, Lanyard: lanyard, Ratio: fmtRatio(l, f), Budget: "—"}
	if l > 0 && f > 0 {
		row.Budget = b.cell(l / f)
	}
	return row
}

func fmtRatio(l, f float64) string {
	if l <= 0 || f <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", l/f)
}

func fmtCPU(d time.Duration) string {
	switch {
	case d <= 0:
		return "n/a"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}

func fmtLatency(d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func fmtRate(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1fk/s", v/1000)
	}
	return fmt.Sprintf("%.0f/s", v)
}

func fmtMemory(m Memory) string {
	if m.Idle <= 0 {
		return "n/a"
	}
	mib := func(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }
	return fmt.Sprintf("%s → %s MiB (%s)", mib(m.AfterRuns), mib(m.Idle), mib(m.Peak))
}

// thousands writes n with thousands separators: 20,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Facts are the circumstances of a run, printed above the table.
type Facts struct {
	Command        string // the exact command line
	Date           time.Time
	CPUs           int
	CPUModel       string
	GoVersion      string // of the lanyard binary
	LanyardVersion string
	LoadAverage    string // /proc/loadavg at the start
	LanyardEnv     []string
}

// Problems lists every measured run with a review that was not answered 200 with a patch (by
// lanyard) or not answered (by either): figures of such runs do not measure an injection.
func (r *Report) Problems() []string {
	var out []string
	check := func(what string, f Figures) {
		if f.Requests == 0 || f.Errors > 0 || f.Patched != f.Requests {
			out = append(out, fmt.Sprintf("%s: %d reviews, %d errors, %d with a patch (first problem: %s)", what, f.Requests, f.Errors, f.Patched, f.FirstError))
		}
	}
	for _, s := range r.Sizes {
		at := fmt.Sprintf("N = %d, ", s.N)
		check(at+"lanyard, fresh start during the catch-up", s.CatchUp)
		check(at+"lanyard, fresh start with nothing to write", s.FreshStart)
		check(at+"floor, in turn with the fresh starts during the catch-up", s.CatchUpFloor)
		check(at+"floor, in turn with the fresh starts with nothing to write", s.FreshStartFloor)
		pairs := []struct {
			name string
			p    *Pair
		}{{"typical pod, closed loop", &s.Typical}, {"large pod, closed loop", s.Large}, {"typical pod, open loop", &s.Steady}}
		for _, p := range pairs {
			if p.p != nil {
				check(at+"lanyard, "+p.name, p.p.Lanyard)
				check(at+"floor, "+p.name, p.p.Floor)
			}
		}
	}
	return out
}

// WriteMarkdown writes the table with the facts of the run and what each row measured.
func (r *Report) WriteMarkdown(w io.Writer, f Facts) {
	plan := r.Plan
	fmt.Fprintf(w, "Produced by `%s` on %s — nproc %d (%s), load average %s at the start; lanyard `%s` built with %s.\n\n",
		f.Command, f.Date.UTC().Format("2006-01-02 15:04 MST"), f.CPUs, f.CPUModel, f.LoadAverage, f.LanyardVersion, f.GoVersion)
	fmt.Fprintln(w, "| figure | floor | lanyard | lanyard / floor | SPEC §9 budget |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, row := range r.Rows() {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", row.Figure, row.Floor, row.Lanyard, row.Ratio, row.Budget)
	}
	fmt.Fprintln(w)
	var requests int64
	for _, s := range r.Sizes {
		for _, p := range []*Pair{&s.Typical, s.Large, &s.Steady} {
			if p != nil {
				requests += p.Lanyard.Requests + p.Floor.Requests
			}
		}
		requests += s.CatchUp.Requests + s.FreshStart.Requests + s.CatchUpFloor.Requests + s.FreshStartFloor.Requests
	}
	fmt.Fprintf(w, "Each figure: %s measured per server after %s of warm-up, %d round(s) (lanyard and the floor alternating), "+
		"AdmissionReviews of pod CREATEs over HTTPS with HTTP/1.1 keep-alive straight to each server's port; closed loop of N workers, "+
		"or open loop at the rate with Poisson arrivals and latency counted from the due time; p99 is the median of the rounds' own p99s "+
		"(a hiccup of the shared machine during one round does not decide it). "+
		"CPU per admission is the server's user+sys time from /proc over the measured run (%d ticks/s) divided by its reviews; "+
		"the load client, both servers, kube-apiserver and etcd share the machine's CPUs. RSS: VmRSS right after the last run → "+
		"after %s idle (VmHWM, the peak since the process started, in parentheses).\n\n",
		plan.Duration, plan.Warmup, plan.Rounds, r.ClockTicks, plan.Idle)
	if problems := r.Problems(); len(problems) > 0 {
		fmt.Fprintf(w, "**Not every review was answered with a patch** — these figures do not measure injections: %s.\n\n", strings.Join(problems, "; "))
	} else {
		fmt.Fprintf(w, "All %s reviews were answered 200; every answer carried a patch.\n\n", thousands(int(requests)))
	}
	fmt.Fprintf(w, "Fixture on envtest's kube-apiserver and etcd: ServiceAccounts sa-0 … sa-N-1 in namespace `%s` (opted in), "+
		"one IdentityAssociation each (AWS IRSA); the reviews cycle over all N. lanyard: `lanyard serve` as the Deployment runs it "+
		"(certificate files, metrics, health probes, leader election, the status reconciler; %s), on its own ports.",
		plan.Namespace, envNote(f.LanyardEnv))
	for _, s := range r.Sizes {
		fmt.Fprintf(w, " N = %s: seeded in %s; %d fresh starts (the first ready in %s) with %s statuses to write, each measured at once "+
			"(the last had written %s statuses by the end of its run; the floor measured in turn with them, before a start or after a stop); then the statuses "+
			"written by the suite as lanyard would (`status.Compute`) and %d fresh starts measured the same way with nothing to write "+
			"(%s statuses written: a restart finds them as it would write them); then lanyard started again (ready in %s) and measured once its status pass was done.",
			thousands(s.N), s.SeedTime.Round(100*time.Millisecond), plan.Rounds, s.CatchUpReadyAfter.Round(10*time.Millisecond), thousands(s.CatchUpToWrite),
			thousands(s.CatchUpWrittenTill), plan.Rounds, thousands(s.FreshStartWrites), s.ReadyAfter.Round(10*time.Millisecond))
		if s.HandlingP99CatchUp > 0 && s.HandlingP99Steady > 0 {
			fmt.Fprintf(w, " lanyard's own handling time of those reviews (its `%s` histogram, p99 as the bound of its bucket): ≤ %s during the catch-up, ≤ %s after a fresh start with nothing to write, ≤ %s steady.",
				handlingHistogram, fmtLatency(s.HandlingP99CatchUp), fmtLatency(s.HandlingP99Fresh), fmtLatency(s.HandlingP99Steady))
		}
		if s.CatchUp.CPUPerRequest > 0 && s.FreshStart.CPUPerRequest > 0 && s.Steady.Lanyard.CPUPerRequest > 0 {
			fmt.Fprintf(w, " lanyard's CPU per review at %s req/s, background work included: %s during the catch-up, %s after a fresh start with nothing to write, %s steady.",
				thousands(int(plan.Rate)), fmtCPU(s.CatchUp.CPUPerRequest), fmtCPU(s.FreshStart.CPUPerRequest), fmtCPU(s.Steady.Lanyard.CPUPerRequest))
		}
		if s.SteadyStatusWrites > 0 {
			fmt.Fprintf(w, " **The restarted lanyard wrote %s statuses again** (it did not find them as it would write them), during the steady runs.", thousands(s.SteadyStatusWrites))
		}
	}
	fmt.Fprintln(w)
}

func envNote(env []string) string {
	if len(env) == 0 {
		return "no environment added"
	}
	return "environment as in deploy/base: `" + strings.Join(env, "`, `") + "`"
}

// The markers around the block of docs/performance.md that WriteMarkdown's output replaces.
const (
	BeginMarker = "<!-- bench:begin -->"
	EndMarker   = "<!-- bench:end -->"
)

// ReplaceBlock returns doc with what lies between BeginMarker and EndMarker replaced by block.
func ReplaceBlock(doc, block []byte) ([]byte, error) {
	begin := bytes.Index(doc, []byte(BeginMarker))
	end := bytes.Index(doc, []byte(EndMarker))
	if begin < 0 || end < 0 || end < begin || bytes.Count(doc, []byte(BeginMarker)) != 1 || bytes.Count(doc, []byte(EndMarker)) != 1 {
		return nil, errors.New("the document needs one " + BeginMarker + " followed by one " + EndMarker)
	}
	var out bytes.Buffer
	out.Write(doc[:begin+len(BeginMarker)])
	out.WriteString("\n")
	out.Write(bytes.TrimSpace(block))
	out.WriteString("\n")
	out.Write(doc[end:])
	return out.Bytes(), nil
}
