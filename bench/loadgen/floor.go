package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/lanyard-dev/lanyard/bench/floor"
)

// ServeFloorHere serves the floor in this process (floor.NewServer) and returns its URL and a
// stop that closes it, reporting how serving ended if not by that close.
func ServeFloorHere(addr string) (url string, stop func() error, err error) {
	srv, ln, url, err := floor.NewServer(addr)
	if err != nil {
		return "", nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return url, func() error {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, nil
}

// FloorProcess is a floor server running as a child process (its own process, so that its CPU
// and memory can be read from /proc as lanyard's are).
type FloorProcess struct {
	URL   string
	PID   int
	cmd   *exec.Cmd
	stdin io.Closer
}

// Server is the floor as a server to measure.
func (f *FloorProcess) Server() Server { return Server{Name: "floor", URL: f.URL, PID: f.PID} }

// StartFloor runs command (bench/floorserver, or a program that calls floor.ServeProcess, with its
// arguments) and waits until it serves.
func StartFloor(command ...string) (*FloorProcess, error) {
	if len(command) == 0 {
		return nil, errors.New("no floor command")
	}
	cmd := exec.Command(command[0], command[1:]...)
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
	f := &FloorProcess{PID: cmd.Process.Pid, cmd: cmd, stdin: stdin}
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
		rest, found := strings.CutPrefix(l, floor.ReadyPrefix)
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
func (f *FloorProcess) Stop() {
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
