//go:build linux

package cgroup_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/cgrouptest"
)

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
	// The helper was killed at the limit: the peak is there. v2 may count
	// a page or a charge batch past memory.max (64 MiB + 4 KiB seen).
	if peak, ok := c.ReadPeak(); !ok || peak < 56*mib || peak > 65*mib {
		t.Errorf("ReadPeak after a kill at 64 MiB = %d, %v; want 56 to 65 MiB", peak, ok)
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
