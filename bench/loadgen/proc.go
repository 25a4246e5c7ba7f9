package loadgen

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ProcSample is a process's CPU time and memory as /proc shows them.
type ProcSample struct {
	Ticks  int64 // utime + stime, in clock ticks
	RSSKiB int64 // VmRSS
	HWMKiB int64 // VmHWM: peak RSS since the process started
	// RssAnon: the anonymous part of VmRSS (heap, stacks), the rest being mapped files (the binary)
	AnonKiB int64
}

// ReadProc reads /proc/<pid>/stat and /proc/<pid>/status ("self" for this process).
func ReadProc(pid string) (ProcSample, error) {
	var p ProcSample
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return p, err
	}
	if p.Ticks, err = cpuTicks(string(stat)); err != nil {
		return p, fmt.Errorf("/proc/%s/stat: %w", pid, err)
	}
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return p, err
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			p.RSSKiB, err = kib(v)
		} else if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			p.HWMKiB, err = kib(v)
		} else if v, ok := strings.CutPrefix(s.Text(), "RssAnon:"); ok {
			p.AnonKiB, err = kib(v)
		}
		if err != nil {
			return p, fmt.Errorf("/proc/%s/status: %w", pid, err)
		}
	}
	return p, s.Err()
}

// cpuTicks is utime + stime (fields 14 and 15) of a /proc/<pid>/stat line. The command name
// (field 2) is in parentheses and may hold spaces and parentheses: fields are counted after the
// last ')'.
func cpuTicks(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	fields := strings.Fields(stat[i+1:]) // fields[0] is field 3 (state)
	if len(fields) < 13 {
		return 0, fmt.Errorf("%d fields after the command name", len(fields))
	}
	utime, err := strconv.ParseInt(fields[14-3], 10, 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseInt(fields[15-3], 10, 64)
	if err != nil {
		return 0, err
	}
	return utime + stime, nil
}

// kib parses "   12345 kB".
func kib(v string) (int64, error) {
	return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
}

// ClockTicks is the kernel's clock tick (USER_HZ) in Hz, from `getconf CLK_TCK`, with where it
// came from. Without getconf it is assumed to be 100, the value on every Linux architecture
// lanyard targets.
func ClockTicks() (int64, string) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if hz, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && hz > 0 {
			return hz, "getconf CLK_TCK"
		}
	}
	return 100, "assumed (getconf CLK_TCK unavailable)"
}
