package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// A legal pod of about 1 MiB whose text the API server escapes (< becomes \u003c, 6 bytes) makes
// a review of ~6 MiB: it is admitted and injected in an opted-in namespace, as it is created in
// one that is not.
func TestLargeLegalPodIsAdmitted(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
	pod := newPod(ns, "escaped", "app")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "TEMPLATE", Value: strings.Repeat("<&>", 350<<10)}}
	mustCreate(t, pod)
	assert.Equal(t, "aws", stored(t, ns, "escaped").Annotations[policy.AnnotationInjected])
}

// Many containers: work is linear in the pod's size, so a pod with thousands of containers is
// answered well inside the webhook's timeout (dry-run through the real API server).
func TestManyContainersAreInjected(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
	pod := newPod(ns, "wide", "app")
	for i := 1; i < 3000; i++ {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: "registry.example.com/app:1"})
	}
	require.NoError(t, k8s.Create(ctx(t), pod, client.DryRunAll))
	assert.Equal(t, "aws", pod.Annotations[policy.AnnotationInjected])
	for _, c := range []corev1.Container{pod.Spec.Containers[0], pod.Spec.Containers[2999]} {
		assert.NotNil(t, mountAt(c, "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"), "container %s", c.Name)
	}
}

// apiProxy stands between a second lanyard and the API server: down (connections refused at
// once), up, or stalled (connections accepted, nothing forwarded), as an API server that is
// unreachable, healthy or hung looks from lanyard's side.
type apiProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	state    string // "down", "up", "stalled"
	resumed  chan struct{}
	conns    []net.Conn
}

func newAPIProxy(t *testing.T, upstream string) *apiProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &apiProxy{ln: ln, upstream: upstream, state: "down", resumed: make(chan struct{})}
	t.Cleanup(func() {
		_ = ln.Close()
		p.set("up")
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	go p.serve()
	return p
}

func (p *apiProxy) set(state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == "stalled" && state != "stalled" {
		close(p.resumed)
		p.resumed = make(chan struct{})
	}
	p.state = state
}

// gate blocks while the proxy is stalled.
func (p *apiProxy) gate() {
	p.mu.Lock()
	state, resumed := p.state, p.resumed
	p.mu.Unlock()
	if state == "stalled" {
		<-resumed
	}
}

func (p *apiProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		state := p.state
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		if state == "down" {
			_ = c.Close()
			continue
		}
		go p.forward(c)
	}
}

func (p *apiProxy) forward(c net.Conn) {
	p.gate()
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, up)
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.gate()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		_ = dst.Close()
		_ = src.Close()
	}
	go pipe(up, c)
	pipe(c, up)
}

// secondLanyard runs another lanyard process that reaches the API server only through proxy and
// serves on a port of its own (it is not in the suite's admission path), with args added.
func secondLanyard(t *testing.T, proxy *apiProxy, args ...string) (*lanyardProcess, string) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(lanyard.kubeconfig)
	require.NoError(t, err)
	for _, c := range cfg.Clusters {
		c.Server = "https://" + proxy.ln.Addr().String()
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	port := freePort(t)
	l := &lanyardProcess{binary: lanyard.binary, kubeconfig: path, port: port, noWait: true,
		args: append([]string{"--leader-elect=false", "--live-lookup-timeout", "1s"}, args...)}
	require.NoError(t, l.Start())
	t.Cleanup(l.Stop)
	return l, net.JoinHostPort(testEnv.WebhookInstallOptions.LocalServingHost, strconv.Itoa(port))
}

func probe(l *lanyardProcess, path string) int {
	resp, err := http.Get("http://" + l.healthAddr + path)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// reviewAt posts a review to a lanyard at addr and returns the HTTP status and the response.
func reviewAt(t *testing.T, addr string, body []byte) (int, *admissionv1.AdmissionReview, string) {
	t.Helper()
	return reviewWith(t, reviewClient(), addr, body)
}

// trustingClient trusts the given CAs (lanyard's self-signed ones) and names them by IP.
func trustingClient(cas []*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// reviewWith is reviewAt with the given client.
func reviewWith(t *testing.T, c *http.Client, addr string, body []byte) (int, *admissionv1.AdmissionReview, string) {
	t.Helper()
	resp, err := c.Post("https://"+addr+"/mutate-v1-pod?timeout=5s", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		var status metav1.Status
		require.NoError(t, json.Unmarshal(raw, &status), "an HTTP error carries a Status: %s", raw)
		return resp.StatusCode, nil, status.Message
	}
	out := &admissionv1.AdmissionReview{}
	require.NoError(t, json.Unmarshal(raw, out))
	return resp.StatusCode, out, ""
}

// Starting while the API server is unreachable: health is served at once, readiness waits, the
// process stays up and becomes ready within seconds of the API server answering.
func TestStartsWhileTheAPIServerIsUnreachable(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})

	proxy := newAPIProxy(t, restConfigHost(t))
	second, addr := secondLanyard(t, proxy)
	require.Eventually(t, func() bool { return probe(second, "/healthz") == http.StatusOK }, 10*time.Second, 50*time.Millisecond,
		"/healthz is served while the API server is unreachable")
	for range 10 { // 5 s unreachable, longer than the 10 s crash of before with backoff
		assert.NotEqual(t, http.StatusOK, probe(second, "/readyz"), "not ready without the API server")
		select {
		case err := <-second.done:
			t.Fatalf("lanyard exited while the API server was unreachable: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	status, _, msg := reviewAt(t, addr, podReview(t, ns, newPod(ns, "early", "app")))
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, msg, "has not reached the API server yet")

	proxy.set("up")
	back := time.Now()
	require.Eventually(t, func() bool { return probe(second, "/readyz") == http.StatusOK }, 20*time.Second, 50*time.Millisecond,
		"ready once the API server answers")
	t.Logf("ready %s after the API server became reachable", time.Since(back).Round(10*time.Millisecond))
	status, out, _ := reviewAt(t, addr, podReview(t, ns, newPod(ns, "later", "app")))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "aws", out.Response.AuditAnnotations["injected"])
}

// A ServiceAccount created moments ago, with no association in the cache, while the API server
// hangs: lanyard cannot confirm that no association is in flight, and answers with an error (the
// failurePolicy decides) within its lookup budget — never an admission without identity.
func TestNewServiceAccountWhileTheAPIServerHangs(t *testing.T) {
	ns := namespace(t, true)
	proxy := newAPIProxy(t, restConfigHost(t))
	proxy.set("up")
	second, addr := secondLanyard(t, proxy)
	require.Eventually(t, func() bool { return probe(second, "/readyz") == http.StatusOK }, 30*time.Second, 50*time.Millisecond)

	serviceAccount(t, ns, "brand-new", nil)
	time.Sleep(time.Second) // the informer delivers it to the second lanyard's cache

	proxy.set("stalled")
	start := time.Now()
	status, out, msg := reviewAt(t, addr, podReview(t, ns, newPod(ns, "during-stall", "brand-new")))
	elapsed := time.Since(start)
	proxy.set("up")
	if status == http.StatusOK {
		t.Fatalf("admitted during the stall (allowed=%v, warnings=%q): the identity would be silently missing", out.Response.Allowed, out.Response.Warnings)
	}
	assert.Equal(t, http.StatusInternalServerError, status)
	assert.Contains(t, msg, "ServiceAccount "+ns+"/brand-new is new")
	assert.Less(t, elapsed, 5*time.Second, "answered inside the webhook's timeout")
}

func restConfigHost(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(restConfig.Host)
	require.NoError(t, err)
	return u.Host
}
