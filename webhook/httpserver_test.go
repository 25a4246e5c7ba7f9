package webhook

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
)

// testCA issues certificates for the server tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// startServer runs a Server on a free loopback port with handler at "/" and returns its address.
func startServer(t *testing.T, opts ServerOptions, handler http.Handler) (string, *testCA) {
	t.Helper()
	return startServerWith(t, opts, handler, nil)
}

// startServerWith is startServer, handing the server to use before it starts.
func startServerWith(t *testing.T, opts ServerOptions, handler http.Handler, use func(*Server)) (string, *testCA) {
	t.Helper()
	ca := newTestCA(t)
	serving := ca.issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	opts.Host, opts.Port = "127.0.0.1", 0
	opts.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &serving, nil }
	if opts.TLSMinVersion == 0 {
		opts.TLSMinVersion = tls.VersionTLS12
	}
	opts.Log = logr.Discard()
	s, err := NewServer(opts)
	require.NoError(t, err)
	s.Register("/", handler)
	if use != nil {
		use(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Start(t.Context()) }()
	t.Cleanup(func() { require.NoError(t, <-done) })
	require.Eventually(t, func() bool { return s.Addr() != "" }, 5*time.Second, 5*time.Millisecond)
	return s.Addr(), ca
}

func dialTLS(t *testing.T, addr string, ca *testCA, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.RootCAs, cfg.ServerName = ca.pool(), "localhost"
	return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
}

// closedWithin reports whether the server closes conn (EOF or reset, after any response) within d.
func closedWithin(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var netErr net.Error
	return !errors.As(err, &netErr) || !netErr.Timeout()
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = w.Write([]byte("ok"))
})

// Slow clients: whatever part of a request a client holds back, the server's deadlines give
// the connection back; a client that sends nothing after connecting is cut off too.
func TestServerCutsOffStalledClients(t *testing.T) {
	addr, ca := startServer(t, ServerOptions{RequestTimeout: 300 * time.Millisecond}, okHandler)
	tests := map[string]struct {
		send func(conn net.Conn)
	}{
		"headers sent, body stalled": {send: func(conn net.Conn) {
			_, _ = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"kind\":")
		}},
		"headers dribbled one byte at a time": {send: func(conn net.Conn) {
			for _, b := range []byte("POST / HTTP/1.1\r\nHost: x\r\n") {
				if _, err := conn.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
		"nothing after the handshake": {send: func(net.Conn) {}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			conn, err := dialTLS(t, addr, ca, nil)
			require.NoError(t, err)
			defer func() { _ = conn.Close() }()
			go tc.send(conn)
			assert.True(t, closedWithin(conn, 5*time.Second), "the server must close a stalled connection")
		})
	}
	// Other clients are unaffected meanwhile.
	conn, err := dialTLS(t, addr, ca, nil)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

// A client that never reads its (large) answer does not pin the handler and the answer's memory:
// the write deadline ends the write.
func TestServerWriteDeadlineFreesUnreadAnswers(t *testing.T) {
	var writeErr atomic.Pointer[error]
	big := bytes.Repeat([]byte("x"), 32<<20)
	addr, ca := startServer(t, ServerOptions{RequestTimeout: 300 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := w.Write(big)
		writeErr.Store(&err)
	}))
	conn, err := dialTLS(t, addr, ca, nil)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	// Never read.
	require.Eventually(t, func() bool { return writeErr.Load() != nil }, 10*time.Second, 10*time.Millisecond,
		"the handler's write must end")
	assert.ErrorIs(t, *writeErr.Load(), os.ErrDeadlineExceeded)
}

// Connections beyond the cap wait until one closes; the gauge follows the open connections.
func TestServerCapsConnections(t *testing.T) {
	var open atomic.Int64
	addr, ca := startServer(t, ServerOptions{MaxConnections: 2, OnConnections: func(n int) { open.Store(int64(n)) }}, okHandler)
	first, err := dialTLS(t, addr, ca, nil)
	require.NoError(t, err)
	second, err := dialTLS(t, addr, ca, nil)
	require.NoError(t, err)
	defer func() { _ = second.Close() }()
	require.Eventually(t, func() bool { return open.Load() == 2 }, 5*time.Second, 5*time.Millisecond)

	raw, err := net.Dial("tcp", addr) // accepted by the kernel, not by the server
	require.NoError(t, err)
	defer func() { _ = raw.Close() }()
	third := tls.Client(raw, &tls.Config{RootCAs: ca.pool(), ServerName: "localhost"})
	handshake := make(chan error, 1)
	go func() { handshake <- third.Handshake() }()
	select {
	case err := <-handshake:
		t.Fatalf("a third connection was served beyond the cap of 2 (handshake: %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, first.Close())
	select {
	case err := <-handshake:
		require.NoError(t, err, "the waiting connection is served once one closes")
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not served after one closed")
	}
	assert.Eventually(t, func() bool { return open.Load() == 2 }, 5*time.Second, 5*time.Millisecond)
}

// With a client CA, only clients with a certificate from it (and, when names are set, one of
// those names) are served: review contents never reach anyone else.
func TestServerRequiresClientCertificates(t *testing.T) {
	clientCA := newTestCA(t)
	caFile := filepath.Join(t.TempDir(), "client-ca.crt")
	require.NoError(t, os.WriteFile(caFile, clientCA.pem, 0o600))
	addr, ca := startServer(t, ServerOptions{ClientCAFile: caFile, ClientNames: []string{"kube-apiserver"}}, okHandler)

	stranger := newTestCA(t)
	tests := map[string]struct {
		cert   *tls.Certificate
		wantOK bool
	}{
		"the API server's certificate is served": {cert: ptrTo(clientCA.issue(t, "kube-apiserver", x509.ExtKeyUsageClientAuth)), wantOK: true},
		"no certificate is refused":              {},
		"a certificate from another CA is refused": {
			cert: ptrTo(stranger.issue(t, "kube-apiserver", x509.ExtKeyUsageClientAuth)),
		},
		"a certificate of the right CA with another name is refused": {
			cert: ptrTo(clientCA.issue(t, "someone-else", x509.ExtKeyUsageClientAuth)),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := &tls.Config{}
			if tc.cert != nil {
				cfg.Certificates = []tls.Certificate{*tc.cert}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: func() *tls.Config {
				cfg.RootCAs, cfg.ServerName = ca.pool(), "localhost"
				return cfg
			}()}}
			res, err := client.Post("https://"+addr+"/", "application/json", strings.NewReader("{}"))
			if tc.wantOK {
				require.NoError(t, err)
				_ = res.Body.Close()
				assert.Equal(t, http.StatusOK, res.StatusCode)
				return
			}
			if err == nil {
				_ = res.Body.Close()
			}
			require.Error(t, err)
		})
	}
}

// HTTP/2 is off unless enabled: a client offering only h2 is answered over HTTP/1.1 or not at
// all, never with HTTP/2 streams.
func TestServerHTTP2(t *testing.T) {
	for name, enabled := range map[string]bool{"off by default": false, "on when enabled": true} {
		t.Run(name, func(t *testing.T) {
			addr, ca := startServer(t, ServerOptions{EnableHTTP2: enabled}, okHandler)
			conn, err := dialTLS(t, addr, ca, &tls.Config{NextProtos: []string{"h2", "http/1.1"}})
			require.NoError(t, err)
			defer func() { _ = conn.Close() }()
			want := "http/1.1"
			if enabled {
				want = "h2"
			}
			assert.Equal(t, want, conn.ConnectionState().NegotiatedProtocol)
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// A review that finds no room within the in-flight limits before its deadline is refused with a
// 503 Status that says why, and counted; the review holding the room is unaffected.
func TestLimitsRefuseWhenFull(t *testing.T) {
	m, _ := newMutator(testPolicy())
	m.Limits = NewLimits(1, 0, m.Metrics)
	release, err := m.Limits.acquire(t.Context(), 1)
	require.NoError(t, err)
	srv, client := newServer(t, m)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+MutatePodPath+"?timeout=100ms",
		bytes.NewReader(readFixture(t, "aws-irsa.json")))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res := do(t, client, req)
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Contains(t, string(res.body), "lanyard is at its limit of reviews or review bytes in flight")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.Metrics.errors[reasonOverloaded]))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.Metrics.inflightG))

	release()
	res = post(t, srv, client, bytes.NewReader(readFixture(t, "aws-irsa.json")), "application/json")
	assert.Equal(t, http.StatusOK, res.status)
	assert.Eventually(t, func() bool { return testutil.ToFloat64(m.Metrics.inflightG) == 0 }, 5*time.Second, 5*time.Millisecond,
		"given back once the handler returns")
}

// A client that announces a large body and stalls holds neither a review slot nor the bytes it
// announced: with one slot and a byte budget smaller than the announced body, other reviews go
// through meanwhile.
func TestStalledBodiesHoldNoSlotsOrBudget(t *testing.T) {
	m, _ := newMutator(testPolicy())
	m.Limits = NewLimits(1, 1<<20, m.Metrics)
	srv, client := newServer(t, m)

	var stalled []net.Conn
	for range 5 {
		conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test server
		require.NoError(t, err)
		stalled = append(stalled, conn)
		_, err = io.WriteString(conn, "POST "+MutatePodPath+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 16000000\r\n\r\n{\"kind\":")
		require.NoError(t, err)
	}
	defer func() {
		for _, c := range stalled {
			_ = c.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond) // the stalled requests have reached the handler
	res := post(t, srv, client, bytes.NewReader(readFixture(t, "aws-irsa.json")), "application/json")
	assert.Equal(t, http.StatusOK, res.status, "%s", res.body)
}

// A body sent in pieces of any size is read whole (the buffer grows as it arrives).
func TestLargeChunkedBodyIsReadWhole(t *testing.T) {
	m, _ := newMutator(testPolicy())
	m.Limits = NewLimits(4, 64<<20, m.Metrics)
	srv, client := newServer(t, m)
	body := wideReview(t, 5000)
	require.Greater(t, len(body), 4*readChunk)
	res := post(t, srv, client, io.MultiReader(bytes.NewReader(body)), "application/json") // no Content-Length: chunked
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	resp := decodeResponse(t, res)
	assert.True(t, resp.Allowed)
	assert.NotEmpty(t, resp.Patch)
	assert.Eventually(t, func() bool { return testutil.ToFloat64(m.Metrics.inflightG) == 0 }, 5*time.Second, 5*time.Millisecond,
		"everything is given back once the handler returns")
}

// A pod whose identity would take a patch beyond the bound is refused with the reason (the pod
// could not be stored), and nothing of the patch is rendered beyond the bound.
func TestPatchBeyondTheBoundIsDenied(t *testing.T) {
	m, _ := newMutator(testPolicy())
	m.MaxPatchBytes = 600
	out, result, herr := m.Review(t.Context(), readFixture(t, "aws-irsa.json"))
	require.Nil(t, herr)
	assert.Equal(t, resultDenied, result)
	var resp admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(out, &resp))
	assert.False(t, resp.Response.Allowed)
	assert.Empty(t, resp.Response.Patch)
	require.NotNil(t, resp.Response.Result)
	assert.Equal(t, int32(http.StatusRequestEntityTooLarge), resp.Response.Result.Code)
	assert.Contains(t, resp.Response.Result.Message, "patch of more than 600 bytes (--max-patch-bytes)")
	assert.Equal(t, 0.0, testutil.ToFloat64(m.Metrics.injections["aws"]), "a refused pod is not counted as injected")
}

// What a review will take to work on is reserved before it is decoded: a review whose estimate
// exceeds the whole budget is refused at once (413, no pod etcd can store is that wide), and one
// that does not fit beside the others waits or gets 503 — memory stays within the budget.
func TestWorkingMemoryIsReservedBeforeDecoding(t *testing.T) {
	body := wideReview(t, 3000)
	estimate := workingBytes(body)
	require.Greater(t, estimate, int64(len(body))*10, "many small objects cost many times their bytes")

	m, _ := newMutator(testPolicy())
	m.Limits = NewLimits(8, estimate-1, m.Metrics)
	srv, client := newServer(t, m)
	res := post(t, srv, client, bytes.NewReader(body), "application/json")
	assert.Equal(t, http.StatusRequestEntityTooLarge, res.status)
	assert.Contains(t, string(res.body), "working on this review would take an estimated")

	m.Limits = NewLimits(8, estimate+estimate/2, m.Metrics)
	hold := m.Limits.reserve()
	require.NoError(t, hold.takeWork(t.Context(), estimate)) // another review's working memory
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+MutatePodPath+"?timeout=300ms", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res = do(t, client, req)
	assert.Equal(t, http.StatusServiceUnavailable, res.status, "it does not fit beside the other")
	hold.release()
	res = post(t, srv, client, bytes.NewReader(body), "application/json")
	assert.Equal(t, http.StatusOK, res.status, "%s", res.body)
}

// Reviews that each need most of the memory budget take turns and all complete: none waits for
// working memory while holding what another waiter needs (a review's body bytes come from their
// own pool), so a burst cannot wedge the budget until every deadline passes.
func TestWideReviewsTakeTurnsWithoutWedging(t *testing.T) {
	body := wideReview(t, 2000)
	estimate := workingBytes(body)

	m, _ := newMutator(testPolicy())
	m.Timeout = 30 * time.Second
	m.Limits = NewLimits(64, estimate+estimate/10, m.Metrics) // room for one at a time
	srv, client := newServer(t, m)
	statuses := make(chan int, 10)
	for range 10 {
		go func() {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+MutatePodPath, bytes.NewReader(body))
			if err != nil {
				statuses <- 0
				return
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	for range 10 {
		assert.Equal(t, http.StatusOK, <-statuses)
	}
}

// Answers and refusals announce their length: flushed without one, they would go out chunked, a
// second TLS record and syscall for every answer.
func TestAnswersAreNotChunked(t *testing.T) {
	m, _ := newMutator(testPolicy())
	srv, client := newServer(t, m)
	for name, ct := range map[string]string{"an answer": "application/json", "a refusal": "text/plain"} {
		t.Run(name, func(t *testing.T) {
			resp, err := client.Post(srv.URL+MutatePodPath, ct, bytes.NewReader(readFixture(t, "aws-irsa.json")))
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Empty(t, resp.TransferEncoding)
			assert.Equal(t, int64(len(body)), resp.ContentLength)
		})
	}
}

// Once draining, every answer closes its connection, so the client opens its next one elsewhere
// instead of racing the server's close of an idle keep-alive connection.
func TestDrainingAnswersCloseTheirConnection(t *testing.T) {
	var s *Server
	addr, ca := startServerWith(t, ServerOptions{}, okHandler, func(srv *Server) { s = srv })
	conn, err := dialTLS(t, addr, ca, nil)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	reader := bufio.NewReader(conn)
	ask := func() *http.Response {
		_, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
		require.NoError(t, err)
		res, err := http.ReadResponse(reader, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		return res
	}
	res := ask()
	assert.False(t, res.Close, "keep-alive before the drain")
	s.Drain()
	res = ask()
	assert.Equal(t, http.StatusOK, res.StatusCode, "still answered while draining")
	assert.True(t, res.Close, "the answer says Connection: close")
	assert.True(t, closedWithin(conn, 5*time.Second), "and the server closes the connection after it")
}

// The API server (client-go, net/http's transport defaults) closes idle webhook connections after
// 90 s; lanyard must wait longer, or a review sent as lanyard closes the connection fails.
func TestIdleTimeoutOutlastsTheAPIServers(t *testing.T) {
	apiServerIdle := http.DefaultTransport.(*http.Transport).IdleConnTimeout
	require.Positive(t, apiServerIdle)
	assert.Greater(t, DefaultIdleTimeout, apiServerIdle)
}

// wideReview is the aws-irsa fixture with n minimal containers.
func wideReview(t *testing.T, n int) []byte {
	t.Helper()
	var review map[string]any
	require.NoError(t, json.Unmarshal(readFixture(t, "aws-irsa.json"), &review))
	containers := make([]any, 0, n)
	for i := range n {
		containers = append(containers, map[string]any{"name": fmt.Sprintf("c%d", i), "image": "registry.example.com/app:1"})
	}
	podSpec(review)["containers"] = containers
	body, err := json.Marshal(review)
	require.NoError(t, err)
	return body
}
