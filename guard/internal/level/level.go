// Package level names the guard's pressure levels and orders them, for the
// guard and for the packages below it that record and draw them: one list
// of names, so that a state record written by one and read by another, or
// a level drawn on the status page, always says the same.
package level

import "fmt"

// Level is a pressure level, from Normal to Critical; guard.Level is the
// same number.
type Level int32

// The levels, in order of pressure.
const (
	Normal Level = iota
	Elevated
	High
	Critical
)

var names = [...]string{"normal", "elevated", "high", "critical"}

func (l Level) String() string {
	if l < Normal || l > Critical {
		return fmt.Sprintf("Level(%d)", int32(l))
	}
	return names[l]
}

// MarshalText encodes the level as its name, for JSON and logs.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText decodes a level name.
func (l *Level) UnmarshalText(b []byte) error {
	for i, n := range names {
		if string(b) == n {
			*l = Level(i)
			return nil
		}
	}
	return fmt.Errorf("guard: unknown level %q", b)
}
