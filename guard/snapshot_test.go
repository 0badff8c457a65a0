package guard

import "testing"

func TestSnapshotSignals(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	s := g.Snapshot()
	if s.Usage <= 0 || s.UsageSource == "" {
		t.Errorf("usage %d from %q", s.Usage, s.UsageSource)
	}
	if s.HeapGoal <= 0 || s.GoResident <= 0 || s.GoMemLimit <= 0 {
		t.Errorf("runtime signals missing: %+v", s)
	}
	if s.Level != LevelNormal || g.Level() != LevelNormal {
		t.Errorf("level %v at a 1 TiB limit", s.Level)
	}
	if s.Time.IsZero() || s.Interval <= 0 {
		t.Errorf("time %v, interval %v", s.Time, s.Interval)
	}
}
