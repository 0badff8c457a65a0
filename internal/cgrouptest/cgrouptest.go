// Package cgrouptest makes real memory cgroups for tests: a child of the
// test process's own memory cgroup, with a limit the kernel enforces, removed
// when the test ends whether it passes or fails.
package cgrouptest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/cgroup"
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

// New makes a child cgroup with the given limit in bytes (0 = none of its
// own) or skips the test, saying why, where that is impossible.
func New(t testing.TB, limit int64) *cgroup.Child {
	t.Helper()
	self := parent(t)
	return newChild(t, self, limit)
}

// NewIn makes a child of parent, removed at the end of the test.
func NewIn(t testing.TB, parent *cgroup.Child, limit int64) *cgroup.Child {
	t.Helper()
	return newChild(t, &parent.Group, limit)
}

func newChild(t testing.TB, parent *cgroup.Group, limit int64) *cgroup.Child {
	t.Helper()
	name := fmt.Sprintf("oomguard-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c, err := parent.NewChild(name, limit)
	if err != nil {
		skip(t, "cannot make a memory cgroup under %s (needs root and a writable memory controller): %v", parent.Dir, err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Errorf("cgroup left behind: %v", err)
		}
	})
	return c
}

func parent(t testing.TB) *cgroup.Group {
	t.Helper()
	if runtime.GOOS != "linux" {
		skip(t, "real cgroups need Linux")
	}
	if os.Geteuid() != 0 {
		skip(t, "real cgroups need root")
	}
	g, err := cgroup.Self()
	if err != nil {
		skip(t, "no memory cgroup: %v", err)
	}
	if !strings.HasPrefix(g.Dir, g.Mount) {
		skip(t, "memory cgroup %s is outside its mount %s", g.Dir, g.Mount)
	}
	return g
}
