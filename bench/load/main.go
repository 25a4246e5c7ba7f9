// Command load is SPEC §9's load benchmark: lanyard's admission cost against a floor server, the
// least an admission webhook can do (decode the AdmissionReview keeping the pod raw, answer a
// fixed patch), measured in the same run with the same load over HTTPS.
//
// It sends AdmissionReviews of pod CREATEs (typical and large pods, ServiceAccounts sa-0 … sa-N-1
// in one namespace) over HTTP/1.1 keep-alive connections, in a closed loop (-workers clients) or
// an open loop (-rate requests per second), first to the target (-target, a running lanyard serve)
// then to the floor (this binary again, with -floor, so that it is a process of its own), and
// reports throughput, latency, answers with a patch, errors, and each server's CPU per request and
// memory from /proc. -smoke measures the floor against itself; -seed creates what lanyard needs
// to inject every review. See bench/load/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	benchfloor "github.com/lanyard-dev/lanyard/bench/floor"
	"github.com/lanyard-dev/lanyard/bench/loadgen"
)

type options struct {
	target          string
	targetPID       int
	targetName      string
	smoke           bool
	shapes          []loadgen.Shape
	serviceAccounts int
	namespace       string
	workers         int
	rate            float64
	arrivals        string
	inflight        int
	duration        time.Duration
	warmup          time.Duration
	requests        int
	rounds          int
	timeout         time.Duration
	json            bool
}

func main() {
	var o options
	floor := flag.Bool("floor", false, "serve the floor server (HTTPS, self-signed) and print its URL; used by this tool itself")
	listen := flag.String("listen", "127.0.0.1:0", "with -floor: address to listen on")
	seedFlag := flag.Bool("seed", false, "create -serviceaccounts ServiceAccounts and IdentityAssociations in -namespace (needs -kubeconfig and a serving lanyard) and exit")
	kubeconfig := flag.String("kubeconfig", "", "with -seed: kubeconfig of the cluster lanyard serves (e.g. /tmp/lanyard-dev/kubeconfig)")
	flag.StringVar(&o.target, "target", "", "admission URL of the server to measure, e.g. https://127.0.0.1:9443/mutate-v1-pod")
	flag.IntVar(&o.targetPID, "target-pid", 0, "process id of the target, for its CPU and memory from /proc (0: not measured)")
	flag.StringVar(&o.targetName, "target-name", "lanyard", "name of the target in the report")
	flag.BoolVar(&o.smoke, "smoke", false, "no lanyard needed: a floor server measured against another floor server, 2 s each, typical pod")
	shapeList := flag.String("shapes", "typical", "pod shapes, comma-separated: typical (1 container, 10 env), large (20 containers × 200 env)")
	flag.IntVar(&o.serviceAccounts, "serviceaccounts", 1000, "ServiceAccounts the reviews cycle over (sa-0 … sa-N-1)")
	flag.StringVar(&o.namespace, "namespace", "bench", "namespace of the pods (and of the ServiceAccounts -seed creates)")
	flag.IntVar(&o.workers, "workers", 8, "closed loop: concurrent clients, each sending its next review when answered")
	flag.Float64Var(&o.rate, "rate", 0, "open loop: reviews per second (0: closed loop with -workers)")
	flag.StringVar(&o.arrivals, "arrivals", "poisson", "open loop: poisson (exponential gaps) or uniform")
	flag.IntVar(&o.inflight, "max-inflight", 512, "open loop: most reviews outstanding; more wait, and their wait counts in their latency")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per server, shape and round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "load before each measured run, not counted (connections, caches)")
	flag.IntVar(&o.requests, "requests", 0, "stop each measured run after this many reviews (0: -duration only)")
	flag.IntVar(&o.rounds, "rounds", 1, "rounds per shape; the order alternates (target, floor; floor, target; …) and the rounds are added up")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "per review (also sent as ?timeout=, as the API server does)")
	flag.BoolVar(&o.json, "json", false, "write the report as JSON to stdout instead of markdown")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case *floor:
		err = benchfloor.ServeProcess(*listen)
	case *seedFlag:
		err = seed(ctx, *kubeconfig, o.namespace, o.serviceAccounts)
	default:
		err = o.parseShapes(*shapeList)
		if err == nil {
			err = o.check()
		}
		if err == nil {
			err = run(ctx, o)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		stop()
		os.Exit(1)
	}
}

func (o *options) parseShapes(list string) error {
	for name := range strings.SplitSeq(list, ",") {
		s, ok := loadgen.ShapeNamed(strings.TrimSpace(name))
		if !ok {
			return fmt.Errorf("-shapes: unknown shape %q (typical, large)", name)
		}
		if !slices.Contains(o.shapes, s) {
			o.shapes = append(o.shapes, s)
		}
	}
	return nil
}

func (o *options) check() error {
	if o.smoke {
		o.shapes, o.duration, o.warmup, o.rounds = []loadgen.Shape{loadgen.Typical}, 2*time.Second, 250*time.Millisecond, 1
		o.targetName, o.target, o.targetPID = "floor (as target)", "", 0
	} else if o.target == "" {
		return errors.New("-target (the admission URL of a running lanyard serve) or -smoke is required")
	}
	switch {
	case o.arrivals != "poisson" && o.arrivals != "uniform":
		return fmt.Errorf("-arrivals: poisson or uniform, not %q", o.arrivals)
	case o.workers < 1, o.rounds < 1, o.serviceAccounts < 1, o.inflight < 1:
		return errors.New("-workers, -rounds, -serviceaccounts and -max-inflight must be at least 1")
	case o.rate < 0, o.duration <= 0, o.warmup < 0, o.requests < 0:
		return errors.New("-rate, -warmup and -requests must not be negative, -duration must be positive")
	}
	return nil
}

func run(ctx context.Context, o options) error {
	hz, hzSource := loadgen.ClockTicks()
	floorProc, err := startFloor()
	if err != nil {
		return err
	}
	defer floorProc.Stop()
	floor := floorProc.Server()
	target := loadgen.Server{Name: o.targetName, URL: o.target, PID: o.targetPID}
	if o.smoke {
		other, err := startFloor()
		if err != nil {
			return err
		}
		defer other.Stop()
		target.URL, target.PID = other.URL, other.PID
	}
	rep := &report{ClockTicksPerSecond: hz, ClockTicksSource: hzSource, Load: describeLoad(o), Smoke: o.smoke}
	for _, s := range o.shapes {
		sr, err := measureShape(ctx, o, s, target, floor, hz)
		if err != nil {
			return err
		}
		rep.Shapes = append(rep.Shapes, sr)
	}
	if o.json {
		err = rep.writeJSON(os.Stdout)
	} else {
		rep.writeMarkdown(os.Stdout)
	}
	if err != nil {
		return err
	}
	if o.smoke {
		return rep.smokeCheck()
	}
	return nil
}

// startFloor runs this binary again as a floor server.
func startFloor() (*loadgen.FloorProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return loadgen.StartFloor(exe, "-floor", "-listen", "127.0.0.1:0")
}

// measureShape runs every round of one shape against both servers.
func measureShape(ctx context.Context, o options, s loadgen.Shape, target, floor loadgen.Server, hz int64) (shapeReport, error) {
	r, err := loadgen.NewReviews(s, o.namespace, o.serviceAccounts)
	if err != nil {
		return shapeReport{}, err
	}
	sides := []*side{{server: target, stats: &loadgen.Stats{}}, {server: floor, stats: &loadgen.Stats{}}}
	cfg := loadgen.Config{Workers: o.workers, Rate: o.rate, Poisson: o.arrivals == "poisson", Inflight: o.inflight,
		Duration: o.duration, Requests: o.requests, Timeout: o.timeout}
	for round := range o.rounds {
		order := []*side{sides[0], sides[1]}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, sd := range order {
			fmt.Fprintf(os.Stderr, "load: %s pod, round %d/%d: %s (%s) for %s...\n", s.Name, round+1, o.rounds, sd.server.Name, sd.server.URL, o.duration)
			m, err := loadgen.Measure(ctx, sd.server, r, cfg, o.warmup)
			if err != nil {
				return shapeReport{}, fmt.Errorf("%s: %w", sd.server.Name, err)
			}
			sd.add(m)
		}
	}
	return newShapeReport(s, r.Size(), sides[0], sides[1], hz), nil
}

// side accumulates one server's rounds.
type side struct {
	server      loadgen.Server
	stats       *loadgen.Stats
	ticks       int64 // server CPU over the measured runs
	clientTicks int64 // this process's CPU over the same runs
	last        *loadgen.ProcSample
}

func (sd *side) add(m loadgen.Measurement) {
	sd.stats.Merge(m.Stats)
	sd.ticks += m.ServerTicks
	sd.clientTicks += m.ClientTicks
	if m.ServerAfter != nil {
		sd.last = m.ServerAfter
	}
}
