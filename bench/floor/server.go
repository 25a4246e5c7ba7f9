package floor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"
)

// Path is where the floor serves admission, the path lanyard serves pods on.
const Path = "/mutate-v1-pod"

// maxBody bounds a review the floor reads (lanyard's --max-request-bytes default).
const maxBody = 16 << 20

// Handler serves Answer over HTTP.
func Handler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := Answer(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// NewServer listens on addr (host:port; port 0 picks one) with a fresh self-signed certificate
// for 127.0.0.1 and localhost, HTTP/1.1 only, as lanyard serves by default, so that TLS and HTTP
// cost the same on both sides of a comparison. It returns the server, its TLS listener (to pass
// to Serve) and the admission URL.
func NewServer(addr string) (*http.Server, net.Listener, string, error) {
	cert, err := selfSigned(time.Now())
	if err != nil {
		return nil, nil, "", err
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, Handler)
	srv := &http.Server{
		Handler:   mux,
		TLSConfig: tlsConfig,
		// A non-nil empty map turns HTTP/2 off: lanyard serves HTTP/1.1 unless --enable-http2.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          log.New(os.Stderr, "floor: ", 0),
	}
	return srv, tls.NewListener(ln, tlsConfig), "https://" + ln.Addr().String() + Path, nil
}

// selfSigned is an ECDSA P-256 certificate for 127.0.0.1 and localhost, valid for a day (the
// key lanyard's own certificates use).
func selfSigned(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "floor"},
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// ReadyPrefix starts the one line a floor process writes to stdout once it serves:
// "floor serving <URL> pid <pid>".
const ReadyPrefix = "floor serving "

// ServeProcess is what a floor process runs: serve on addr until stdin closes (the parent ended
// or closed its pipe), after writing the ReadyPrefix line.
func ServeProcess(addr string) error {
	srv, ln, url, err := NewServer(addr)
	if err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	fmt.Printf("%s%s pid %d\n", ReadyPrefix, url, os.Getpid())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
