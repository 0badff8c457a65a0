// Package humanize formats sizes and durations for people, one way for the
// guard's log and its status page alike.
package humanize

import (
	"math"
	"strconv"
	"time"
)

// The binary prefixes, by power of 1024.
var byteUnits = [...]string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// ByteUnit is the largest power of 1024 not above v, at least 1.
func ByteUnit(v float64) float64 {
	u := 1.0
	for i := 1; i < len(byteUnits) && math.Abs(v) >= u*1024; i++ {
		u *= 1024
	}
	return u
}

// BytesIn formats v bytes in unit, a power of 1024, to two decimals at most:
// "256 MiB", "0.5 GiB".
func BytesIn(v, unit float64) string {
	k := int(math.Round(math.Log2(unit) / 10))
	return strconv.FormatFloat(math.Round(v/unit*100)/100, 'f', -1, 64) + " " + byteUnits[k]
}

// Bytes formats bytes for people: "512 B", "12.3 MiB", "1.50 GiB".
func Bytes(n int64) string {
	v := float64(n)
	u := ByteUnit(v)
	k := int(math.Round(math.Log2(u) / 10))
	switch {
	case k == 0:
		return strconv.FormatInt(n, 10) + " B"
	case k >= 3:
		return strconv.FormatFloat(v/u, 'f', 2, 64) + " " + byteUnits[k]
	}
	return strconv.FormatFloat(v/u, 'f', 1, 64) + " " + byteUnits[k]
}

// Duration formats a duration for people: "3.2 s", "42 s", "4 min 12 s",
// "2 h 5 min", "3 d 4 h"; a negative one as "0 ms".
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := d.Seconds()
	switch {
	case d < time.Second:
		return strconv.Itoa(int(d/time.Millisecond)) + " ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(s, 'f', 1, 64) + " s"
	case d < time.Minute:
		return strconv.Itoa(int(s)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min " + strconv.Itoa(int(d%time.Minute/time.Second)) + " s"
	case d < 24*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h " + strconv.Itoa(int(d%time.Hour/time.Minute)) + " min"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " d " + strconv.Itoa(int(d%(24*time.Hour)/time.Hour)) + " h"
}
