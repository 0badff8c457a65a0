package guard

import (
	"fmt"
	"time"
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

var levelNames = [...]string{"normal", "elevated", "high", "critical"}

func (l Level) String() string {
	if l < LevelNormal || l > LevelCritical {
		return fmt.Sprintf("Level(%d)", int32(l))
	}
	return levelNames[l]
}

// MarshalText encodes the level as its name, for JSON and logs.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText decodes a level name.
func (l *Level) UnmarshalText(b []byte) error {
	for i, n := range levelNames {
		if string(b) == n {
			*l = Level(i)
			return nil
		}
	}
	return fmt.Errorf("guard: unknown level %q", b)
}

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
