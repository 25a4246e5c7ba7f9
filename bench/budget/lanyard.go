package budget

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lanyard-dev/lanyard/bench/loadgen"
)

// Lanyard is how to run `lanyard serve` against the cluster: the binary `make build` makes, with
// the flags of the shipped Deployment where they apply (certificate files, metrics and health
// endpoints, leader election for the status reconciler, default logging) on free local ports.
type Lanyard struct {
	Binary     string   // the lanyard binary
	Kubeconfig string   // of the cluster
	CertDir    string   // tls.crt and tls.key (ServingCertificate writes them)
	Namespace  string   // lanyard's own namespace (--namespace), where its leader election Lease lives
	Env        []string // added to the environment, e.g. GOMEMLIMIT as the Deployment sets it (DeploymentEnv)
	Args       []string // more flags
	LogDir     string   // each start's output goes to a file here
	Pprof      bool     // serve /debug/pprof (for CPU profiles of the measured runs)

	starts int
}

// Process is a running lanyard serve.
type Process struct {
	PID        int
	URL        string        // admission URL of pods
	ReadyAfter time.Duration // from start to /readyz answering 200
	Log        string        // its output

	metricsURL, pprofURL string
	cmd                  *exec.Cmd
	done                 chan error
}

// Server is the process as a server to measure.
func (p *Process) Server() loadgen.Server {
	return loadgen.Server{Name: "lanyard", URL: p.URL, PID: p.PID}
}

// Start starts lanyard and waits until it is ready. A process that exits before it is ready (a
// port picked free and taken again before lanyard bound it) is started again, twice at most.
func (l *Lanyard) Start(ctx context.Context) (*Process, error) {
	var err error
	for range 3 {
		var p *Process
		if p, err = l.startOnce(ctx); err == nil {
			return p, nil
		}
		if !errors.Is(err, errExitedEarly) {
			return nil, err
		}
	}
	return nil, err
}

var errExitedEarly = errors.New("lanyard exited before it was ready")

func (l *Lanyard) startOnce(ctx context.Context) (*Process, error) {
	ports, err := FreePorts(4)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	pprofAddr := ""
	if l.Pprof {
		pprofAddr = addr(3)
	}
	args := append([]string{"serve",
		"--kubeconfig", l.Kubeconfig,
		"--host", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
		"--cert-mode", "files", "--cert-dir", l.CertDir,
		"--metrics-bind-address", addr(1), "--health-probe-bind-address", addr(2), "--pprof-bind-address", pprofAddr,
		"--namespace", l.Namespace, "--leader-elect", "--leader-election-namespace", l.Namespace,
		// The Deployment keeps serving 5 s after SIGTERM for the endpoints to catch up; here
		// nothing routes to lanyard but the load, and a restart should not wait.
		"--shutdown-delay", "0s"}, l.Args...)
	l.starts++
	logPath := filepath.Join(l.LogDir, fmt.Sprintf("lanyard-%d.log", l.starts))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // the child has its own descriptor
	cmd := exec.Command(l.Binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), l.Env...)
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", l.Binary, err)
	}
	p := &Process{PID: cmd.Process.Pid, URL: "https://" + addr(0) + "/mutate-v1-pod", Log: logPath,
		metricsURL: "http://" + addr(1) + "/metrics", cmd: cmd, done: make(chan error, 1)}
	if l.Pprof {
		p.pprofURL = "http://" + pprofAddr + "/debug/pprof"
	}
	go func() { p.done <- cmd.Wait() }()
	if err := p.waitReady(ctx, "http://"+addr(2)+"/readyz", 2*time.Minute); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%w\nlast output (%s):\n%s", err, logPath, tail(logPath, 2048))
	}
	p.ReadyAfter = time.Since(started)
	return p, nil
}

func (p *Process) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			return fmt.Errorf("%w: %v", errExitedEarly, err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("lanyard not ready within %s", timeout)
}

// Stop sends SIGTERM, as Kubernetes does, and waits for the process to end (killing it after a
// minute).
func (p *Process) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		return <-p.done
	}
}

// Metric sums the samples of the Prometheus metric name on /metrics whose labels include every
// label given as name="value" (false when there is none).
func (p *Process) Metric(name string, labels ...string) (float64, bool, error) {
	resp, err := http.Get(p.metricsURL)
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = resp.Body.Close() }()
	var sum float64
	found := false
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		matched := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				matched = false
			}
		}
		if !matched {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", line, err)
		}
		sum += v
		found = true
	}
	return sum, found, s.Err()
}

// ProfileCPU writes a CPU profile of the next d to path (needs Lanyard.Pprof).
func (p *Process) ProfileCPU(ctx context.Context, d time.Duration, path string) error {
	if p.pprofURL == "" {
		return errors.New("lanyard runs without pprof")
	}
	url := fmt.Sprintf("%s/profile?seconds=%d", p.pprofURL, max(int(d.Round(time.Second).Seconds()), 1))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// FreePorts returns n TCP ports free on 127.0.0.1 at the moment (held open together, so distinct).
func FreePorts(n int) ([]int, error) {
	var out []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// tail is the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
