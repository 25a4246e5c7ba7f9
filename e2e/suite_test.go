// Package e2e runs lanyard against a real kube-apiserver and etcd (controller-runtime's envtest,
// binaries built by hack/envtest-assets.sh). The CRDs and the webhook configurations are the
// shipped ones from deploy/; the API server calls lanyard over TLS for every pod created here.
package e2e

import (
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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/cluster"
)

var (
	testEnv    *envtest.Environment
	restConfig *rest.Config
	k8s        client.Client
	lanyard    *lanyardProcess
)

// TestMain starts etcd, the API server (with lanyard's CRDs and webhook configurations) and
// lanyard, runs the scenarios and prints the suite's wall time.
func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Println("e2e: KUBEBUILDER_ASSETS is not set; skipping (make e2e builds and caches the API server)")
		os.Exit(0)
	}
	ctrllog.SetLogger(logger())
	start := time.Now()
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	fmt.Printf("e2e: suite wall time %s\n", time.Since(start).Round(time.Millisecond))
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "deploy", "crds")},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			Paths: []string{filepath.Join("..", "deploy", "base", "webhooks.yaml")},
		},
	}
	certDir, err := os.MkdirTemp("", "lanyard-e2e-apiserver-")
	if err != nil {
		return 1, err
	}
	defer func() { _ = os.RemoveAll(certDir) }()
	apiServer := testEnv.ControlPlane.GetAPIServer()
	apiServer.CertDir = certDir // fixed, so a restarted API server keeps its CA and serving certificate
	apiServer.StopTimeout = 60 * time.Second
	if restConfig, err = testEnv.Start(); err != nil {
		return 1, fmt.Errorf("starting envtest: %w", err)
	}
	defer func() { _ = testEnv.Stop() }()

	scheme, err := cluster.Scheme()
	if err != nil {
		return 1, err
	}
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return 1, err
	}
	if k8s, err = client.New(restConfig, client.Options{Scheme: scheme}); err != nil {
		return 1, err
	}
	work, err := os.MkdirTemp("", "lanyard-e2e-")
	if err != nil {
		return 1, err
	}
	defer func() { _ = os.RemoveAll(work) }()
	bin, err := buildLanyard(work)
	if err != nil {
		return 1, err
	}
	kubeconfigPath, err := writeKubeconfig(work)
	if err != nil {
		return 1, err
	}
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: lanyardNamespace}}); err != nil {
		return 1, err
	}
	lanyard = &lanyardProcess{binary: bin, kubeconfig: kubeconfigPath}
	if err := lanyard.Start(); err != nil {
		return 1, err
	}
	defer lanyard.Stop()
	return m.Run(), nil
}

// lanyardProcess is the lanyard binary running `lanyard serve` against envtest, as a separate
// process configured by its flags, stopped with SIGTERM: what a Deployment runs.
type lanyardProcess struct {
	binary, kubeconfig string
	// shutdownDelay is the process's --shutdown-delay.
	shutdownDelay time.Duration
	// port, when set, replaces the port the suite's webhook configurations call (a second
	// lanyard that is not in the admission path); args are added to the command line.
	port int
	args []string
	// noWait: Start returns once the process runs, without waiting for readiness.
	noWait bool
	// logs, when set, receives everything the process logs.
	logs io.Writer

	mu         sync.Mutex
	cancel     func() // sends SIGTERM; nil when not running
	done       chan error
	healthAddr string
}

// Start starts lanyard and waits until it is ready. A process that exits before it is ready
// (a port picked free and taken again before lanyard bound it) is started again, twice at most,
// with its last output in the error.
func (l *lanyardProcess) Start() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		return nil // already running
	}
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = l.startOnce(); err == nil || !errors.Is(err, errExitedEarly) {
			return err
		}
		fmt.Fprintf(os.Stderr, "e2e: lanyard attempt %d: %v\n", attempt, err)
	}
	return err
}

var errExitedEarly = errors.New("lanyard exited before ready")

// tailWriter keeps the last bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > 4096 {
		w.buf = w.buf[len(w.buf)-4096:]
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

func (l *lanyardProcess) startOnce() error {
	wio := &testEnv.WebhookInstallOptions
	healthAddr, err := freeAddr()
	if err != nil {
		return err
	}
	l.healthAddr = healthAddr
	port := wio.LocalServingPort
	if l.port != 0 {
		port = l.port
	}
	args := []string{"serve",
		"--kubeconfig", l.kubeconfig,
		"--host", wio.LocalServingHost, "--port", strconv.Itoa(port),
		"--cert-mode", "files", "--cert-dir", wio.LocalServingCertDir,
		"--tls-min-version", "1.2",
		"--metrics-bind-address", "0", "--health-probe-bind-address", healthAddr,
		"--leader-elect", "--leader-election-namespace", lanyardNamespace, "--namespace", lanyardNamespace,
		"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"--shutdown-delay", l.shutdownDelay.String(),
		"--log-format", "console", "--log-level", "info"}
	cmd := exec.Command(l.binary, append(args, l.args...)...)
	tail := &tailWriter{}
	cmd.Stdout, cmd.Stderr = io.Discard, tail
	if l.logs != nil {
		cmd.Stderr = io.MultiWriter(tail, l.logs)
	}
	if os.Getenv("LANYARD_E2E_LOGS") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", l.binary, err)
	}
	l.done = make(chan error, 1)
	go func() { l.done <- cmd.Wait() }()
	l.cancel = func() { _ = cmd.Process.Signal(syscall.SIGTERM) }
	if l.noWait {
		return nil
	}
	if err := l.waitReady(60 * time.Second); err != nil {
		_ = cmd.Process.Kill()
		l.cancel = nil
		return fmt.Errorf("%w\nlast output:\n%s", err, tail.String())
	}
	return nil
}

// e2eVersion is stamped into the binary the suite runs.
const e2eVersion = "v0.0.0-e2e"

// buildLanyard builds the lanyard binary into dir with the Makefile's build target: the same
// flags as the container image (make image), so the suite runs what ships.
func buildLanyard(dir string) (string, error) {
	bin := filepath.Join(dir, "lanyard")
	cmd := exec.Command("make", "-s", "-C", "..", "build", "BIN="+bin, "VERSION="+e2eVersion)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building lanyard with make build: %w", err)
	}
	return bin, nil
}

func (l *lanyardProcess) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-l.done:
			return fmt.Errorf("%w: %v", errExitedEarly, err)
		default:
		}
		resp, err := http.Get("http://" + l.healthAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("lanyard not ready in time")
}

// drain sends SIGTERM, as a rollout does, and requires readiness to fail at once.
func (l *lanyardProcess) drain(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	sigterm := l.cancel
	l.mu.Unlock()
	sigterm()
	require.Eventually(t, func() bool { return probe(l, "/readyz") != http.StatusOK }, time.Second, 20*time.Millisecond,
		"readiness fails as soon as the drain starts")
}

func (l *lanyardProcess) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel == nil {
		return
	}
	l.cancel()
	select {
	case err := <-l.done:
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: lanyard stopped with:", err)
		}
	case <-time.After(60 * time.Second):
	}
	l.cancel = nil
}

// lanyardNamespace is lanyard's own namespace (its leader election lease lives there).
const lanyardNamespace = "lanyard-system"

// writeKubeconfig writes a cluster-admin kubeconfig for the envtest API server.
func writeKubeconfig(dir string) (string, error) {
	user, err := testEnv.AddUser(envtest.User{Name: "lanyard", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func logger() logr.Logger {
	if os.Getenv("LANYARD_E2E_LOGS") != "" {
		return zap.New(zap.UseDevMode(true))
	}
	return logr.Discard()
}

// namespace creates a fresh namespace for one test (opted in unless told otherwise) with the
// "default" ServiceAccount the ServiceAccount controller would create.
func namespace(t *testing.T, optedIn bool) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}
	if optedIn {
		ns.Labels = map[string]string{policy.InjectLabel: policy.InjectEnabled}
	}
	mustCreate(t, ns)
	serviceAccount(t, ns.Name, policy.DefaultServiceAccountName, nil)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ns) })
	return ns.Name
}

func serviceAccount(t *testing.T, ns, name string, annotations map[string]string) {
	t.Helper()
	mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations}})
}

func mustCreate(t *testing.T, obj client.Object, opts ...client.CreateOption) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k8s.Create(ctx, obj, opts...); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}
