package vmtest

import (
	"testing"
	"time"
)

func TestEndLineRoundTrip(t *testing.T) {
	for _, want := range []End{
		{Name: "github.com/oomguard/oomguard/guard", Code: 0, Elapsed: "12.3s", Stall: "0.01s"},
		{Name: "x", Code: -1, Elapsed: "60.0s", Stall: "1.50s", Note: "timeout after 1m0s cgroups left behind: a,b"},
	} {
		d, stall := time.Minute, 1500*time.Millisecond
		if want.Elapsed == "12.3s" {
			d, stall = 12300*time.Millisecond, 10*time.Millisecond
		}
		line := EndLine(want.Name, want.Code, d, stall, want.Note)
		got, ok := ParseEnd(line)
		if !ok || got != want {
			t.Errorf("ParseEnd(%q) = %+v, %v; want %+v", line, got, ok, want)
		}
		if _, ok := ParseStart(line); ok {
			t.Errorf("ParseStart took the end line %q", line)
		}
	}
	if name, ok := ParseStart(StartLine("p")); !ok || name != "p" {
		t.Errorf("ParseStart(StartLine(p)) = %q, %v", name, ok)
	}
	if _, ok := ParseEnd("@vmtest end p notanumber 1s 0.00s"); ok {
		t.Error("ParseEnd took a line without an exit code")
	}
}
