package cgroup

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Real PSI files: /proc/pressure/memory, cpu and io, and a v2 cgroup's
// memory.pressure.
const (
	psiMemory    = "some avg10=0.00 avg60=0.00 avg300=0.00 total=5827\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1618\n"
	psiCPU       = "some avg10=3.65 avg60=10.94 avg300=19.85 total=146808533\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	psiIO        = "some avg10=1.04 avg60=0.82 avg300=0.77 total=8997687\nfull avg10=0.81 avg60=0.65 avg300=0.57 total=7100651\n"
	psiCPUBefore = "some avg10=0.12 avg60=0.05 avg300=0.01 total=123456789\n" // system-wide cpu before 5.13
	psiCgroup    = "some avg10=42.17 avg60=12.50 avg300=3.02 total=987654321\nfull avg10=40.00 avg60=11.90 avg300=2.88 total=912345678\n"
)

func TestParsePressure(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Pressure
	}{
		{psiMemory, Pressure{Some: Stall{Total: 5827 * time.Microsecond}, Full: Stall{Total: 1618 * time.Microsecond}}},
		{psiCPU, Pressure{Some: Stall{Avg10: 3.65, Avg60: 10.94, Avg300: 19.85, Total: 146808533 * time.Microsecond}}},
		{psiIO, Pressure{
			Some: Stall{Avg10: 1.04, Avg60: 0.82, Avg300: 0.77, Total: 8997687 * time.Microsecond},
			Full: Stall{Avg10: 0.81, Avg60: 0.65, Avg300: 0.57, Total: 7100651 * time.Microsecond}}},
		{psiCPUBefore, Pressure{Some: Stall{Avg10: 0.12, Avg60: 0.05, Avg300: 0.01, Total: 123456789 * time.Microsecond}}},
		{psiCgroup, Pressure{
			Some: Stall{Avg10: 42.17, Avg60: 12.5, Avg300: 3.02, Total: 987654321 * time.Microsecond},
			Full: Stall{Avg10: 40, Avg60: 11.9, Avg300: 2.88, Total: 912345678 * time.Microsecond}}},
		// Fields in another order, an unknown field, no final newline.
		{"some total=1 avg300=100.00 new=7 avg60=0.5 avg10=12", Pressure{Some: Stall{Avg10: 12, Avg60: 0.5, Avg300: 100, Total: time.Microsecond}}},
		{"full avg10=1.00 avg60=1.00 avg300=1.00 total=2\nsome avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
			Pressure{Some: Stall{Total: 3 * time.Microsecond}, Full: Stall{Avg10: 1, Avg60: 1, Avg300: 1, Total: 2 * time.Microsecond}}},
	} {
		got, err := ParsePressure([]byte(tt.in))
		if err != nil {
			t.Errorf("ParsePressure(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePressure(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParsePressureMalformed(t *testing.T) {
	for _, in := range []string{
		"",
		"\n",
		"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", // no some line
		"some\n",
		"some avg10=0.00 avg60=0.00 avg300=0.00\n", // no total
		"some avg10=0.00 avg60=0.00 total=0\n",     // no avg300
		"some avg10=0.00  avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0 \n",
		"some avg10=.5 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=5. avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=1.2.3 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=-1.00 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=1e2 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=NaN avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=1234567890.1234567 avg60=0.00 avg300=0.00 total=0\n", // 17 digits
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=-5\n",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=9223372036854776\n", // overflows in nanoseconds
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nhalf avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10 avg60=0.00 avg300=0.00 total=0\n",
		"some =1 avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
	} {
		_, err := ParsePressure([]byte(in))
		if err == nil {
			t.Errorf("ParsePressure(%q): no error", in)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "cgroup: pressure") || strings.Contains(msg, "\n") {
			t.Errorf("ParsePressure(%q): error %q, want one line", in, msg)
		}
	}
}

func TestParsePressureLargestTotal(t *testing.T) {
	us := int64(9223372036854775807 / 1000)
	p, err := ParsePressure([]byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=" + strconv.FormatInt(us, 10)))
	if err != nil || p.Some.Total != time.Duration(us)*time.Microsecond {
		t.Fatalf("ParsePressure at the largest total: %+v, %v", p, err)
	}
}

func TestParseDecimalMatchesParseFloat(t *testing.T) {
	for _, s := range []string{"0", "0.00", "12.34", "100.00", "0.01", "99.99", "3.65", "19.85", "123456789012345", "1.00000000000001", "0.1", "0.7"} {
		got, ok := parseDecimal([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if !ok || err != nil || got != want {
			t.Errorf("parseDecimal(%q) = %v, %v; ParseFloat = %v, %v", s, got, ok, want, err)
		}
	}
}

func TestParsePressureAllocatesNothing(t *testing.T) {
	for _, in := range []string{psiMemory, psiCPU, psiIO, psiCPUBefore, psiCgroup} {
		b := []byte(in)
		if n := testing.AllocsPerRun(100, func() { ParsePressure(b) }); n != 0 {
			t.Errorf("ParsePressure(%q) allocates %v times per call, want 0", in, n)
		}
	}
}

// formatPressure writes p as the kernel writes a PSI file, but with each
// average in its shortest exact form rather than two decimals.
func formatPressure(p Pressure) string {
	line := func(kind string, s Stall) string {
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
		return kind + " avg10=" + f(s.Avg10) + " avg60=" + f(s.Avg60) + " avg300=" + f(s.Avg300) +
			" total=" + strconv.FormatInt(int64(s.Total/time.Microsecond), 10) + "\n"
	}
	return line("some", p.Some) + line("full", p.Full)
}

// FuzzParsePressure: a PSI file of any content parses without a panic into
// non-negative figures, what it parses formats and parses back to the same,
// and a decimal parses as strconv.ParseFloat parses it.
func FuzzParsePressure(f *testing.F) {
	for _, s := range []string{psiMemory, psiCPU, psiIO, psiCPUBefore, psiCgroup,
		"some total=1 avg300=100.00 new=7 avg60=0.5 avg10=12",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=9223372036854775\n",
		"some avg10=999999999999999 avg60=0.000000000000001 avg300=0.00 total=0\n",
		"12.34", "0.01", ".5", "1e5",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, ok := parseDecimal(b); ok {
			if w, err := strconv.ParseFloat(string(b), 64); err != nil || v != w {
				t.Fatalf("parseDecimal(%q) = %v; ParseFloat = %v, %v", b, v, w, err)
			}
		}
		p, err := ParsePressure(b)
		if err != nil {
			if p != (Pressure{}) || strings.Contains(err.Error(), "\n") || len(err.Error()) > 1024 {
				t.Fatalf("ParsePressure(%q) = %+v, %q", b, p, err)
			}
			return
		}
		for _, s := range []Stall{p.Some, p.Full} {
			for _, v := range []float64{s.Avg10, s.Avg60, s.Avg300} {
				if v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
					t.Fatalf("ParsePressure(%q) = %+v: average %v", b, p, v)
				}
			}
			if s.Total < 0 || s.Total%time.Microsecond != 0 {
				t.Fatalf("ParsePressure(%q) = %+v: total %v", b, p, s.Total)
			}
		}
		out := formatPressure(p)
		if p2, err := ParsePressure([]byte(out)); err != nil || p2 != p {
			t.Fatalf("ParsePressure(%q) = %+v, %v; want %+v", out, p2, err, p)
		}
	})
}
