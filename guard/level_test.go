package guard

import (
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
)

func TestLevelsHysteresis(t *testing.T) {
	type step struct {
		after    time.Duration // since the previous step
		pressure float64
		thrash   bool
		want     Level
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"entered at threshold", []step{
			{0, 0.69, false, LevelNormal},
			{0, 0.70, false, LevelElevated},
			{0, 0.85, false, LevelHigh},
			{0, 0.95, false, LevelCritical},
		}},
		{"jumps straight to critical", []step{
			{0, 0.99, false, LevelCritical},
		}},
		{"stays within the hysteresis band", []step{
			{0, 0.86, false, LevelHigh},
			{time.Hour, 0.81, false, LevelHigh},
			{time.Hour, 0.80, false, LevelHigh},
		}},
		{"leaves only after the dwell", []step{
			{0, 0.86, false, LevelHigh},
			{0, 0.79, false, LevelHigh},
			{time.Second, 0.79, false, LevelHigh},
			{time.Second, 0.79, false, LevelElevated},
		}},
		{"a rise resets the dwell", []step{
			{0, 0.86, false, LevelHigh},
			{0, 0.70, false, LevelHigh},
			{1500 * time.Millisecond, 0.82, false, LevelHigh},
			{time.Second, 0.70, false, LevelHigh},
			{1500 * time.Millisecond, 0.70, false, LevelHigh},
			{time.Second, 0.70, false, LevelElevated},
		}},
		{"drops several levels at once", []step{
			{0, 0.97, false, LevelCritical},
			{0, 0.10, false, LevelCritical},
			{2 * time.Second, 0.10, false, LevelNormal},
		}},
		{"oscillation at a threshold does not flap", []step{
			{0, 0.70, false, LevelElevated},
			{100 * time.Millisecond, 0.69, false, LevelElevated},
			{100 * time.Millisecond, 0.70, false, LevelElevated},
			{100 * time.Millisecond, 0.66, false, LevelElevated},
			{100 * time.Millisecond, 0.71, false, LevelElevated},
		}},
		{"gc thrash raises to high", []step{
			{0, 0.30, true, LevelHigh},
			{time.Hour, 0.30, true, LevelHigh},
			{0, 0.30, false, LevelHigh},
			{2 * time.Second, 0.30, false, LevelNormal},
		}},
		{"gc thrash does not lower critical", []step{
			{0, 0.96, true, LevelCritical},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLevels(Thresholds{0.70, 0.85, 0.95}, 0.05, 2*time.Second)
			now := time.Unix(1000, 0)
			for i, st := range tt.steps {
				now = now.Add(st.after)
				if got := s.next(st.pressure, st.thrash, now); got != st.want {
					t.Fatalf("step %d (pressure %.2f, thrash %v): level %v, want %v", i, st.pressure, st.thrash, got, st.want)
				}
			}
		})
	}
}

func TestLevelText(t *testing.T) {
	for l := LevelNormal; l <= LevelCritical; l++ {
		b, _ := l.MarshalText()
		var back Level
		if err := back.UnmarshalText(b); err != nil || back != l {
			t.Errorf("%v: round trip gave %v, %v", l, back, err)
		}
	}
	if s := Level(7).String(); s != "Level(7)" {
		t.Errorf("Level(7).String() = %q", s)
	}
	var l Level
	if err := l.UnmarshalText([]byte("panic")); err == nil {
		t.Error("unknown level name accepted")
	}
}

// TestLevelNumbers: package level's levels are the guard's, number for
// number, as the state record and the status page take them.
func TestLevelNumbers(t *testing.T) {
	for _, tt := range []struct {
		ours   Level
		theirs level.Level
	}{{LevelNormal, level.Normal}, {LevelElevated, level.Elevated}, {LevelHigh, level.High}, {LevelCritical, level.Critical}} {
		if Level(tt.theirs) != tt.ours || tt.ours.String() != tt.theirs.String() {
			t.Errorf("%v is level.%v", tt.ours, tt.theirs)
		}
	}
}

func TestLevelsFromConfigLimit(t *testing.T) {
	// A limit below what the container uses puts the guard at Critical at once.
	probe := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	usage := probe.Snapshot().Usage
	probe.Stop()

	// Half of the container's usage: pressure near 2, however the other
	// processes in the container move meanwhile.
	g := startGuard(t, Config{Limit: usage / 2, MemoryLimitRatio: -1})
	if l := g.Level(); l != LevelCritical {
		t.Errorf("level %v at pressure %.2f, want critical", l, g.Snapshot().Pressure())
	}
}
