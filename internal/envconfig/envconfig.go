// Package envconfig parses the values of oomguard's environment variables:
// byte counts such as OOMGUARD_LIMIT, in the syntax of GOMEMLIMIT, and
// ratios such as OOMGUARD_RATIO.
//
// The parsers are strict: an operator who writes "512M" or "90%" gets an
// error naming the value and the accepted forms, not a limit a thousand
// times off. The caller names the variable.
package envconfig

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The units of a byte count, as GOMEMLIMIT accepts them: IEC binary
// prefixes only.
var units = [...]struct {
	suffix string
	shift  uint
}{
	{"TiB", 40},
	{"GiB", 30},
	{"MiB", 20},
	{"KiB", 10},
	{"B", 0},
}

// ParseBytes parses a byte count as the Go runtime parses GOMEMLIMIT: a
// decimal integer, optionally followed by B, KiB, MiB, GiB or TiB (powers
// of 1024), with no space or fraction, such as "1073741824", "512MiB" or
// "2GiB". It refuses what the runtime also takes but a limit has no use
// for: a sign, and "off". Its result is at most math.MaxInt64, and a
// larger count is refused too. The range that makes sense for a limit is
// for the caller to check.
func ParseBytes(s string) (int64, error) {
	num, shift := s, uint(0)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	if !isDigits(num) {
		return 0, fmt.Errorf("envconfig: bad byte count %.64q: want a whole number of bytes, optionally followed by B, KiB, MiB, GiB or TiB, as in GOMEMLIMIT (e.g. 512MiB)", s)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("envconfig: byte count %.64q is more than %d bytes", s, int64(math.MaxInt64))
	}
	return int64(n << shift), nil
}

// FormatBytes writes n in the form ParseBytes reads, with the largest unit
// that divides it exactly, such as "512MiB" for 536870912, so that a value
// shown to an operator can be pasted back into the variable. n must not be
// negative; a negative n is written as a plain number that ParseBytes
// refuses.
func FormatBytes(n int64) string {
	if n <= 0 {
		return strconv.FormatInt(n, 10)
	}
	for _, u := range units[:len(units)-1] {
		if n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseRatio parses a fraction in (0, 1] written as a plain decimal, such
// as "0.9", ".9" or "1": digits with at most one decimal point. A sign, an
// exponent, a percent sign, NaN and infinities are refused, as are 0 and
// anything above 1: a ratio of a limit that is 0 or above it protects
// nothing.
func ParseRatio(s string) (float64, error) {
	digits, points := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digits++
		case c == '.':
			points++
		default:
			points = 2 // any other byte: refused below
		}
	}
	if digits == 0 || points > 1 {
		return 0, fmt.Errorf("envconfig: bad ratio %.64q: want a decimal fraction in (0, 1], such as 0.9", s)
	}
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || r <= 0 || r > 1 {
		return 0, fmt.Errorf("envconfig: ratio %.64q is not in (0, 1]", s)
	}
	return r, nil
}

// isDigits reports whether s is one or more ASCII decimal digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
