package loadgen

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Server is a server under measurement: its admission URL and, for CPU and memory from /proc,
// its process id (0: not measured).
type Server struct {
	Name string
	URL  string
	PID  int
}

// Measurement is one measured run against one server.
type Measurement struct {
	Stats       *Stats
	ServerTicks int64       // the server's CPU (user+sys clock ticks) over the measured run
	ServerAfter *ProcSample // the server's /proc after the run; nil without a PID
	ClientTicks int64       // this process's CPU over the same run
}

// Measure sends warmup of cfg's load to srv (not counted: connections, caches), then cfg's load
// for cfg.Duration, reading the server's and this process's CPU from /proc before and after.
// The server's process going away stops the run with an error.
func Measure(ctx context.Context, srv Server, r *Reviews, cfg Config, warmup time.Duration) (Measurement, error) {
	tr := NewTransport(cfg.conns())
	defer tr.CloseIdleConnections()
	c, err := NewClient(tr, srv.URL, cfg.Timeout, r)
	if err != nil {
		return Measurement{}, err
	}
	pid := fmt.Sprint(srv.PID)
	if srv.PID > 0 {
		cfg.ProcCheck = func() error {
			if _, err := os.Stat("/proc/" + pid); err != nil {
				return fmt.Errorf("process %s is gone", pid)
			}
			return nil
		}
	}
	var m Measurement
	if warmup > 0 {
		warm := cfg
		warm.Duration, warm.Requests = warmup, 0
		if _, err := Run(ctx, c, warm); err != nil {
			return m, err
		}
	}
	var before ProcSample
	if srv.PID > 0 {
		if before, err = ReadProc(pid); err != nil {
			return m, err
		}
	}
	selfBefore, err := ReadProc("self")
	if err != nil {
		return m, err
	}
	st, err := Run(ctx, c, cfg)
	if err != nil {
		return m, err
	}
	selfAfter, err := ReadProc("self")
	if err != nil {
		return m, err
	}
	if srv.PID > 0 {
		after, err := ReadProc(pid)
		if err != nil {
			return m, err
		}
		m.ServerTicks, m.ServerAfter = after.Ticks-before.Ticks, &after
	}
	m.Stats, m.ClientTicks = st, selfAfter.Ticks-selfBefore.Ticks
	return m, nil
}
