package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/netutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// Defaults of ServerOptions, sized for a webhook configured with timeoutSeconds: 5.
const (
	// DefaultRequestTimeout bounds reading one request (headers and body) and, separately,
	// handling it and writing the answer: well inside the API server's 5 s, so a stalled client
	// gives its connection back long before anyone waits on it.
	DefaultRequestTimeout = 4 * time.Second
	// DefaultIdleTimeout closes keep-alive connections nobody uses. It is longer than the API
	// server's own idle timeout for webhook connections (client-go keeps net/http's 90 s), so the
	// API server closes an idle connection first: a server that closes it at the same moment can
	// meet a review the client has just sent on it, and that review fails (EOF).
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxConnections caps open connections. An idle TLS connection costs ~40 KiB; the
	// API servers of a large cluster hold a few dozen to a webhook replica.
	DefaultMaxConnections = 512
	// maxHeaderBytes: admission requests carry a handful of short headers.
	maxHeaderBytes = 64 << 10
	// writeSlack is how long past the request timeout an answer may still take to write.
	writeSlack = time.Second
	// http2MaxStreams bounds concurrent streams per connection when HTTP/2 is on.
	http2MaxStreams = 64
)

// ServerOptions configure lanyard's admission HTTPS server.
type ServerOptions struct {
	Host string
	Port int
	// GetCertificate returns the serving certificate (hot-reloaded by its source).
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// TLSMinVersion is tls.VersionTLS12 or tls.VersionTLS13.
	TLSMinVersion uint16
	// EnableHTTP2 is off by default (HTTP/2 rapid reset and stream multiplexing attacks).
	EnableHTTP2 bool
	// ClientCAFile, when set, requires every client to present a certificate signed by one of
	// its CAs (the API server's webhook client certificate, see docs/security.md).
	ClientCAFile string
	// ClientNames, when set with ClientCAFile, also requires the client certificate's common
	// name or one of its DNS names to be one of these.
	ClientNames []string
	// RequestTimeout is both the read deadline of a request (headers and body) and the write
	// deadline of its answer, counted from the end of its headers. 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxConnections caps open connections; further clients wait in the listen backlog until
	// one closes. 0 means DefaultMaxConnections.
	MaxConnections int
	// OnConnections, when set, is told the number of open connections whenever it changes.
	OnConnections func(open int)
	Log           logr.Logger
}

// Server is lanyard's admission HTTPS server: controller-runtime's webhook.Server contract, with
// the limits controller-runtime's server lacks (it sets only a header timeout and an idle
// timeout): read and write deadlines on every request, a connection cap, small headers, optional
// client certificate verification.
type Server struct {
	opts    ServerOptions
	mux     *http.ServeMux
	started atomic.Bool
	addr    atomic.Pointer[string]
	open    atomic.Int64
	// draining: answers close their connection (see Drain).
	draining atomic.Bool

	mu       sync.Mutex
	handlers map[string]bool
}

var _ crwebhook.Server = (*Server)(nil)

// NewServer returns a server; Register handlers, then Start it.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.GetCertificate == nil {
		return nil, errors.New("admission server: a serving certificate source is required")
	}
	if opts.TLSMinVersion != tls.VersionTLS12 && opts.TLSMinVersion != tls.VersionTLS13 {
		return nil, errors.New("admission server: TLS minimum version must be 1.2 or 1.3")
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if len(opts.ClientNames) > 0 && opts.ClientCAFile == "" {
		return nil, errors.New("admission server: allowed client names need a client CA file")
	}
	return &Server{opts: opts, mux: http.NewServeMux(), handlers: map[string]bool{}}, nil
}

// NeedLeaderElection implements webhook.Server: every replica serves.
func (*Server) NeedLeaderElection() bool { return false }

// Register serves hook at path. It panics on a duplicate path, as controller-runtime's does.
func (s *Server) Register(path string, hook http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handlers[path] {
		panic(fmt.Sprintf("admission server: duplicate path %s", path))
	}
	s.handlers[path] = true
	s.mux.Handle(path, hook)
}

// Drain makes every answer from now on close its connection ("Connection: close"), while the
// server goes on answering. Called when shutdown starts: a client (the API server) that is told
// to close a connection after an answer opens its next one elsewhere — to a replica still in the
// Service — whereas a keep-alive connection closed by the server while idle can be picked for a
// request at that very moment, and that request fails. What is still idle when the server shuts
// down had no request during the whole shutdown delay.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called (readiness fails from then on).
func (s *Server) Draining() bool { return s.draining.Load() }

// serveHTTP is the server's handler: the registered hooks, with connections closed after each
// answer once draining.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	s.mux.ServeHTTP(w, r)
}

// WebhookMux implements webhook.Server.
func (s *Server) WebhookMux() *http.ServeMux { return s.mux }

// Addr is the address the server listens on once started ("" before).
func (s *Server) Addr() string {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// TLSConfig is the server's TLS configuration.
func (s *Server) TLSConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:     s.opts.TLSMinVersion,
		GetCertificate: s.opts.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
	if s.opts.EnableHTTP2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	if s.opts.ClientCAFile != "" {
		pem, err := os.ReadFile(s.opts.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA file %s holds no PEM certificate", s.opts.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if names := s.opts.ClientNames; len(names) > 0 {
			cfg.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
				leaf := chains[0][0] // verified chains exist: RequireAndVerifyClientCert ran first
				if slices.Contains(names, leaf.Subject.CommonName) {
					return nil
				}
				for _, n := range leaf.DNSNames {
					if slices.Contains(names, n) {
						return nil
					}
				}
				return fmt.Errorf("client certificate %q is not one of the allowed clients", leaf.Subject.CommonName)
			}
		}
	}
	return cfg, nil
}

// Start serves until ctx ends, then shuts down gracefully (in-flight requests finish, bounded by
// their own deadlines).
func (s *Server) Start(ctx context.Context) error {
	cfg, err := s.TLSConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)))
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	s.addr.Store(&addr)
	ln = tls.NewListener(netutil.LimitListener(ln, s.opts.MaxConnections), cfg)

	srv := &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: s.opts.RequestTimeout,
		ReadTimeout:       s.opts.RequestTimeout,
		// The handler's own deadline ends before the request timeout (requestBudget), so that an
		// answer refusing a review that ran out of time is still written whole: a write cut by
		// its deadline leaves a broken TLS record the client sees only as "bad record MAC".
		WriteTimeout:   s.opts.RequestTimeout + writeSlack,
		IdleTimeout:    s.opts.IdleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ConnState:      s.connState,
		// TLS handshake failures and cut-off clients are routine under scanning or attack:
		// logged at debug level, not to stderr.
		ErrorLog: log.New(logWriter{s.opts.Log.V(1)}, "", 0),
	}
	if s.opts.EnableHTTP2 {
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: http2MaxStreams}
	} else {
		// An empty, non-nil map turns HTTP/2 off even if a client offers it.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*s.opts.RequestTimeout)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			s.opts.Log.Error(err, "shutting down the admission server")
		}
	}()
	s.started.Store(true)
	s.opts.Log.Info("serving admission", "address", addr, "maxConnections", s.opts.MaxConnections,
		"requestTimeout", s.opts.RequestTimeout.String(), "clientCertificates", s.opts.ClientCAFile != "")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}

func (s *Server) connState(_ net.Conn, state http.ConnState) {
	var n int64
	switch state {
	case http.StateNew:
		n = s.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		n = s.open.Add(-1)
	default:
		return
	}
	if s.opts.OnConnections != nil {
		s.opts.OnConnections(int(n))
	}
}

type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}

// StartedChecker implements webhook.Server: healthy once the server accepts TLS connections.
func (s *Server) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		if !s.started.Load() {
			return errors.New("admission server not started yet")
		}
		if _, err := s.opts.GetCertificate(&tls.ClientHelloInfo{}); err != nil {
			return fmt.Errorf("no serving certificate: %w", err)
		}
		return nil
	}
}
