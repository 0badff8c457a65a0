package envconfig

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1073741824", 1 << 30},
		{"1073741824B", 1 << 30},
		{"512MiB", 512 << 20},
		{"2GiB", 2 << 30},
		{"1KiB", 1024},
		{"3TiB", 3 << 40},
		{"0MiB", 0},
		{"0512MiB", 512 << 20},
		{"9223372036854775807", math.MaxInt64},
		{"8388607TiB", 8388607 << 40},
	} {
		got, err := ParseBytes(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseBytesRefuses(t *testing.T) {
	for _, in := range []string{
		"", " 512MiB", "512MiB ", "512 MiB", "512M", "512MB", "512mib", "512Mi", "512KB", "1.5GiB", "-1", "+1",
		"-0", "off", "MiB", "B", "iB", "0x10", "1e9", "512PiB", "９", "1_000",
		"9223372036854775808", "8388608TiB", "99999999999999999999999MiB",
	} {
		got, err := ParseBytes(in)
		if err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, strconv.Quote(in)) {
			t.Errorf("ParseBytes(%q): error %q does not name the value", in, msg)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for _, tt := range []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1023, "1023"},
		{1024, "1KiB"},
		{1536, "1536"},
		{512 << 20, "512MiB"},
		{(512 << 20) + 1024, "524289KiB"},
		{1 << 30, "1GiB"},
		{5 << 40, "5TiB"},
		{1 << 50, "1024TiB"},
		{math.MaxInt64, "9223372036854775807"},
		{-1, "-1"},
	} {
		if got := FormatBytes(tt.in); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseRatio(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want float64
	}{
		{"0.9", 0.9}, {".9", 0.9}, {"1", 1}, {"1.0", 1}, {"1.", 1}, {"0.5", 0.5}, {"00.25", 0.25}, {"0.000001", 1e-6},
	} {
		got, err := ParseRatio(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRatio(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{
		"", "0", "0.0", ".", "1.01", "2", "-0.5", "+0.5", "90%", "0,9", "9e-1", "NaN", "Inf", "0x1p-1", "0.9 ", " 0.9", "0..9", "0.9.",
	} {
		got, err := ParseRatio(in)
		if err == nil {
			t.Errorf("ParseRatio(%q) = %v, want an error", in, got)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, strconv.Quote(in)) {
			t.Errorf("ParseRatio(%q): error %q does not name the value", in, msg)
		}
	}
}

// FuzzParseBytes: any value parses without a panic to a count that fits
// an int64 and that the value's digits and unit make; every count formats
// and parses back; an error names the value on one line.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"0", "1073741824", "512MiB", "2GiB", "1KiB", "3TiB", "1024B", "512M", "off", "-1", "+1",
		"9223372036854775807", "9223372036854775808", "8388608TiB", " 1 ", "1.5GiB"} {
		f.Add(s, int64(len(s))<<20)
	}
	f.Fuzz(func(t *testing.T, s string, n int64) {
		v, err := ParseBytes(s)
		if err != nil {
			if v != 0 || strings.Contains(err.Error(), "\n") || len(err.Error()) > 1024 {
				t.Fatalf("ParseBytes(%q) = %d, %q", s, v, err)
			}
		} else {
			if v < 0 {
				t.Fatalf("ParseBytes(%q) = %d", s, v)
			}
			// The reference: strip the unit, parse the digits, scale.
			num, scale := s, uint64(1)
			for _, u := range []struct {
				s string
				m uint64
			}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
				if p, ok := strings.CutSuffix(s, u.s); ok {
					num, scale = p, u.m
					break
				}
			}
			d, perr := strconv.ParseUint(num, 10, 64)
			if perr != nil || strings.ContainsAny(num, "+-_") || d*scale/scale != d || int64(d*scale) != v {
				t.Fatalf("ParseBytes(%q) = %d; the digits %q say %d × %d (%v)", s, v, num, d, scale, perr)
			}
		}
		if n >= 0 {
			out := FormatBytes(n)
			if back, err := ParseBytes(out); err != nil || back != n {
				t.Fatalf("ParseBytes(FormatBytes(%d) = %q) = %d, %v", n, out, back, err)
			}
		}
	})
}

// FuzzParseRatio: any value parses without a panic to a ratio in (0, 1],
// as strconv.ParseFloat reads the same digits; every ratio in (0, 1]
// formats and parses back.
func FuzzParseRatio(f *testing.F) {
	for _, s := range []string{"0.9", ".9", "1", "1.0", "0", "1.01", "-0.5", "90%", "9e-1", "NaN", "0x1p-1", "0.9 "} {
		f.Add(s, 0.5)
	}
	f.Add("0.000001", 5e-324)
	f.Fuzz(func(t *testing.T, s string, r float64) {
		v, err := ParseRatio(s)
		if err != nil {
			if v != 0 || strings.Contains(err.Error(), "\n") || len(err.Error()) > 1024 {
				t.Fatalf("ParseRatio(%q) = %v, %q", s, v, err)
			}
		} else {
			w, perr := strconv.ParseFloat(s, 64)
			if perr != nil || w != v || !(v > 0 && v <= 1) || strings.Trim(s, "0123456789.") != "" {
				t.Fatalf("ParseRatio(%q) = %v; ParseFloat says %v, %v", s, v, w, perr)
			}
		}
		if r > 0 && r <= 1 {
			out := strconv.FormatFloat(r, 'f', -1, 64)
			if back, err := ParseRatio(out); err != nil || back != r {
				t.Fatalf("ParseRatio(%q) = %v, %v; want %v", out, back, err, r)
			}
		}
	})
}
