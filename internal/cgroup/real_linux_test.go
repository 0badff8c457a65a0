//go:build linux

package cgroup_test

// Tests on the real kernel: each makes a child memory cgroup with
// internal/cgrouptest (which skips, saying why, without root or a writable
// memory controller, and removes the cgroup when the test ends) and runs the
// test binary itself in it as a helper process.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

const (
	mib       = 1 << 20
	helperEnv = "OOMGUARD_CGROUP_HELPER"
)

// crossCheck, when set (automemlimit_linux_test.go), is a second opinion on
// the limit, computed inside the helper process.
var crossCheck func() (uint64, error)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		helper(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// report is what the "limit" helper prints.
type report struct {
	Version       cgroup.Version
	Dir, Mount    string
	Limit         cgroup.Limit
	Err           string
	CrossCheck    uint64
	CrossErr      string
	HasCrossCheck bool
}

func helper(mode string) {
	switch mode {
	case "limit":
		var r report
		g, err := cgroup.Self()
		if err == nil {
			r.Version, r.Dir, r.Mount = g.Version, g.Dir, g.Mount
			r.Limit, err = g.Limit()
		}
		if err != nil {
			r.Err = err.Error()
		}
		if crossCheck != nil {
			r.HasCrossCheck = true
			r.CrossCheck, err = crossCheck()
			if err != nil {
				r.CrossErr = err.Error()
			}
		}
		json.NewEncoder(os.Stdout).Encode(r)
	case "touch":
		// Touch 50 MiB, say so, and hold it until stdin closes.
		b := make([]byte, 50*mib)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		runtime.KeepAlive(b)
	case "oom":
		// Allocate and touch far past any limit the test sets.
		var keep [][]byte
		for i := 0; i < 256; i++ {
			b := make([]byte, 8*mib)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		runtime.KeepAlive(keep)
		fmt.Println("survived 2 GiB")
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		os.Exit(2)
	}
}

func helperCommand(t *testing.T, c *cgrouptest.Child, mode string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := c.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	return cmd
}

// limitIn runs the "limit" helper in c and returns its report.
func limitIn(t *testing.T, c *cgrouptest.Child) report {
	t.Helper()
	out, err := helperCommand(t, c, "limit").Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if r.Err != "" {
		t.Fatalf("helper: %s", r.Err)
	}
	if r.Dir != c.Dir {
		t.Errorf("helper's cgroup = %s, want %s", r.Dir, c.Dir)
	}
	if r.Version != c.Version {
		t.Errorf("helper's version = %d, want %d", r.Version, c.Version)
	}
	// automemlimit reads hard limits only, not memory.high.
	if r.HasCrossCheck && r.Limit.File != "memory.high" {
		if r.CrossErr != "" {
			t.Errorf("cross-check: %s", r.CrossErr)
		} else if int64(r.CrossCheck) != r.Limit.Bytes {
			t.Errorf("cross-check says %d bytes, Limit says %d", r.CrossCheck, r.Limit.Bytes)
		}
	}
	return r
}

func TestRealSelf(t *testing.T) {
	g, err := cgroup.Self()
	if errors.Is(err, cgroup.ErrNoMemoryController) {
		t.Skipf("no memory cgroup here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	l, err := g.Limit()
	if err != nil {
		t.Fatalf("Limit of %s: %v", g.Dir, err)
	}
	t.Logf("v%d %s (mount %s): limit %+v", g.Version, g.Dir, g.Mount, l)
}

func TestRealLimit(t *testing.T) {
	c := cgrouptest.New(t, 200*mib)
	r := limitIn(t, c)
	want := cgroup.Limit{Bytes: 200 * mib, File: "memory.max", Dir: c.Dir}
	if c.Version == 1 {
		want.File = "memory.limit_in_bytes"
	}
	if r.Limit != want {
		t.Errorf("Limit = %+v, want %+v", r.Limit, want)
	}
	if !r.HasCrossCheck {
		t.Log("no cross-check compiled in")
	}
}

func TestRealLimitNested(t *testing.T) {
	parent := cgrouptest.New(t, 300*mib)
	c := cgrouptest.NewIn(t, parent, 0)
	r := limitIn(t, c)
	want := cgroup.Limit{Bytes: 300 * mib, File: "memory.max", Dir: parent.Dir}
	if c.Version == 1 {
		want.File = "hierarchical_memory_limit"
	}
	if r.Limit != want {
		t.Errorf("Limit = %+v, want %+v", r.Limit, want)
	}
}

// TestRealLimitHigh: on v2 memory.high, where the kernel starts throttling
// and reclaiming, is the limit when it is the lower bound.
func TestRealLimitHigh(t *testing.T) {
	c := cgrouptest.New(t, 200*mib)
	if c.Version != 2 {
		t.Skip("memory.high is cgroup v2 only")
	}
	if err := c.SetHigh(150 * mib); err != nil {
		t.Fatal(err)
	}
	r := limitIn(t, c)
	want := cgroup.Limit{Bytes: 150 * mib, File: "memory.high", Dir: c.Dir}
	if r.Limit != want {
		t.Errorf("Limit = %+v, want %+v", r.Limit, want)
	}
}

func TestRealUsage(t *testing.T) {
	c := cgrouptest.New(t, 200*mib)
	cmd := helperCommand(t, c, "touch")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if pids := c.Procs(); len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Errorf("Procs = %v, want [%d]", pids, cmd.Process.Pid)
	}
	r, err := c.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	u, err := r.Usage()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("usage %+v, working set %.1f MiB", u, float64(u.WorkingSet())/mib)
	if u.Current < 50*mib || u.WorkingSet() < 50*mib {
		t.Errorf("usage %+v (working set %d) after touching 50 MiB, want ≥ %d", u, u.WorkingSet(), 50*mib)
	}
	if u.Current > 200*mib {
		t.Errorf("usage %d above the 200 MiB limit", u.Current)
	}
	if n := testing.AllocsPerRun(20, func() { r.Usage() }); n != 0 {
		t.Errorf("Reader.Usage on a real cgroup allocates %v times per call", n)
	}
}

func TestRealOOMKill(t *testing.T) {
	c := cgrouptest.New(t, 64*mib)
	before, ok := c.ReadOOMKills()
	if !ok {
		t.Skip("this kernel does not count OOM kills per cgroup")
	}
	runErr := helperCommand(t, c, "oom").Run()
	var ee *exec.ExitError
	if !errors.As(runErr, &ee) {
		t.Fatalf("helper allocating past 64 MiB: %v, want killed", runErr)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want signal: killed", runErr)
	}
	var after int64
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after, _ = c.ReadOOMKills()
		if after > before || time.Now().After(deadline) {
			break
		}
	}
	if after < before+1 {
		t.Errorf("oom_kill %d → %d, want an increase", before, after)
	}
	r, err := c.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, ok := r.OOMKills(); !ok || n != after {
		t.Errorf("Reader.OOMKills = %d, %v; want %d", n, ok, after)
	}
	if c.Version == 2 {
		// The count comes from memory.events, which the kernel keeps.
		b, err := os.ReadFile(c.Dir + "/memory.events")
		if err != nil || !strings.Contains(string(b), fmt.Sprintf("oom_kill %d\n", after)) {
			t.Errorf("memory.events %q, %v; want oom_kill %d", b, err, after)
		}
	}
	t.Logf("helper: %v; oom_kill %d → %d", runErr, before, after)
}
