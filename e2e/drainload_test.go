package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// lockedBuffer collects a process's log lines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serviceBalancer stands in for a Service in front of lanyard's replicas: it takes the port the
// webhook configurations call and spreads new connections over the replicas whose /readyz
// answers 200, as endpoints and kube-proxy do (readiness polled every 100 ms, so a replica
// leaves the rotation with a lag, as in a cluster). Connections already open stay where they are.
type serviceBalancer struct {
	ln       net.Listener
	backends []*lanyardProcess
	ready    []atomic.Bool
	next     atomic.Uint64
	wg       sync.WaitGroup
	stop     chan struct{}
}

func newServiceBalancer(t *testing.T, addr string, backends ...*lanyardProcess) *serviceBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	b := &serviceBalancer{ln: ln, backends: backends, ready: make([]atomic.Bool, len(backends)), stop: make(chan struct{})}
	b.wg.Go(b.pollReadiness)
	b.wg.Go(b.accept)
	return b
}

func (b *serviceBalancer) pollReadiness() {
	client := &http.Client{Timeout: time.Second}
	for {
		for i, l := range b.backends {
			ok := false
			if resp, err := client.Get("http://" + l.healthAddr + "/readyz"); err == nil {
				ok = resp.StatusCode == http.StatusOK
				_ = resp.Body.Close()
			}
			b.ready[i].Store(ok)
		}
		select {
		case <-b.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b *serviceBalancer) accept() {
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Go(func() { b.forward(conn) })
	}
}

func (b *serviceBalancer) forward(conn net.Conn) {
	defer func() { _ = conn.Close() }()
	n := uint64(len(b.backends))
	for range n {
		i := b.next.Add(1) % n
		if !b.ready[i].Load() {
			continue
		}
		upstream, err := net.Dial("tcp", net.JoinHostPort(testEnv.WebhookInstallOptions.LocalServingHost, strconv.Itoa(b.backends[i].port)))
		if err != nil {
			continue
		}
		defer func() { _ = upstream.Close() }()
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(upstream, conn); done <- struct{}{} }()
		go func() { _, _ = io.Copy(conn, upstream); done <- struct{}{} }()
		select {
		case <-done:
		case <-b.stop: // the API server keeps idle connections for 90 s
		}
		return
	}
}

func (b *serviceBalancer) Close() {
	close(b.stop)
	_ = b.ln.Close()
	b.wg.Wait()
}

// SIGTERM to one of two replicas while pods are created as fast as the API server takes them:
// the replica's readiness drops first, its in-flight reviews finish, the API server goes on with
// the other replica, and not one creation fails — every pod is stored with its identity.
func TestDrainUnderLoadWithTwoReplicas(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA}})

	wio := &testEnv.WebhookInstallOptions
	lanyard.Stop()
	t.Cleanup(func() { require.NoError(t, lanyard.Start()) })
	replicas := make([]*lanyardProcess, 2)
	logs := make([]lockedBuffer, 2)
	for i := range replicas {
		addr, err := freeAddr()
		require.NoError(t, err)
		_, portText, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(portText)
		replicas[i] = &lanyardProcess{binary: lanyard.binary, kubeconfig: lanyard.kubeconfig, port: port, shutdownDelay: 3 * time.Second, logs: &logs[i]}
		require.NoError(t, replicas[i].Start())
	}
	t.Cleanup(func() {
		for _, r := range replicas {
			r.Stop()
		}
	})
	balancer := newServiceBalancer(t, net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort)), replicas...)
	defer balancer.Close()
	require.Eventually(t, func() bool { return balancer.ready[0].Load() && balancer.ready[1].Load() }, 10*time.Second, 50*time.Millisecond)

	cfg := rest.CopyConfig(restConfig)
	cfg.QPS, cfg.Burst = 5000, 10000
	fast, err := client.New(cfg, client.Options{Scheme: k8s.Scheme()})
	require.NoError(t, err)

	var created, failed atomic.Int64
	var firstErr atomic.Value
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var seq atomic.Int64
	for range 24 {
		wg.Go(func() {
			for loadCtx.Err() == nil {
				name := fmt.Sprintf("load-%d", seq.Add(1))
				if err := fast.Create(context.Background(), newPod(ns, name, "app")); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v", name, err))
					continue
				}
				created.Add(1)
			}
		})
	}
	time.Sleep(2 * time.Second)
	before, at := created.Load(), time.Now()

	victim := replicas[0]
	victim.drain(t)
	select {
	case err := <-victim.done:
		assert.NoError(t, err, "a clean shutdown")
		victim.mu.Lock()
		victim.cancel = nil
		victim.mu.Unlock()
	case <-time.After(30 * time.Second):
		t.Fatal("the replica did not shut down after its delay")
	}
	time.Sleep(time.Second) // the survivor alone
	rate := float64(created.Load()-before) / time.Since(at).Seconds()
	stopLoad()
	wg.Wait()

	t.Logf("%d pods created, %.0f/s through the drain and after it; %d failed", created.Load(), rate, failed.Load())
	assert.NotContains(t, logs[0].String(), "\tERROR\t", "a clean shutdown logs no errors")
	require.Zero(t, failed.Load(), "no creation failed; first failure: %v", firstErr.Load())
	require.Positive(t, created.Load())

	// Every stored pod has its identity.
	var pods corev1.PodList
	require.NoError(t, k8s.List(ctx(t), &pods, client.InNamespace(ns)))
	require.Len(t, pods.Items, int(created.Load()))
	for _, p := range pods.Items {
		if p.Annotations[policy.AnnotationInjected] != "aws" {
			t.Fatalf("pod %s stored without its identity: %v", p.Name, p.Annotations)
		}
	}
}
