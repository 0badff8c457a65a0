package notify_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/cgrouptest"
	"github.com/oomguard/oomguard/internal/notify"
)

// TestPressureFiresOnV2: a process pushing past memory.high, with no swap
// to reclaim anonymous memory to, is throttled by the kernel, and that
// time counts as a memory stall.
func TestPressureFiresOnV2(t *testing.T) {
	c := needVersion(t, 2, 0, "per-cgroup memory.pressure")
	if err := c.SetHigh(32 * mib); err != nil {
		t.Fatal(err)
	}
	p := &notify.Pressure{Path: filepath.Join(c.Dir, "memory.pressure"), Stall: 100 * time.Millisecond, Window: time.Second}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	startHelper(t, c, "alloc 96")
	took := waitFire(t, p.C, "PSI some 100ms/1s")
	b, _ := os.ReadFile(p.Path)
	t.Logf("fired %v after the helper started; memory.pressure:\n%s", took, b)
}

func TestPressureUnavailable(t *testing.T) {
	assertUnavailable(t, &notify.Pressure{Path: filepath.Join(t.TempDir(), "memory.pressure"), Stall: time.Second, Window: 2 * time.Second}, "missing")
	c := cgrouptest.New(t, 0)
	if c.Version == 1 {
		assertUnavailable(t, &notify.Pressure{Path: filepath.Join(c.Dir, "memory.pressure"), Stall: time.Second, Window: 2 * time.Second}, "a v1 cgroup")
	}
}

func TestPressureNotWritable(t *testing.T) {
	if _, err := os.Stat("/proc/pressure/memory"); err != nil {
		t.Skipf("no PSI on this kernel: %v", err)
	}
	readOnlyHelper(t, "/proc", "/proc/pressure/memory")
}

func TestPressureBadWindow(t *testing.T) {
	p := &notify.Pressure{Path: "/proc/pressure/memory", Stall: 50 * time.Millisecond, Window: 100 * time.Millisecond}
	err := p.Start()
	p.Close()
	if err == nil || errors.Is(err, notify.ErrUnavailable) || !strings.Contains(err.Error(), "100ms") {
		t.Errorf("Start with a 100ms window = %v, want an error naming it", err)
	}
}
