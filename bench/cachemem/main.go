// Command cachemem measures what lanyard serve holds in memory for a large cluster (SPEC §9:
// 20,000 ServiceAccounts and 20,000 IdentityAssociations cached, ≤ 50 MiB RSS). It starts a real
// kube-apiserver and etcd (envtest; run it through `make bench-memory`), creates the objects, runs
// the lanyard binary given with -lanyard against it, waits until it is ready, and reports the
// process's resident memory and Go heap from /proc and /metrics.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/lanyard-dev/lanyard/bench/budget"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/cluster"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

func main() {
	n := flag.Int("n", 20000, "ServiceAccounts and IdentityAssociations to create")
	perNamespace := flag.Int("per-namespace", 20, "ServiceAccounts per namespace")
	compatEvery := flag.Int("compat-every", 10, "every k-th ServiceAccount carries the EKS role annotation")
	lanyardBin := flag.String("lanyard", "bin/lanyard", "lanyard binary")
	root := flag.String("repo", ".", "repository root (for deploy/crds)")
	settle := flag.Duration("settle", 10*time.Second, "time to let lanyard settle after ready")
	flag.Parse()
	if err := run(*n, *perNamespace, *compatEvery, *lanyardBin, *root, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "cachemem:", err)
		os.Exit(1)
	}
}

func run(n, perNamespace, compatEvery int, lanyardBin, root string, settle time.Duration) error {
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join(root, "deploy", "crds")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	scheme, err := cluster.Scheme()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	start := time.Now()
	if err := populate(c, n, perNamespace, compatEvery); err != nil {
		return err
	}
	fmt.Printf("created %d namespaces, %d ServiceAccounts, %d IdentityAssociations in %s\n",
		(n+perNamespace-1)/perNamespace, n, n, time.Since(start).Round(time.Second))

	dir, err := os.MkdirTemp("", "lanyard-cachemem-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfigPath, err := budget.AdminKubeconfig(env, dir)
	if err != nil {
		return err
	}
	// A serving certificate; lanyard will not be called, but it serves TLS before it is ready.
	certDir := filepath.Join(dir, "certs")
	if err := budget.ServingCertificate(certDir); err != nil {
		return err
	}
	ports, err := budget.FreePorts(4)
	if err != nil {
		return err
	}
	metrics, health := fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2])
	cmd := exec.Command(lanyardBin, "serve", "--kubeconfig", kubeconfigPath, "--cert-mode", "files", "--cert-dir", certDir,
		"--host", "127.0.0.1", "--port", fmt.Sprint(ports[0]), "--metrics-bind-address", metrics,
		"--health-probe-bind-address", health, "--pprof-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[3]),
		"--leader-elect=false", "--log-level", "error")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = os.Environ()
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := waitReady("http://"+health+"/readyz", 5*time.Minute); err != nil {
		return err
	}
	fmt.Printf("lanyard ready (caches synced) %s after start\n", time.Since(started).Round(100*time.Millisecond))
	time.Sleep(settle)

	rss, err := procStatus(cmd.Process.Pid, "VmRSS")
	if err != nil {
		return err
	}
	hwm, _ := procStatus(cmd.Process.Pid, "VmHWM")
	anon, _ := procStatus(cmd.Process.Pid, "RssAnon")
	file, _ := procStatus(cmd.Process.Pid, "RssFile")
	heap, err := metric("http://"+metrics+"/metrics", "go_memstats_heap_inuse_bytes")
	if err != nil {
		return err
	}
	fmt.Printf("lanyard serve with %d ServiceAccounts + %d IdentityAssociations cached:\n", n, n)
	fmt.Printf("  RSS %s (peak %s; anonymous %s, file-backed %s), Go heap in use %.1f MiB\n", rss, hwm, anon, file, heap/(1<<20))
	if out := os.Getenv("CACHEMEM_HEAP_PROFILE"); out != "" {
		if err := saveProfile(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", ports[3]), out); err != nil {
			return err
		}
		fmt.Printf("  heap profile (after GC) written to %s\n", out)
	}
	return nil
}

func populate(c client.Client, n, perNamespace, compatEvery int) error {
	ctx := context.Background()
	namespaces := (n + perNamespace - 1) / perNamespace
	var failed atomic.Value
	work := make(chan func() error, 256)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for job := range work {
				if err := job(); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	for i := range namespaces {
		ns := fmt.Sprintf("team-%05d", i)
		work <- func() error {
			return c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
				Labels: map[string]string{policy.InjectLabel: policy.InjectEnabled}}})
		}
	}
	// Namespaces first: wait for the queue to drain before objects inside them.
	for len(work) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	lastApplied := strings.Repeat("x", 400) // stands for kubectl's last-applied configuration
	for i := range n {
		ns, name := fmt.Sprintf("team-%05d", i/perNamespace), fmt.Sprintf("app-%05d", i)
		work <- func() error {
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
				Labels:      map[string]string{"app.kubernetes.io/name": name},
				Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": lastApplied}}}
			if compatEvery > 0 && i%compatEvery == 0 {
				sa.Annotations[policy.EKSRoleARN] = "arn:aws:iam::111122223333:role/" + name
			}
			if err := c.Create(ctx, sa); err != nil {
				return err
			}
			ia := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name,
				Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": lastApplied}},
				Spec: v1alpha1.IdentityAssociationSpec{Namespace: ns, ServiceAccountName: name,
					AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/" + name, Mode: v1alpha1.AWSModeIRSA, Region: "us-west-2"}}}
			return c.Create(ctx, ia)
		}
	}
	close(work)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return err
	}
	return nil
}

func waitReady(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s", url, timeout)
}

func procStatus(pid int, field string) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

func metric(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+" "); ok {
			var f float64
			_, err := fmt.Sscanf(v, "%g", &f)
			return f, err
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

func saveProfile(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = io.Copy(f, resp.Body)
	return err
}
