package cgroup

import (
	"bytes"
	"fmt"
	"math"
	"time"
)

// Pressure is a pressure stall information (PSI) reading of one resource,
// from /proc/pressure/memory or a v2 cgroup's memory.pressure (kernels from
// 4.20 on, Documentation/accounting/psi.rst). It tells how much time tasks
// lost waiting for memory, which usage alone does not: a group can sit at
// its limit reclaiming cheaply, or stall while well below it.
type Pressure struct {
	// Some is the time at least one task of the group was stalled.
	Some Stall
	// Full is the time all of the group's non-idle tasks were stalled at
	// once. The system-wide CPU file has no full line before 5.13; it is
	// zero then.
	Full Stall
}

// Stall is one line of a PSI file.
type Stall struct {
	// Avg10, Avg60 and Avg300 are the share of wall time stalled, as a
	// percentage from 0 to 100, averaged over the last 10, 60 and 300
	// seconds.
	Avg10, Avg60, Avg300 float64
	// Total is the stall time accumulated since boot, or since the cgroup
	// was created, at microsecond resolution.
	Total time.Duration
}

// ParsePressure parses the content of a PSI file:
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// The some line is required and the full line optional. Within a line a
// key it does not know is skipped, for kernels that add one; each of avg10,
// avg60, avg300 (decimal, at most 15 digits) and total (microseconds) is
// required. Anything else is an error naming the line. It allocates nothing
// unless it fails.
func ParsePressure(b []byte) (Pressure, error) {
	var p Pressure
	var haveSome bool
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) == 0 {
			continue
		}
		kind, rest, _ := bytes.Cut(line, []byte(" "))
		var s *Stall
		switch string(kind) {
		case "some":
			s, haveSome = &p.Some, true
		case "full":
			s = &p.Full
		default:
			return Pressure{}, fmt.Errorf("cgroup: pressure: bad line %.64q, want some or full", line)
		}
		if err := parseStall(rest, s); err != nil {
			return Pressure{}, fmt.Errorf("cgroup: pressure: bad line %.64q: %s", line, err)
		}
	}
	if !haveSome {
		return Pressure{}, fmt.Errorf("cgroup: pressure: no some line")
	}
	return p, nil
}

// parseStall parses "avg10=A avg60=B avg300=C total=T" into s. Its errors
// are constant strings, so that they cost nothing until reported.
func parseStall(b []byte, s *Stall) error {
	const avg10, avg60, avg300, total = 1, 2, 4, 8
	var seen int
	for more := len(b) > 0; more; {
		var field []byte
		field, b, more = bytes.Cut(b, []byte(" "))
		key, val, ok := bytes.Cut(field, []byte("="))
		if !ok || len(key) == 0 {
			return errStall("want key=value fields")
		}
		var avg *float64
		switch string(key) {
		case "avg10":
			avg, seen = &s.Avg10, seen|avg10
		case "avg60":
			avg, seen = &s.Avg60, seen|avg60
		case "avg300":
			avg, seen = &s.Avg300, seen|avg300
		case "total":
			us, ok := parseInt(val)
			if !ok || us > math.MaxInt64/int64(time.Microsecond) {
				return errStall("total is not a count of microseconds")
			}
			s.Total, seen = time.Duration(us)*time.Microsecond, seen|total
			continue
		default:
			continue
		}
		v, ok := parseDecimal(val)
		if !ok {
			return errStall("an average is not a decimal number")
		}
		*avg = v
	}
	if seen != avg10|avg60|avg300|total {
		return errStall("want avg10, avg60, avg300 and total")
	}
	return nil
}

type errStall string

func (e errStall) Error() string { return string(e) }

// parseDecimal parses "digits[.digits]", at most 15 digits in all, without
// allocating. Up to 15 digits the integer of all digits is exact in a
// float64, and so is the power of ten that scales it, so the quotient is
// the correctly rounded value, as strconv.ParseFloat gives.
func parseDecimal(b []byte) (float64, bool) {
	var n int64
	digits, scale := 0, 1.0
	point := false
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n*10 + int64(c-'0')
			digits++
			if point {
				scale *= 10
			}
		case c == '.' && !point && i > 0 && i < len(b)-1:
			point = true
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 {
		return 0, false
	}
	return float64(n) / scale, true
}
