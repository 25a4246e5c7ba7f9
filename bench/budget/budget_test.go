package budget

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReplaceBlock(t *testing.T) {
	doc := []byte("# Performance\n\nintro\n\n" + BeginMarker + "\nold table\n" + EndMarker + "\n\n## Next\n")
	out, err := ReplaceBlock(doc, []byte("\nnew table\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Performance\n\nintro\n\n" + BeginMarker + "\nnew table\n" + EndMarker + "\n\n## Next\n"; string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	for _, bad := range []string{"no markers", EndMarker + BeginMarker, BeginMarker + BeginMarker + EndMarker} {
		if _, err := ReplaceBlock([]byte(bad), []byte("x")); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 20000: "20,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestTable renders a report with made-up figures: a heading and six rows per size, the large
// pod where measured, ratios and verdicts against the budget.
func TestTable(t *testing.T) {
	figures := func(cpu time.Duration, perSecond float64, p99 time.Duration) Figures {
		f := Figures{Requests: 100, Patched: 100, CPUPerRequest: cpu, PerSecond: perSecond}
		f.Latencies.P99 = p99
		return f
	}
	rep := &Report{Plan: DefaultPlan(), ClockTicks: 100, Sizes: []Size{
		{N: 1000, CatchUp: figures(0, 500, 3*time.Millisecond), CatchUpToWrite: 1000, CatchUpWritten: 400, FreshStart: figures(0, 500, 2500*time.Microsecond),
			CatchUpFloor: figures(0, 500, 2*time.Millisecond), FreshStartFloor: figures(0, 500, 2*time.Millisecond),
			Typical:       Pair{Lanyard: figures(120*time.Microsecond, 8000, 0), Floor: figures(100*time.Microsecond, 10000, 0)},
			Large:         &Pair{Lanyard: figures(2*time.Millisecond, 100, 0), Floor: figures(time.Millisecond, 200, 0)},
			Steady:        Pair{Lanyard: figures(0, 500, 2*time.Millisecond), Floor: figures(0, 500, 2*time.Millisecond)},
			LanyardMemory: Memory{AfterRuns: 40 << 10, Idle: 40 << 10, Peak: 50 << 10}, FloorMemory: Memory{AfterRuns: 16 << 10, Idle: 16 << 10, Peak: 20 << 10}},
		{N: 20000, CatchUp: figures(0, 500, time.Millisecond), CatchUpToWrite: 19000, FreshStart: figures(0, 500, time.Millisecond),
			CatchUpFloor: figures(0, 500, time.Millisecond), FreshStartFloor: figures(0, 500, time.Millisecond),
			Typical:       Pair{Lanyard: figures(100*time.Microsecond, 8000, 0), Floor: figures(100*time.Microsecond, 8000, 0)},
			Steady:        Pair{Lanyard: figures(0, 500, time.Millisecond), Floor: figures(0, 500, time.Millisecond)},
			LanyardMemory: Memory{AfterRuns: 40 << 10, Idle: 40 << 10, Peak: 50 << 10}, FloorMemory: Memory{Idle: 16 << 10}},
	}}
	rows := rep.Rows()
	if len(rows) != 7+1+6+1 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	want := map[string]string{
		"CPU per admission, typical pod, 8 workers":              "≤ 1.3 × floor: met",
		"CPU per admission, large pod (20 × 200 env), 4 workers": "≤ 1.5 × floor: **not met**",
		"throughput, typical pod, 8 workers":                     "≥ 0.75 × floor: met",
		"p99 at 500 req/s, typical pod, steady":                  "≤ 1.2 × floor: met",
	}
	for _, row := range rows[:8] {
		if w, ok := want[row.Figure]; ok && row.Budget != w {
			t.Errorf("%s: budget %q, want %q", row.Figure, row.Budget, w)
		}
	}
	if got := rows[5].Ratio; got != "1.50" {
		t.Errorf("catch-up ratio %s, want 1.50 (against the floor measured in turn with the fresh starts)", got)
	}
	if got := rows[6]; got.Ratio != "1.25" || got.Budget != "—" {
		t.Errorf("control row %+v, want ratio 1.25 and no verdict (it is not a budget row)", got)
	}
	if rows[7].Budget != "—" || rows[14].Budget != "≤ 50 MiB: met" {
		t.Errorf("RSS budgets %q, %q", rows[7].Budget, rows[14].Budget)
	}
	if len(rep.Problems()) != 0 {
		t.Errorf("problems: %v", rep.Problems())
	}
	rep.Sizes[0].CatchUp.CPUPerRequest, rep.Sizes[0].FreshStart.CPUPerRequest, rep.Sizes[0].Steady.Lanyard.CPUPerRequest = 130*time.Microsecond, 120*time.Microsecond, 110*time.Microsecond
	var md bytes.Buffer
	rep.WriteMarkdown(&md, Facts{Command: "go run ./bench/suite", Date: time.Unix(0, 0), CPUs: 2, CPUModel: "cpu", GoVersion: "go1", LanyardVersion: "v1"})
	if want := "CPU per review at 500 req/s, background work included: 130 µs during the catch-up, 120 µs after a fresh start with nothing to write, 110 µs steady"; !strings.Contains(md.String(), want) {
		t.Errorf("no %q in\n%s", want, md.String())
	}
	for _, row := range rows {
		if !strings.Contains(md.String(), "| "+row.Figure+" |") {
			t.Errorf("row %q not in\n%s", row.Figure, md.String())
		}
	}
	rep.Sizes[1].Steady.Lanyard.Patched = 99
	if p := rep.Problems(); len(p) != 1 || !strings.Contains(p[0], "N = 20000, lanyard, typical pod, open loop") {
		t.Errorf("problems: %v", p)
	}
}

func TestDeploymentEnv(t *testing.T) {
	env, err := DeploymentEnv(filepath.Join("..", "..", "deploy", "base", "deployment.yaml"), "lanyard")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "GOMEMLIMIT=") && e != "GOMEMLIMIT=" }) {
		t.Errorf("no GOMEMLIMIT from limits.memory in %v", env)
	}
	if slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "POD_NAMESPACE=") }) {
		t.Errorf("a value from the pod in %v", env)
	}
	if _, err := DeploymentEnv(filepath.Join("..", "..", "deploy", "base", "deployment.yaml"), "nope"); err == nil {
		t.Error("no error for a missing container")
	}
}

func TestMedianP99s(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, v := range n {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(7), 7 * time.Millisecond},
		{ms(2, 40, 3), 3 * time.Millisecond}, // one round's hiccup does not decide
		{ms(4, 1, 3, 2), 2500 * time.Microsecond},
	} {
		if got := medianP99s(tc.in); got != tc.want {
			t.Errorf("medianP99s(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
