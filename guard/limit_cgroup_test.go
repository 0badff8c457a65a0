package guard_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

func TestCgroupLimitSetsGoMemLimit(t *testing.T) {
	child := cgrouptest.New(t, 200*mib)
	s := lastSnapshot(t, runHelperIn(t, child, "detect"))
	if s.Limit != 200*mib || s.LimitSource != guard.LimitFromCgroup {
		t.Errorf("limit %d from %q (%s), want %d from cgroup", s.Limit, s.LimitSource, s.LimitDetail, 200*mib)
	}
	if s.GoMemLimit != 180*mib || s.GoMemLimitSource != "guard" {
		t.Errorf("GOMEMLIMIT %d (%s), want %d (guard)", s.GoMemLimit, s.GoMemLimitSource, 180*mib)
	}
	if s.UsageSource != guard.UsageFromCgroup || s.Usage <= 0 || s.Usage > 200*mib {
		t.Errorf("usage %d from %q", s.Usage, s.UsageSource)
	}
	t.Logf("limit %d MiB from %s (%s), GOMEMLIMIT %d MiB, usage %.1f MiB",
		s.Limit/mib, s.LimitSource, s.LimitDetail, s.GoMemLimit/mib, float64(s.Usage)/mib)
}

func TestCgroupEnvGoMemLimitWins(t *testing.T) {
	child := cgrouptest.New(t, 200*mib)
	s := lastSnapshot(t, runHelperIn(t, child, "detect", "GOMEMLIMIT=150MiB"))
	if s.GoMemLimit != 150*mib || s.GoMemLimitSource != "env" {
		t.Errorf("GOMEMLIMIT %d (%s), want %d from the environment", s.GoMemLimit, s.GoMemLimitSource, 150*mib)
	}
	if s.Limit != 200*mib {
		t.Errorf("limit %d, want %d", s.Limit, 200*mib)
	}
}

// TestCgroupResizeFollowed: a limit changed in place, as Kubernetes
// resizes a pod, moves the guard's limit and GOMEMLIMIT within a second,
// down and back up.
func TestCgroupResizeFollowed(t *testing.T) {
	child := cgrouptest.New(t, 256*mib)
	var changes []time.Time
	lines := runService(t, child, "limit-watch", nil, func(helperLine) {
		for _, l := range []int64{192 * mib, 256 * mib} {
			time.Sleep(300 * time.Millisecond)
			changes = append(changes, time.Now())
			if err := child.SetLimit(l); err != nil {
				t.Errorf("resize to %d MiB: %v", l/mib, err)
				return
			}
			time.Sleep(1500 * time.Millisecond)
		}
	})
	var seen []helperLine
	for _, l := range lines {
		if l.Kind == "limit" {
			seen = append(seen, l)
		}
	}
	if len(seen) != len(changes) {
		t.Fatalf("%d limit changes seen, want %d: %+v", len(seen), len(changes), seen)
	}
	for i, want := range []int64{192 * mib, 256 * mib} {
		s, took := seen[i].Snapshot, seen[i].At.Sub(changes[i])
		t.Logf("resize to %d MiB seen after %v; GOMEMLIMIT %.1f MiB", want/mib, took.Round(time.Millisecond), float64(s.GoMemLimit)/mib)
		if s.Limit != want || s.GoMemLimit != want*9/10 {
			t.Errorf("after the resize to %d MiB: limit %d, GOMEMLIMIT %d; want %d and %d", want/mib, s.Limit, s.GoMemLimit, want, want*9/10)
		}
		if took > time.Second {
			t.Errorf("resize to %d MiB seen after %v, want within 1s", want/mib, took)
		}
	}
}

func TestCgroupInheritedLimit(t *testing.T) {
	parent := cgrouptest.New(t, 300*mib)
	child := cgrouptest.NewIn(t, parent, 0)
	s := lastSnapshot(t, runHelperIn(t, child, "detect"))
	if s.Limit != 300*mib || s.LimitSource != guard.LimitFromCgroup {
		t.Errorf("limit %d from %q (%s), want %d from the parent cgroup", s.Limit, s.LimitSource, s.LimitDetail, 300*mib)
	}
	if s.GoMemLimit != 270*mib {
		t.Errorf("GOMEMLIMIT %d, want %d", s.GoMemLimit, 270*mib)
	}
}

// TestCgroupHighIsTheLimit: on v2 a memory.high below memory.max is the
// limit the guard keeps to, since the kernel throttles the service there.
func TestCgroupHighIsTheLimit(t *testing.T) {
	child := cgrouptest.New(t, 200*mib)
	if child.Version != 2 {
		t.Skip("memory.high is cgroup v2 only")
	}
	if err := child.SetHigh(150 * mib); err != nil {
		t.Fatal(err)
	}
	s := lastSnapshot(t, runHelperIn(t, child, "detect"))
	if s.Limit != 150*mib || s.LimitSource != guard.LimitFromCgroupHigh {
		t.Errorf("limit %d from %q (%s), want %d from cgroup-high", s.Limit, s.LimitSource, s.LimitDetail, 150*mib)
	}
	if s.GoMemLimit != 135*mib {
		t.Errorf("GOMEMLIMIT %d, want %d", s.GoMemLimit, 135*mib)
	}
	// Every v2 memory cgroup has memory.events; memory.pressure where the
	// kernel has PSI on.
	if !s.HasMemoryEvents {
		t.Error("Snapshot.HasMemoryEvents false on cgroup v2")
	}
	if _, err := os.Stat(filepath.Join(child.Dir, "memory.pressure")); err == nil && !s.HasMemoryPressure {
		t.Error("Snapshot.HasMemoryPressure false with memory.pressure in the cgroup")
	}
}

func lastSnapshot(t *testing.T, lines []helperLine) guard.Snapshot {
	t.Helper()
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i].Kind == "snapshot" {
			return *lines[i].Snapshot
		}
	}
	t.Fatal("helper printed no snapshot")
	return guard.Snapshot{}
}
