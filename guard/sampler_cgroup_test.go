package guard_test

import (
	"testing"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

const mib = 1 << 20

// climbLevels returns the levels entered going up, and the last snapshot.
func climbLevels(t *testing.T, lines []helperLine) (up []guard.Level, peak guard.Snapshot, last guard.Snapshot) {
	for _, l := range lines {
		if l.Kind != "event" {
			continue
		}
		if l.Level > l.Previous {
			up = append(up, l.Level)
		}
		if l.Snapshot.Usage > peak.Usage {
			peak = *l.Snapshot
		}
	}
	return up, peak, lastSnapshot(t, lines)
}

func assertClimb(t *testing.T, lines []helperLine) (peak guard.Snapshot) {
	t.Helper()
	up, peak, last := climbLevels(t, lines)
	want := []guard.Level{guard.LevelElevated, guard.LevelHigh, guard.LevelCritical}
	if len(up) != len(want) {
		t.Fatalf("levels entered going up: %v, want %v", up, want)
	}
	for i := range want {
		if up[i] != want[i] {
			t.Fatalf("levels entered going up: %v, want %v", up, want)
		}
	}
	if last.Level != guard.LevelNormal {
		t.Errorf("level after release = %v, want normal", last.Level)
	}
	for _, l := range lines {
		if l.Kind == "event" {
			s := l.Snapshot
			t.Logf("%-8v -> %-8v usage %6.1f MiB (%.3f) heap live %6.1f MiB gc %.2f thrash %v", l.Previous, l.Level,
				float64(s.Usage)/mib, s.Pressure(), float64(s.HeapLive)/mib, s.GCCPUFraction, s.GCThrashing)
		}
	}
	return peak
}

func TestCgroupHeapClimbPassesEveryLevel(t *testing.T) {
	child := cgrouptest.New(t, 200*mib)
	assertClimb(t, runHelperIn(t, child, "heap-steps"))
}

func TestCgroupOffHeapMemoryRaisesLevel(t *testing.T) {
	child := cgrouptest.New(t, 200*mib)
	lines := runHelperIn(t, child, "offheap-steps")
	assertClimb(t, lines)
	for _, l := range lines {
		if l.Snapshot != nil && l.Snapshot.HeapLive > 32*mib {
			t.Errorf("Go heap grew to %d MiB; the test meant to keep it flat", l.Snapshot.HeapLive/mib)
		}
	}
}
