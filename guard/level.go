package guard

import (
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
)

// Level is the pressure of the working set on the limit, from Normal to
// Critical. Levels drive readiness, heap profiles, logs and the Critical
// level's actions; admission follows the memory the work in flight holds
// instead (see Guard.Enter).
type Level int32

// The levels, in order of pressure.
const (
	LevelNormal   Level = iota // below Thresholds.Elevated
	LevelElevated              // from Thresholds.Elevated: heap profiles start; Sheddable work admitted from here can be cancelled
	LevelHigh                  // from Thresholds.High, or GC thrash
	LevelCritical              // from Thresholds.Critical: not ready, Sheddable work refused and in-flight Sheddable work cancelled
)

// String names the level: "normal", "elevated", "high" or "critical". The
// names are package level's, whose levels are these numbers, so that the
// packages below guard that record and draw levels name them alike.
func (l Level) String() string { return level.Level(l).String() }

// MarshalText encodes the level as its name, for JSON and logs.
func (l Level) MarshalText() ([]byte, error) { return level.Level(l).MarshalText() }

// UnmarshalText decodes a level name.
func (l *Level) UnmarshalText(b []byte) error { return (*level.Level)(l).UnmarshalText(b) }

// levels moves between levels with hysteresis: a level is entered as soon as
// pressure reaches its threshold, and left only after pressure has stayed
// below threshold − hysteresis for the dwell time, so it does not flap.
type levels struct {
	enter      [4]float64 // entry pressure per level; enter[LevelNormal] = 0
	hysteresis float64
	dwell      time.Duration

	cur        Level
	belowSince time.Time // when pressure first fell below cur's exit point
}

func newLevels(t Thresholds, hysteresis float64, dwell time.Duration) levels {
	return levels{enter: [4]float64{0, t.Elevated, t.High, t.Critical}, hysteresis: hysteresis, dwell: dwell}
}

// at returns the highest level whose threshold − slack pressure reaches.
func (s *levels) at(pressure, slack float64) Level {
	l := LevelNormal
	for i := LevelElevated; i <= LevelCritical; i++ {
		if pressure >= s.enter[i]-slack {
			l = i
		}
	}
	return l
}

// next feeds one reading and returns the new level. GC thrash counts as at
// least High, going up and staying up.
func (s *levels) next(pressure float64, thrash bool, now time.Time) Level {
	floor := LevelNormal
	if thrash {
		floor = LevelHigh
	}
	if up := max(s.at(pressure, 0), floor); up > s.cur {
		s.cur, s.belowSince = up, time.Time{}
		return s.cur
	}
	down := max(s.at(pressure, s.hysteresis), floor)
	if down >= s.cur {
		s.belowSince = time.Time{}
		return s.cur
	}
	if s.belowSince.IsZero() {
		s.belowSince = now
	}
	if now.Sub(s.belowSince) >= s.dwell {
		s.cur, s.belowSince = down, time.Time{}
	}
	return s.cur
}
