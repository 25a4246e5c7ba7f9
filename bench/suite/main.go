// Command suite is `make bench`: SPEC §9's performance table for lanyard and the floor server in
// one run. It starts a real kube-apiserver and etcd (envtest, with lanyard's CRDs and no webhook
// configurations: nothing calls lanyard but the load), runs package budget's plan — N = 1,000
// and 20,000 ServiceAccounts + IdentityAssociations by default — against the lanyard binary given
// with -lanyard and the floor server (bench/floorserver, built for the run), prints the table and, with
// -write-docs, replaces the block between the bench markers of docs/performance.md with it.
package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/lanyard-dev/lanyard/bench/budget"
	"github.com/lanyard-dev/lanyard/bench/loadgen"
	"github.com/lanyard-dev/lanyard/policy/cluster"
)

// lanyardNamespace is lanyard's own namespace, where its leader election Lease lives.
const lanyardNamespace = "lanyard-system"

type options struct {
	plan        budget.Plan
	lanyardBin  string
	repo        string
	writeDocs   string
	keepLogs    bool
	commandLine string
}

func main() {
	o := options{plan: budget.DefaultPlan()}
	sizes := flag.String("sizes", joinInts(o.plan.Sizes), "fixture sizes N (ServiceAccounts + IdentityAssociations), ascending, comma-separated")
	large := flag.String("large-at", joinInts(o.plan.LargeAt), "sizes at which the large pod is measured, comma-separated (empty: none)")
	flag.DurationVar(&o.plan.Duration, "duration", o.plan.Duration, "measured time per server and figure")
	flag.DurationVar(&o.plan.Warmup, "warmup", o.plan.Warmup, "load before each measured run, not counted")
	flag.IntVar(&o.plan.Rounds, "rounds", o.plan.Rounds, "rounds per figure, alternating which server goes first")
	flag.Float64Var(&o.plan.Rate, "rate", o.plan.Rate, "open loop: reviews per second (p99 rows)")
	flag.IntVar(&o.plan.Workers, "workers", o.plan.Workers, "closed loop, typical pod: concurrent clients")
	flag.IntVar(&o.plan.LargeWorkers, "large-workers", o.plan.LargeWorkers, "closed loop, large pod: concurrent clients")
	flag.DurationVar(&o.plan.Idle, "idle", o.plan.Idle, "wait after the runs before reading the idle RSS")
	flag.IntVar(&o.plan.SeedWorkers, "seed-workers", o.plan.SeedWorkers, "API requests in flight while seeding and writing statuses")
	flag.StringVar(&o.plan.ProfileDir, "profile-dir", "", "write CPU profiles of lanyard's measured runs here (lanyard then serves pprof)")
	flag.StringVar(&o.lanyardBin, "lanyard", "bin/lanyard", "the lanyard binary (make build)")
	flag.StringVar(&o.repo, "repo", ".", "repository root (deploy/crds, deploy/base/deployment.yaml)")
	flag.StringVar(&o.writeDocs, "write-docs", "", "replace the block between "+budget.BeginMarker+" and "+budget.EndMarker+" of this file with the table")
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "keep lanyard's logs (their directory is printed)")
	flag.Parse()
	o.commandLine = commandLine()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if o.plan.Sizes, err = parseInts(*sizes); err == nil {
		o.plan.LargeAt, err = parseInts(*large)
	}
	if err == nil {
		err = run(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if err := o.plan.Check(); err != nil {
		return err
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run via make bench (it builds the API server once)")
	}
	if o.plan.ProfileDir != "" {
		if err := os.MkdirAll(o.plan.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	facts, err := gatherFacts(o)
	if err != nil {
		return err
	}
	lanyardEnv, err := budget.DeploymentEnv(filepath.Join(o.repo, "deploy", "base", "deployment.yaml"), "lanyard")
	if err != nil {
		return err
	}
	facts.LanyardEnv = lanyardEnv

	started := time.Now()
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join(o.repo, "deploy", "crds")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	fmt.Fprintf(os.Stderr, "bench: kube-apiserver and etcd up in %s\n", time.Since(started).Round(100*time.Millisecond))
	scheme, err := cluster.Scheme()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 5000, 10000
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: lanyardNamespace}}); err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "lanyard-bench-")
	if err != nil {
		return err
	}
	if o.keepLogs {
		fmt.Fprintf(os.Stderr, "bench: lanyard's logs in %s\n", dir)
	} else {
		defer func() { _ = os.RemoveAll(dir) }()
	}
	kubeconfigPath, err := budget.AdminKubeconfig(env, dir)
	if err != nil {
		return err
	}
	certDir := filepath.Join(dir, "certs")
	if err := budget.ServingCertificate(certDir); err != nil {
		return err
	}
	floorBin := filepath.Join(dir, "floorserver")
	build := exec.Command("go", "build", "-o", floorBin, "./bench/floorserver")
	build.Dir, build.Stdout, build.Stderr = o.repo, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building bench/floorserver: %w", err)
	}
	floor, err := loadgen.StartFloor(floorBin)
	if err != nil {
		return err
	}
	defer floor.Stop()

	lanyard := &budget.Lanyard{Binary: o.lanyardBin, Kubeconfig: kubeconfigPath, CertDir: certDir, Namespace: lanyardNamespace,
		Env: lanyardEnv, LogDir: dir, Pprof: o.plan.ProfileDir != ""}
	rep, err := budget.Run(ctx, o.plan, budget.Env{Client: c, Lanyard: lanyard, Floor: floor.Server(), Progress: os.Stderr})
	if err != nil {
		return err
	}
	var table bytes.Buffer
	rep.WriteMarkdown(&table, facts)
	fmt.Print(table.String())
	for _, p := range rep.Profiles {
		fmt.Fprintf(os.Stderr, "bench: CPU profile %s (go tool pprof -top %s %s)\n", p, o.lanyardBin, p)
	}
	fmt.Fprintf(os.Stderr, "bench: done in %s\n", time.Since(started).Round(time.Second))
	if problems := rep.Problems(); len(problems) > 0 {
		return fmt.Errorf("not every review was answered with a patch; %s left as it was", o.writeDocs)
	}
	if o.writeDocs != "" {
		return writeDocs(o.writeDocs, table.Bytes())
	}
	return nil
}

func writeDocs(path string, table []byte) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := budget.ReplaceBlock(doc, table)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: table written to %s\n", path)
	return nil
}

// gatherFacts reads what the table says about the run: machine, Go, lanyard's version.
func gatherFacts(o options) (budget.Facts, error) {
	f := budget.Facts{Command: o.commandLine, Date: time.Now(), CPUs: runtime.NumCPU(), CPUModel: "CPU model unknown"}
	info, err := buildinfo.ReadFile(o.lanyardBin)
	if err != nil {
		return f, fmt.Errorf("%s: %w (make build makes it)", o.lanyardBin, err)
	}
	f.GoVersion = info.GoVersion
	out, err := exec.Command(o.lanyardBin, "version").Output()
	if err != nil {
		return f, fmt.Errorf("%s version: %w", o.lanyardBin, err)
	}
	f.LanyardVersion = strings.Join(strings.Fields(string(out)), " ")
	if fields := strings.Fields(string(out)); len(fields) >= 2 && fields[0] == "lanyard" {
		f.LanyardVersion = fields[1] // "lanyard <version> <go version> <platform>"
	}
	if cpuinfo, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(cpuinfo), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				f.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		if fields := strings.Fields(string(load)); len(fields) >= 3 {
			f.LoadAverage = strings.Join(fields[:3], " ")
		}
	}
	return f, nil
}

// commandLine is how this run was started, as one would type it from the repository root.
func commandLine() string {
	args := []string{"go run ./bench/suite"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " '\"$") {
			a = strconv.Quote(a)
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

func parseInts(list string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", list, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
