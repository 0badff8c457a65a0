package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// testReport is a small comparison: bare killed in the spike, oomguard
// shedding through it.
func testReport() *report {
	sched := schedule{
		{Name: phaseWarm, Rate: 10, Duration: 2 * time.Second},
		{Name: phaseSpike, Rate: 30, Duration: 2 * time.Second},
		{Name: phaseRecovery, Rate: 10, Duration: 3 * time.Second},
	}
	cal := calibration{Mode: modeBare, Rate: 10, P99: 310 * time.Millisecond, UnloadedP99: 305 * time.Millisecond}
	var bareHits, guardHits []hit
	for i := range 70 {
		at := time.Duration(i) * 100 * time.Millisecond
		bare := hit{At: at, Latency: 300 * time.Millisecond, Code: 200}
		if at >= 3*time.Second {
			bare = hit{At: at, Err: true}
		}
		bareHits = append(bareHits, bare)
		guard := hit{At: at, Latency: 320 * time.Millisecond, Code: 200}
		if at >= 2*time.Second && at < 4500*time.Millisecond && i%3 != 0 {
			guard = hit{At: at, Latency: time.Millisecond, Code: 503}
		}
		guardHits = append(guardHits, guard)
	}
	samples := []sample{
		{At: 0, Usage: 50 << 20, Level: 0},
		{At: 2500 * time.Millisecond, Usage: 240 << 20, Level: 3, Profiles: 2},
		{At: 5 * time.Second, Usage: 120 << 20, Level: 1, Profiles: 3},
	}
	rep := &report{Enforced: true, Limit: 256 << 20, WorkBytes: 1 << 20, WorkHold: 300 * time.Millisecond, Calibration: cal}
	for _, m := range []struct {
		mode string
		hits []hit
		died time.Duration
	}{{modeBare, bareHits, 3 * time.Second}, {modeOomguard, guardHits, -1}} {
		r := modeRun{Schedule: sched, Hits: m.hits, Samples: samples, DiedAt: m.died}
		r.Result = summarize(m.mode, sched, cal, m.hits, samples, rep.Limit)
		r.Result.OOMKilled = m.died >= 0
		rep.Runs = append(rep.Runs, r)
	}
	return rep
}

func TestJSONFields(t *testing.T) {
	var buf bytes.Buffer
	if err := testReport().writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatalf("latest.json is not an array of objects: %v\n%s", err, buf.Bytes())
	}
	want := []string{"calibration_p99_ms", "exit_code", "goodput_ratio", "limit_bytes", "mode", "oom_killed",
		"p50_ms", "p99_ms", "peak_usage_bytes", "profiles", "recovery_seconds", "shed"}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(rows))
	}
	for _, row := range rows {
		var got []string
		for k := range row {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("fields %v, want exactly %v", got, want)
		}
	}
	if rows[0]["mode"] != "bare" || rows[0]["oom_killed"] != true {
		t.Errorf("first row = %v, want bare, OOM-killed", rows[0])
	}
}

func TestSummarize(t *testing.T) {
	rep := testReport()
	bare, guard := rep.Runs[0].Result, rep.Runs[1].Result
	// Bare: the spike's first second (10 of 30 rps) succeeded, then errors.
	if bare.GoodputRatio != 0.5 {
		t.Errorf("bare goodput = %v, want 0.5 (10 successes in a 2s spike at base 10 rps)", bare.GoodputRatio)
	}
	if bare.RecoverySeconds != -1 {
		t.Errorf("bare recovery = %v, want -1: it failed to the end", bare.RecoverySeconds)
	}
	// oomguard: every third request of the spike admitted, shedding until 4.5s.
	if guard.GoodputRatio != 0.35 {
		t.Errorf("oomguard goodput = %v, want 0.35", guard.GoodputRatio)
	}
	if guard.P50Ms != 320 || guard.P99Ms != 320 {
		t.Errorf("oomguard p50, p99 = %v, %v, want 320, 320", guard.P50Ms, guard.P99Ms)
	}
	if guard.RecoverySeconds != 0.4 {
		t.Errorf("oomguard recovery = %v, want 0.4 (last shed at 4.4s, spike ended at 4s)", guard.RecoverySeconds)
	}
	if guard.Shed == 0 || bare.Shed != 0 {
		t.Errorf("shed: oomguard %d, bare %d; want some and none", guard.Shed, bare.Shed)
	}
	if guard.PeakUsageBytes != 240<<20 || guard.Profiles != 3 || guard.CalibrationP99Ms != 310 || guard.LimitBytes != 256<<20 {
		t.Errorf("oomguard = %+v", guard)
	}
}

func TestMarkdown(t *testing.T) {
	var buf bytes.Buffer
	if err := testReport().writeMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"| mode | OOM-killed | exit | goodput | p50 ms | p99 ms | calibration p99 ms | shed | peak usage | limit | profiles | recovery s |",
		"| bare | **yes** |",
		"| oomguard | no | 0 | 0.350 | 320 | 320 | 310 |",
		"not recovered",
		"enforced by the kernel",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	rep := testReport()
	rep.Enforced = false
	buf.Reset()
	rep.writeMarkdown(&buf)
	if !strings.Contains(buf.String(), "no kernel enforcement") {
		t.Errorf("Markdown without enforcement does not say so:\n%s", buf.String())
	}
}

func TestSVGWellFormed(t *testing.T) {
	var buf bytes.Buffer
	if err := testReport().writeSVG(&buf); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		// encoding/xml accepts an attribute given twice; XML does not, and
		// neither do SVG renderers.
		if el, ok := tok.(xml.StartElement); ok {
			seen := map[string]bool{}
			for _, a := range el.Attr {
				if seen[a.Name.Local] {
					t.Fatalf("<%s> has attribute %s twice", el.Name.Local, a.Name.Local)
				}
				seen[a.Name.Local] = true
			}
		}
	}
	for _, want := range []string{"bare (OOM-killed)", "oomguard", "limit 256 MiB", "critical", "seconds since the load started"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestSchedulePace(t *testing.T) {
	s := schedule{{Name: "a", Rate: 10, Duration: time.Second}, {Name: "b", Rate: 100, Duration: time.Second}}
	var hits uint64
	var elapsed time.Duration
	for {
		wait, stop := s.Pace(elapsed, hits)
		if stop {
			break
		}
		if wait == 0 {
			hits++
			continue
		}
		elapsed += wait
	}
	if hits < 109 || hits > 111 {
		t.Errorf("sent %d hits over 1s at 10 rps and 1s at 100 rps, want 110", hits)
	}
	if got := s.Rate(1500 * time.Millisecond); got != 100 {
		t.Errorf("Rate(1.5s) = %v, want 100", got)
	}
}
