// Package cgrouptest makes real memory cgroups, with limits the kernel
// enforces, for tests and the survival harness, runs processes in them, puts
// them under CPU quotas, and kills and removes them. It is the rig production packages must not carry:
// it needs os/exec and a cgroup library.
//
// It makes cgroups the way the kernel allows on each version: on v1 below
// the process's own memory cgroup; on v2 as leaves under a cgroup that
// holds no processes, with memory enabled in each parent's
// cgroup.subtree_control (see base for the ways it finds one).
package cgrouptest

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
)

// RequireEnv names the environment variable that turns every skip below
// into a failure: CI sets it on machines that can make cgroups, so that a
// regression in cgroup creation cannot pass as a skip.
const RequireEnv = "OOMGUARD_REQUIRE_CGROUP"

// skip skips the test, or fails it where RequireEnv is set.
func skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf(format+" ("+RequireEnv+" is set)", args...)
	}
	t.Skipf(format, args...)
}

var made atomic.Int64

// testPrefix begins the name of every cgroup New and NewIn make; the pid
// after it tells RemoveStale a live test binary's cgroups from a dead one's.
const testPrefix = "oomguard-test-"

// name returns a fresh cgroup name for a test.
func name() string {
	return fmt.Sprintf("%s%d-%d", testPrefix, os.Getpid(), made.Add(1))
}

// New makes a memory cgroup with the given limit in bytes (0 = none of its
// own), removed when the test ends whether it passes or fails, or skips the
// test, saying what is missing, where that is impossible.
func New(t testing.TB, limit int64) *Child {
	t.Helper()
	if runtime.GOOS != "linux" {
		skip(t, "real cgroups need Linux")
	}
	c, err := Make(name(), limit)
	if err != nil {
		skip(t, "%v", err)
	}
	removeAtEnd(t, c)
	// A test binary that died before its cleanups ran, as one that go
	// test's -timeout kills does, left its cgroups: they go now, while
	// c holds the base, so that removing them undoes nothing.
	if removed, err := RemoveStale(testPrefix); err != nil {
		t.Logf("cgrouptest: removing the cgroups of test binaries that died: %v", err)
	} else if len(removed) > 0 {
		t.Logf("cgrouptest: removed %v, left by test binaries that died", removed)
	}
	return c
}

// NewIn makes a memory cgroup below parent, removed at the end of the test.
// On v2 parent must hold no processes.
func NewIn(t testing.TB, parent *Child, limit int64) *Child {
	t.Helper()
	c, err := parent.Make(name(), limit)
	if err != nil {
		t.Fatal(err)
	}
	removeAtEnd(t, c)
	return c
}

func removeAtEnd(t testing.TB, c *Child) {
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Errorf("cgroup left behind: %v", err)
		}
	})
}
