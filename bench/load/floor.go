package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/lanyard-dev/lanyard/bench/floor"
	"github.com/lanyard-dev/lanyard/certs"
)

// The floor server is package floor (SPEC §9's baseline) behind HTTPS, so that TLS, HTTP and the
// network cost the same on both sides of the comparison.

// floorPath is where the floor serves admission, the path lanyard serves pods on.
const floorPath = "/mutate-v1-pod"

// maxFloorBody bounds a review the floor reads (lanyard's --max-request-bytes default).
const maxFloorBody = 16 << 20

// floorHandler serves floorAnswer over HTTP.
func floorHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFloorBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := floor.Answer(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// newFloorServer listens on addr (host:port; port 0 picks one) with a fresh self-signed
// certificate for 127.0.0.1 and localhost, HTTP/1.1 only, as lanyard serves by default. It returns
// the server, its TLS listener (to pass to Serve) and the admission URL.
func newFloorServer(addr string) (*http.Server, net.Listener, string, error) {
	now := time.Now()
	ca, err := certs.NewCA(now, 24*time.Hour)
	if err != nil {
		return nil, nil, "", err
	}
	leaf, err := certs.IssueServing(ca, []string{"127.0.0.1", "localhost"}, now, 24*time.Hour)
	if err != nil {
		return nil, nil, "", err
	}
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		return nil, nil, "", err
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc(floorPath, floorHandler)
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
	return srv, tls.NewListener(ln, tlsConfig), "https://" + ln.Addr().String() + floorPath, nil
}

// floorReadyPrefix starts the one line a floor process writes to stdout once it serves.
const floorReadyPrefix = "floor serving "

// serveFloor is the -floor mode: serve until stdin closes (the parent ended or closed its pipe).
func serveFloor(addr string) error {
	srv, ln, url, err := newFloorServer(addr)
	if err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	fmt.Printf("%s%s pid %d\n", floorReadyPrefix, url, os.Getpid())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// floorProcess is a floor server running as a child process (its own process, so that its CPU
// and memory can be read from /proc as lanyard's are).
type floorProcess struct {
	URL   string
	PID   int
	cmd   *exec.Cmd
	stdin io.Closer
}

// startFloor runs this binary again with -floor and waits until it serves.
func startFloor() (*floorProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-floor", "-listen", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &floorProcess{PID: cmd.Process.Pid, cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		rest, found := strings.CutPrefix(l, floorReadyPrefix)
		if !ok || !found {
			f.Stop()
			return nil, fmt.Errorf("floor process %d did not start (first line %q)", f.PID, l)
		}
		f.URL, _, _ = strings.Cut(rest, " ")
		return f, nil
	case <-time.After(30 * time.Second):
		f.Stop()
		return nil, fmt.Errorf("floor process %d did not serve within 30s", f.PID)
	}
}

// Stop ends the floor process: its stdin closes, then it is killed if still there after 5 s.
func (f *floorProcess) Stop() {
	_ = f.stdin.Close()
	done := make(chan struct{})
	go func() { _ = f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = f.cmd.Process.Kill()
		<-done
	}
}
