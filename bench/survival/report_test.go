package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// testSchedule is a short spike load: base 10 rps for 2s, 30 rps for 2s,
// 10 rps for 3s.
var testSchedule = schedule{
	{Name: phaseWarm, Rate: 10, Duration: 2 * time.Second},
	{Name: phaseSpike, Rate: 30, Duration: 2 * time.Second},
	{Name: phaseRecovery, Rate: 10, Duration: 3 * time.Second},
}

// testReport is a small matrix of one uniform shape: bare killed at 3s,
// the oracle serving all it was sent, oomguard shedding two thirds of the
// spike. (The hits come at 10 rps throughout.)
func testReport() *report {
	s := shape{Name: shapeUniform, Number: 1, Label: shapeUniform, Bytes: 1 << 20, Hold: 300 * time.Millisecond, Reference: modeOracle}
	cal := calibration{Mode: modeBare, Rate: 10, P99: 310 * time.Millisecond, UnloadedP99: 305 * time.Millisecond}
	sr := &shapeRun{Shape: s, BaseRate: 10, Calibration: cal, Schedule: testSchedule, OracleCap: 200,
		OracleProbes: []capProbe{{Cap: 150, GoodputRatio: 2.5}, {Cap: 250, Killed: true}, {Cap: 200, GoodputRatio: 3},
			{Cap: 200, GoodputRatio: 2.9, Spike: true}, {Cap: 200, GoodputRatio: 2.8, FullLoad: true}},
		Wall: 95 * time.Second}
	var bareHits, oracleHits, guardHits []hit
	for i := range 70 {
		at := time.Duration(i) * 100 * time.Millisecond
		bare := hit{At: at, Latency: 300 * time.Millisecond, Code: 200}
		if at >= 3*time.Second {
			bare = hit{At: at, Err: true}
		}
		bareHits = append(bareHits, bare)
		oracleHits = append(oracleHits, hit{At: at, Latency: 300 * time.Millisecond, Code: 200})
		guard := hit{At: at, Latency: 320 * time.Millisecond, Code: 200}
		if at >= 2*time.Second && at < 4500*time.Millisecond && i%3 != 0 {
			guard = hit{At: at, Latency: time.Millisecond, Code: 503}
		}
		guardHits = append(guardHits, guard)
	}
	samples := []sample{
		{At: 0, Usage: 50 << 20, Level: 0},
		{At: 2500 * time.Millisecond, Usage: 240 << 20, Level: 3, InFlight: 90, InFlightLimit: 100, WorkCost: 1 << 20, Profiles: 2},
		{At: 3000 * time.Millisecond, Usage: 230 << 20, Level: 2, InFlight: 70, InFlightLimit: 80, Profiles: 2},
		{At: 3500 * time.Millisecond, Usage: 220 << 20, Level: 2, InFlight: 60, InFlightLimit: 120, Profiles: 2},
		{At: 5 * time.Second, Usage: 120 << 20, Level: 1, Profiles: 3},
	}
	for _, m := range []struct {
		mode string
		hits []hit
		died time.Duration
	}{{modeBare, bareHits, 3 * time.Second}, {modeOracle, oracleHits, -1}, {modeOomguard, guardHits, -1}} {
		r := modeRun{Schedule: testSchedule, Hits: m.hits, Samples: samples, DiedAt: m.died}
		r.Result = summarize(m.mode, s, testSchedule, sr.BaseRate, cal.P99, m.hits, samples, 256<<20)
		if m.died >= 0 {
			r.Result.OOMKilled, r.Result.ExitCode = true, 137
			r.Result.DiedAtSeconds = ptr(m.died.Seconds())
		}
		if m.mode == modeOracle {
			r.Result.InFlightCap = sr.OracleCap
		}
		sr.Runs = append(sr.Runs, r)
	}
	sr.compare()
	return &report{Enforced: true, Limit: 256 << 20, Wall: 95 * time.Second, CPUs: 2, LoadBefore: 0.5, LoadAfter: -1,
		Calibration: cal, Shapes: []*shapeRun{sr}}
}

func TestSummarize(t *testing.T) {
	sr := testReport().Shapes[0]
	bare, oracle, guard := sr.result(modeBare), sr.result(modeOracle), sr.result(modeOomguard)
	// Bare: the spike's first second (10 of 30 rps) succeeded, then errors.
	if bare.GoodputRatio != 0.5 || bare.Sent != 20 || bare.Served != 10 {
		t.Errorf("bare goodput, sent, served = %v, %d, %d; want 0.5, 20, 10", bare.GoodputRatio, bare.Sent, bare.Served)
	}
	if bare.RecoverySeconds == nil || *bare.RecoverySeconds != -1 {
		t.Errorf("bare recovery = %v, want -1: it failed to the end", bare.RecoverySeconds)
	}
	// oomguard: every third request of the spike admitted, shedding until 4.5s.
	if guard.GoodputRatio != 0.35 {
		t.Errorf("oomguard goodput = %v, want 0.35", guard.GoodputRatio)
	}
	if guard.P50Ms != 320 || guard.P99Ms != 320 {
		t.Errorf("oomguard p50, p99 = %v, %v, want 320, 320", guard.P50Ms, guard.P99Ms)
	}
	if guard.RecoverySeconds == nil || *guard.RecoverySeconds != 0.4 {
		t.Errorf("oomguard recovery = %v, want 0.4 (last shed at 4.4s, spike ended at 4s)", guard.RecoverySeconds)
	}
	if guard.Shed != 17 || guard.ShedShare != round(17.0/70, 4) || bare.Shed != 0 {
		t.Errorf("shed: oomguard %d (share %v), bare %d; want 17 (17/70), 0", guard.Shed, guard.ShedShare, bare.Shed)
	}
	if guard.PeakUsageBytes != 240<<20 || guard.Profiles != 3 || guard.CalibrationP99Ms != 310 || guard.LimitBytes != 256<<20 {
		t.Errorf("oomguard = %+v", guard)
	}
	// Against the oracle, which served all 20 requests of the spike.
	if g := guard.GoodputVsReference; g == nil || *g != 0.35 {
		t.Errorf("oomguard goodput vs oracle = %v, want 0.35", g)
	}
	if g := bare.GoodputVsReference; g == nil || *g != 0.5 {
		t.Errorf("bare goodput vs oracle = %v, want 0.5", g)
	}
	if p := guard.P99VsReference; p == nil || *p != round(320.0/300, 3) {
		t.Errorf("oomguard p99 vs oracle = %v, want %v", p, round(320.0/300, 3))
	}
	if g := oracle.GoodputVsReference; g == nil || *g != 1 {
		t.Errorf("oracle goodput vs itself = %v, want 1", g)
	}
	// The guard's status in the spike [2s, 4s): three samples.
	want := guardSummary{Samples: 3, LevelMax: 3, InFlightMax: 90, InFlightLimitMin: 80, InFlightLimitP50: 100, InFlightLimitMax: 120, WorkCostP50: 1 << 20}
	if guard.Guard == nil || *guard.Guard != want {
		t.Errorf("oomguard guard summary = %+v, want %+v", guard.Guard, want)
	}
	if bare.Guard != nil || bare.ServedShareLarge != nil {
		t.Errorf("bare has a guard summary or size classes: %+v", bare)
	}
}

func TestSummarizeWithoutRecoveryOrReference(t *testing.T) {
	s := shape{Name: shapeCache, Label: "cache", FixedRate: 100, Reference: modeAutomemlimit}
	sched := s.schedule(durations{cacheWarm: time.Second, steady: 2 * time.Second}, 100, 256<<20)
	var hits []hit
	for i := range 300 {
		hits = append(hits, hit{At: time.Duration(i) * 10 * time.Millisecond, Latency: 7 * time.Millisecond, Code: 200})
	}
	sr := &shapeRun{Shape: s, BaseRate: 100, Schedule: sched}
	sr.Runs = []modeRun{{Result: summarize(modeOomguard, s, sched, 100, 0, hits, nil, 256<<20)}}
	sr.compare()
	r := sr.Runs[0].Result
	if r.Sent != 200 || r.GoodputRatio != 1 {
		t.Errorf("steady phase: sent %d, goodput %v; want 200 (2s at 100 rps), 1", r.Sent, r.GoodputRatio)
	}
	if r.RecoverySeconds != nil || r.GoodputVsReference != nil || r.P99VsReference != nil {
		t.Errorf("recovery %v, vs reference %v, %v; want null: no recovery phase, automemlimit did not run",
			r.RecoverySeconds, r.GoodputVsReference, r.P99VsReference)
	}
}

func TestJSONFields(t *testing.T) {
	var buf bytes.Buffer
	if err := testReport().writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Kind   string
		Shapes []struct {
			Shape, Reference_mode string
			Oracle_cap            int
			Wall_seconds          float64
			Oracle_probes         []map[string]any
			Modes                 []map[string]any
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("latest.json: %v\n%s", err, buf.Bytes())
	}
	var top map[string]any
	json.Unmarshal(buf.Bytes(), &top)
	if got := sortedKeys(top); !slices.Equal(got, []string{"calibration", "cpus", "enforced", "kind", "limit_bytes", "load_average_after", "load_average_before", "shapes", "wall_seconds"}) {
		t.Errorf("top-level fields %v", got)
	}
	if rep.Kind != "full" || len(rep.Shapes) != 1 || rep.Shapes[0].Shape != shapeUniform || rep.Shapes[0].Oracle_cap != 200 {
		t.Fatalf("latest.json = %s", buf.Bytes())
	}
	if w := rep.Shapes[0].Wall_seconds; w != 95 {
		t.Errorf("the shape's wall_seconds = %v, want 95", w)
	}
	if ps := rep.Shapes[0].Oracle_probes; len(ps) != 5 || ps[3]["spike"] != true || ps[4]["full_load"] != true || ps[0]["spike"] != nil {
		t.Errorf("oracle_probes = %v, want the spike and the full load marked on the last two only", ps)
	}
	want := []string{"calibration_p99_ms", "classes", "cpu_seconds", "died_at_seconds", "exit_code", "goodput_ratio", "goodput_vs_reference",
		"guard", "in_flight_cap", "large_vs_small", "limit_bytes", "mode", "oom_killed", "p50_ms", "p99_ms", "p99_vs_reference",
		"peak_usage_bytes", "profiles", "recovery_seconds", "sent", "served", "served_share_large", "served_share_small", "shed", "shed_share"}
	modes := rep.Shapes[0].Modes
	if len(modes) != 3 {
		t.Fatalf("got %d modes, want 3", len(modes))
	}
	for _, m := range modes {
		for _, k := range sortedKeys(m) {
			if !slices.Contains(want, k) {
				t.Errorf("unexpected field %q", k)
			}
		}
		for _, k := range []string{"mode", "oom_killed", "exit_code", "goodput_ratio", "goodput_vs_reference", "p50_ms", "p99_ms",
			"served_share_large", "shed", "peak_usage_bytes", "profiles", "died_at_seconds", "guard"} {
			if _, ok := m[k]; !ok {
				t.Errorf("mode %v lacks %q", m["mode"], k)
			}
		}
	}
	if modes[0]["mode"] != "bare" || modes[0]["oom_killed"] != true || modes[0]["died_at_seconds"] != 3.0 {
		t.Errorf("first mode = %v, want bare, OOM-killed at 3s", modes[0])
	}
	if g, ok := modes[2]["guard"].(map[string]any); !ok || g["in_flight_limit_p50"] != 100.0 {
		t.Errorf("oomguard's guard = %v, want in_flight_limit_p50 100", modes[2]["guard"])
	}
}

func sortedKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestMarkdown(t *testing.T) {
	var buf bytes.Buffer
	if err := testReport().writeMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"| shape | bare | oracle | oomguard |",
		"| 1 uniform | ✕ 0.50 | 1.00 | 0.35 |",
		"### 1 uniform",
		"reference: oracle, cap 200 (probes: 150 2.500, 250 killed, 200 3.000, 200 2.900 on the spike, 200 2.800 on the full load). The shape took 1m35s in all.",
		"| mode | OOM-killed | exit | goodput | vs ref | p50 ms | p99 ms | p99 vs ref | large / small | shed | peak | profiles | in flight | recovery s |",
		"| bare | **yes** at 3.0 s | 137 | 0.500 | 0.50 |",
		"| oracle (cap 200) | no | 0 | 1.000 | 1.00 |",
		"| oomguard | no | 0 | 0.350 | 0.35 | 320 | 320 | 1.07 | – | 17 (24.3%) | 240 MiB | 3 | 90 / 100 | 0.4 |",
		"not recovered",
		"enforced by the kernel",
		"wall time 1m35s; 2 CPUs, load average 0.5 before, ? after.",
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

func TestCheck(t *testing.T) {
	rep := testReport()
	if got := rep.check(0.5, 2); len(got) != 1 || !strings.Contains(got[0], "1 uniform, oomguard: goodput 0.350 of oracle's, below 0.50") {
		t.Errorf("check = %q, want oomguard's goodput below 0.5 of the oracle's", got)
	}
	if got := rep.check(0.2, 2); len(got) != 0 {
		t.Errorf("check(0.2) = %q, want none", got)
	}
	if got := rep.checked(); len(got) != 1 || got[0] != "1 uniform" {
		t.Errorf("checked = %q, want [1 uniform]", got)
	}
	g := rep.Shapes[0].result(modeOomguard)
	g.OOMKilled, g.DiedAtSeconds = true, ptr(2.5)
	if got := rep.check(0.2, 2); len(got) != 1 || !strings.Contains(got[0], "OOM-killed at 2.5 s") {
		t.Errorf("check with a kill = %q", got)
	}
	// Under a CPU quota, the p99 is held to the calibration's.
	g.OOMKilled, g.DiedAtSeconds = false, nil
	rep.Shapes[0].Shape.CPUs = 0.2
	g.CalibrationP99Ms, g.P99Ms = 4000, 9000
	if got := rep.check(0.2, 2); len(got) != 1 || !strings.Contains(got[0], "p99 2.25× the calibration's, above 2.00×") {
		t.Errorf("check with a p99 of 2.25× the calibration's under a quota = %q", got)
	}
	if got := rep.check(0.2, 2.5); len(got) != 0 {
		t.Errorf("check(0.2, 2.5) with a p99 of 2.25× the calibration's = %q, want none", got)
	}
	rep.Shapes[0].Shape.CPUs = 0
	if got := rep.check(0.2, 2); len(got) != 0 {
		t.Errorf("check without a quota held the p99 to the calibration's: %q", got)
	}
	// A kill in the leak is expected; with nothing else oomguard did not run.
	rep.Shapes[0].Shape.Name = shapeLeak
	if got := rep.check(0.2, 2); len(got) != 1 || !strings.Contains(got[0], "did not run") {
		t.Errorf("check of a leak = %q, want only that oomguard did not run elsewhere", got)
	}
}

func TestSVGWellFormed(t *testing.T) {
	for _, rep := range []*report{testReport(), {Limit: 256 << 20}} {
		var buf bytes.Buffer
		if err := rep.writeSVG(&buf); err != nil {
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
		if len(rep.Shapes) == 0 {
			continue
		}
		for _, want := range []string{"bare (OOM-killed)", "oracle", "oomguard", "limit 256 MiB", "critical", "seconds since the load started", "spike 3×"} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("SVG lacks %q", want)
			}
		}
	}
}

// TestRounds: a shape run in rounds compares each run with the reference
// of its own round; the summary is the median over the rounds, dead if any
// round died; -check sees every round.
func TestRounds(t *testing.T) {
	s := shape{Name: shapeCache, Number: 7, Label: "cache 0.84, 1500 rps", Reference: modeAutomemlimit, Rounds: 3}
	sr := &shapeRun{Shape: s}
	for i, f := range []struct{ ref, guard, refP99, guardP99 float64 }{
		{1, 0.99, 10, 30}, // a noisy round: the guard's p99 3× the reference's
		{1, 1, 20, 20},
		{0.98, 0.98, 40, 44},
	} {
		sr.Runs = append(sr.Runs,
			modeRun{Result: Result{Mode: modeAutomemlimit, Round: i + 1, GoodputRatio: f.ref, P99Ms: f.refP99, Served: 1}},
			modeRun{Result: Result{Mode: modeOomguard, Round: i + 1, GoodputRatio: f.guard, P99Ms: f.guardP99, Served: 1}})
	}
	sr.compare()
	if got := *sr.roundResult(modeOomguard, 1).P99VsReference; got != 3 {
		t.Errorf("round 1's p99 vs its own reference = %v, want 3", got)
	}
	sum := sr.summary(modeOomguard)
	if *sum.P99VsReference != 1.1 || *sum.GoodputVsReference != 1 || sum.DiedAtSeconds != nil {
		t.Errorf("summary: p99 %v, goodput %v, died %v; want the medians 1.1 and 1, alive", *sum.P99VsReference, *sum.GoodputVsReference, sum.DiedAtSeconds)
	}
	// A round whose reference died says nothing of the ratio.
	ref := sr.roundResult(modeAutomemlimit, 2)
	ref.DiedAtSeconds, ref.GoodputRatio = ptr(0.5), 0.01
	sr.compare()
	if sum := sr.summary(modeOomguard); *sum.GoodputVsReference != 0.995 {
		t.Errorf("summary with round 2's reference dead: goodput %v, want 0.995, the median of rounds 1 and 3", *sum.GoodputVsReference)
	}
	// Over all rounds, the dead reference's round counts with what it
	// served: (1 + 0.01 + 0.98) / 3.
	if mean, died, n := sr.allRounds(modeAutomemlimit); math.Abs(mean-0.6633) > 1e-3 || died != 1 || n != 3 {
		t.Errorf("allRounds(reference) = %.4f, %d died, %d rounds; want 0.6633, 1, 3", mean, died, n)
	}
	ref.DiedAtSeconds, ref.GoodputRatio = nil, 1
	sr.compare()
	g := sr.roundResult(modeOomguard, 3)
	g.OOMKilled, g.DiedAtSeconds, g.ExitCode = true, ptr(1.5), 137
	if sum := sr.summary(modeOomguard); !sum.OOMKilled || deathMark(*sum) == "" {
		t.Errorf("summary with round 3 killed: %+v, want it marked killed", sum)
	}
	rep := &report{Shapes: []*shapeRun{sr}}
	if got := rep.check(0.5, 2); len(got) != 1 || !strings.Contains(got[0], "oomguard (round 3): OOM-killed at 1.5 s") {
		t.Errorf("check = %q, want round 3's kill", got)
	}
	var b strings.Builder
	sr.writeMarkdown(&b)
	if !strings.Contains(b.String(), "oomguard, round 2") || !strings.Contains(b.String(), "Median of 3 rounds") ||
		!strings.Contains(b.String(), "deaths included, mean goodput: automemlimit 0.993 (died in 0 of 3); oomguard 0.990 (died in 1 of 3)") {
		t.Errorf("markdown lacks the rounds:\n%s", b.String())
	}
}

// TestRoundsUnderAQuota: a CPU shape's summary in rounds gives the median
// of the largest class's share against the smallest's and, under a quota,
// of the p99 against the calibration's, over the rounds the mode lived.
func TestRoundsUnderAQuota(t *testing.T) {
	s := shape{Name: shapeQuota, Number: 9, Label: "quota 0.2 CPU, 2x", Reference: modeOracle, Rounds: 3, CPUs: 0.2}
	sr := &shapeRun{Shape: s}
	for i, f := range []struct{ p99, fair float64 }{{5000, 0.6}, {9000, 1.2}, {7000, 0.9}} {
		sr.Runs = append(sr.Runs,
			modeRun{Result: Result{Mode: modeOracle, Round: i + 1, GoodputRatio: 1, P99Ms: 4000, Served: 1, CalibrationP99Ms: 4000}},
			modeRun{Result: Result{Mode: modeOomguard, Round: i + 1, GoodputRatio: 1, P99Ms: f.p99, Served: 1, CalibrationP99Ms: 4000, LargeVsSmall: ptr(f.fair)}})
	}
	sr.compare()
	if sum := sr.summary(modeOomguard); sum.LargeVsSmall == nil || *sum.LargeVsSmall != 0.9 {
		t.Errorf("summary's large vs small %v, want the median 0.9", sum.LargeVsSmall)
	}
	if got := sr.calibrationP99(modeOomguard); got == nil || *got != 1.75 {
		t.Errorf("p99 against the calibration's %v, want the median 7000/4000 = 1.75", got)
	}
	// A round the mode died in has no p99 to judge.
	sr.roundResult(modeOomguard, 3).DiedAtSeconds = ptr(1.0)
	if got := sr.calibrationP99(modeOomguard); got == nil || *got != 1.75 {
		t.Errorf("p99 against the calibration's with round 3 dead: %v, want the median of 1.25 and 2.25, 1.75", got)
	}
	var b strings.Builder
	sr.writeMarkdown(&b)
	if !strings.Contains(b.String(), "large vs small 0.90, p99 against the calibration's 1.75") {
		t.Errorf("markdown lacks the medians:\n%s", b.String())
	}
	var js bytes.Buffer
	if err := (&report{Shapes: []*shapeRun{sr}}).writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Shapes []struct {
			Medians []jsonMedian `json:"medians"`
		} `json:"shapes"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, m := range got.Shapes[0].Medians {
		if m.Mode == modeOomguard && (m.LargeVsSmall == nil || *m.LargeVsSmall != 0.9 || m.P99VsCalibration == nil || *m.P99VsCalibration != 1.75) {
			t.Errorf("latest.json's medians of oomguard: large vs small %v, p99 vs calibration %v; want 0.9, 1.75", m.LargeVsSmall, m.P99VsCalibration)
		}
	}
}

// decodeReport is a decode shape of a 2s deadline at a capacity of 10 rps,
// overloaded at 30 for 2s after 1s at 5: its oracle serves every small
// picture in 100 ms and every medium in 1.5s, and refuses the large; the
// guard serves the small in 100 ms, the medium in 2.5s (past the
// deadline), and leaves the large without an answer until the client
// gives up.
func decodeReport() *report {
	s := shape{Name: shapeDecode, Number: 8, Label: "decode 3x", Pictures: decodeMix, Factor: 3, Deadline: 2 * time.Second,
		Limit: 512 << 20, Reference: modeOracle}
	sched := s.schedule(durations{warm: time.Second, spike: 2 * time.Second}, 10, 512<<20)
	cal := calibration{Mode: modeAutomemlimit, Rate: 10, P99: 900 * time.Millisecond, Clients: 2, Passes: 2,
		ClassMeans: []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 800 * time.Millisecond}}
	sr := &shapeRun{Shape: s, BaseRate: 10, Calibration: cal, Schedule: sched, OracleCap: 4,
		OracleProbes: []capProbe{{Cap: 2, GoodputRatio: 1}, {Cap: 4, GoodputRatio: 1.2}, {Cap: 8, GoodputRatio: 0.5}}}
	all := decodeMix.all()
	var oracle, guard []hit
	// Every tenth picture of the load is large, every other small: 60
	// requests in the overload, [1s, 3s).
	for i := range 65 {
		at := time.Second + time.Duration(i)*time.Second/30
		p := all[0]
		switch {
		case i%10 == 9:
			p = all[9]
		case i%2 == 1:
			p = all[5]
		}
		o, g := hit{At: at, Bytes: p.pixelBytes(), Code: 200}, hit{At: at, Bytes: p.pixelBytes(), Code: 200}
		switch p.Kind {
		case "photo":
			if p.W == 1024 {
				o.Latency, g.Latency = 100*time.Millisecond, 100*time.Millisecond
			} else {
				o.Latency, g.Latency = 1500*time.Millisecond, 2500*time.Millisecond
			}
		case "scan":
			o.Code, o.Latency = 503, time.Millisecond
			g.Code, g.Err, g.Latency = 0, true, 2001*time.Millisecond
		}
		oracle, guard = append(oracle, o), append(guard, g)
	}
	for _, m := range []struct {
		mode string
		hits []hit
	}{{modeOracle, oracle}, {modeOomguard, guard}} {
		r := modeRun{Schedule: sched, Hits: m.hits, DiedAt: -1}
		r.Result = summarize(m.mode, s, sched, 10, cal.P99, m.hits, nil, 512<<20)
		if m.mode == modeOracle {
			r.Result.InFlightCap = 4
		}
		if m.mode == modeOomguard {
			r.Result.CPUThrottledShare = ptr(0.5)
		}
		sr.Runs = append(sr.Runs, r)
	}
	sr.compare()
	return &report{Enforced: true, Limit: 256 << 20, Wall: time.Minute, CPUs: 2, Shapes: []*shapeRun{sr}}
}

// TestSummarizeDeadline: where clients have a deadline, a 200 after it is
// not served, a client that gave up at it is timed out, and the classes
// count alike.
func TestSummarizeDeadline(t *testing.T) {
	sr := decodeReport().Shapes[0]
	oracle, guard := sr.result(modeOracle), sr.result(modeOomguard)
	// 60 sent in the overload: 30 small, 24 medium, 6 large.
	if oracle.Sent != 60 || oracle.Served != 54 || guard.Served != 30 {
		t.Errorf("sent %d, served %d by the oracle and %d by the guard; want 60, 54, 30", oracle.Sent, oracle.Served, guard.Served)
	}
	if *oracle.GoodputPerSecond != 27 || oracle.GoodputRatio != 2.7 || *guard.GoodputPerSecond != 15 || guard.GoodputRatio != 1.5 {
		t.Errorf("goodput: oracle %v/s (%v), guard %v/s (%v); want 27 (2.7), 15 (1.5)",
			*oracle.GoodputPerSecond, oracle.GoodputRatio, *guard.GoodputPerSecond, guard.GoodputRatio)
	}
	if *oracle.TimedOut != 0 || *guard.TimedOut != 6 || oracle.DeadlineMs != 2000 {
		t.Errorf("timed out: oracle %d, guard %d; deadline %v ms; want 0, 6, 2000", *oracle.TimedOut, *guard.TimedOut, oracle.DeadlineMs)
	}
	// The guard's p99 is of the 200s within the deadline: the small.
	if guard.P99Ms != 100 || oracle.P99Ms != 1500 {
		t.Errorf("p99: guard %v, oracle %v; want 100, 1500", guard.P99Ms, oracle.P99Ms)
	}
	want := []classShare{{"small", 30, 30}, {"medium", 24, 0}, {"large", 6, 0}}
	if !slices.Equal(guard.Classes, want) {
		t.Errorf("guard's classes %+v, want %+v", guard.Classes, want)
	}
	if want[1].Served = 24; !slices.Equal(oracle.Classes, want) {
		t.Errorf("oracle's classes %+v, want %+v", oracle.Classes, want)
	}
	if *oracle.LargeVsSmall != 0 || *guard.ServedShareSmall != 1 {
		t.Errorf("large vs small %v, small's share %v; want 0, 1", *oracle.LargeVsSmall, *guard.ServedShareSmall)
	}
	if *guard.GoodputVsReference != round(1.5/2.7, 3) {
		t.Errorf("guard vs oracle %v, want %v", *guard.GoodputVsReference, round(1.5/2.7, 3))
	}
	// Without a deadline, the same hits: the guard's 200s all count.
	s := sr.Shape
	s.Deadline = 0
	r := summarize(modeOomguard, s, sr.Schedule, 10, 0, sr.Runs[1].Hits, nil, 512<<20)
	if r.Served != 54 || r.GoodputPerSecond != nil || r.TimedOut != nil || r.DeadlineMs != 0 {
		t.Errorf("without a deadline: served %d, per second %v, timed out %v, deadline %v; want 54 and none", r.Served, r.GoodputPerSecond, r.TimedOut, r.DeadlineMs)
	}
}

func TestDecodeJSONAndMarkdown(t *testing.T) {
	rep := decodeReport()
	var buf bytes.Buffer
	if err := rep.writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Shapes []map[string]any
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	sh := out.Shapes[0]
	if sh["deadline_ms"] != 2000.0 || sh["load_factor"] != 3.0 || sh["limit_bytes"] != float64(512<<20) || sh["cpu_quota"] != nil {
		t.Errorf("shape fields: %v", sh)
	}
	if c := sh["calibration"].(map[string]any); c["clients"] != 2.0 || c["passes"] != 2.0 || fmt.Sprint(c["class_mean_ms"]) != "[50 200 800]" {
		t.Errorf("calibration: %v", c)
	}
	guard := sh["modes"].([]any)[1].(map[string]any)
	for k, want := range map[string]any{"deadline_ms": 2000.0, "goodput_per_second": 15.0, "timed_out": 6.0, "cpu_throttled_share": 0.5} {
		if guard[k] != want {
			t.Errorf("oomguard's %s = %v, want %v", k, guard[k], want)
		}
	}
	buf.Reset()
	if err := rep.writeMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"| 8 decode 3x | 1.00 | 0.56 |",
		"; clients wait 2s; memory limit 512 MiB; capacity 10.0 rps (automemlimit mode: a closed loop of 2 clients asking for every picture twice, " +
			"each class weighed by its share; mean latency small 50ms, medium 200ms, large 800ms; p99 900 ms); load: base 1s at 5 rps, then overload 2s at 30 rps; " +
			"reference: oracle, cap 4 (probes: 2 1.000, 4 1.200, 8 0.500).",
		"| mode | OOM-killed | exit | goodput | vs ref | served/s in 2s | timed out | p50 ms | p99 ms | p99 vs ref | served: small / medium / large | large vs small | shed | peak | profiles | in flight | CPU s |\n",
		"| oracle (cap 4) | no | 0 | 2.700 | 1.00 | 27.00 | 0 | 100 | 1500 | 1.00 | 1.00 / 1.00 / 0.00 | 0.00 | 6 (9.2%) |",
		"| oomguard | no | 0 | 1.500 | 0.56 | 15.00 | 6 | 100 | 100 | 0.07 | 1.00 / 0.00 / 0.00 | 0.00 | 0 (0.0%) |",
		"Where clients have a deadline (decode, quota), a success is a 200 within it",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	// A CPU quota adds the share of periods throttled.
	rep.Shapes[0].Shape.CPUs = 0.2
	buf.Reset()
	rep.writeMarkdown(&buf)
	if !strings.Contains(buf.String(), "| CPU s | throttled |\n") || !strings.Contains(buf.String(), "| 0.50 |\n") {
		t.Errorf("Markdown with a CPU quota lacks the throttled share:\n%s", buf.String())
	}
	if got := rep.check(0.5, 2); len(got) != 0 {
		t.Errorf("check(0.5) = %q, want none", got)
	}
	if got := rep.check(0.6, 2); len(got) != 1 || !strings.Contains(got[0], "8 decode 3x, oomguard: goodput 0.556 of oracle's") {
		t.Errorf("check(0.6) = %q, want the decode shape's oomguard", got)
	}
}

// TestServiceEnv: -service-env takes NAME=VALUE pairs and refuses anything
// else, naming it; the report says what every service ran with, and says
// nothing where it was not given.
func TestServiceEnv(t *testing.T) {
	var e envList
	for _, bad := range []string{"", "=off", "OOMGUARD_TIME_BOUND", "A B=1"} {
		if err := e.Set(bad); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("Set(%q) = %v, want an error naming it", bad, err)
		}
	}
	if err := e.Set("OOMGUARD_TIME_BOUND=off"); err != nil {
		t.Fatal(err)
	}
	if err := e.Set("GODEBUG=madvdontneed=1"); err != nil {
		t.Fatal(err)
	}
	if got, want := e.String(), "OOMGUARD_TIME_BOUND=off GODEBUG=madvdontneed=1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	rep := testReport()
	var buf bytes.Buffer
	rep.writeMarkdown(&buf)
	if strings.Contains(buf.String(), "-service-env") {
		t.Errorf("the report mentions -service-env, which was not given:\n%s", buf.String())
	}
	rep.ServiceEnv = e
	buf.Reset()
	rep.writeMarkdown(&buf)
	if want := "Every service ran with OOMGUARD_TIME_BOUND=off GODEBUG=madvdontneed=1 in its environment (-service-env)."; !strings.Contains(buf.String(), want) {
		t.Errorf("the report lacks %q:\n%s", want, buf.String())
	}
}

// TestCheckJudgesTheMedianOfRounds: -check holds a shape run in rounds to
// each mode's median, each round against its own reference, so that one
// round of few requests neither fails nor passes the matrix alone; a death
// in any round fails it.
func TestCheckJudgesTheMedianOfRounds(t *testing.T) {
	run := func(guard []float64) *report {
		s := shape{Name: shapeQuota, Number: 9, Label: "quota 0.2 CPU, 2x", Reference: modeOracle, Rounds: len(guard), CPUs: 0.2}
		sr := &shapeRun{Shape: s}
		for i, g := range guard {
			sr.Runs = append(sr.Runs,
				modeRun{Result: Result{Mode: modeOracle, Round: i + 1, GoodputRatio: 1.2, P99Ms: 4000, Served: 1, CalibrationP99Ms: 4000}},
				modeRun{Result: Result{Mode: modeOomguard, Round: i + 1, GoodputRatio: 1.2, P99Ms: 4000, Served: 1, CalibrationP99Ms: 4000}},
				modeRun{Result: Result{Mode: modeOomguardCost, Round: i + 1, GoodputRatio: g * 1.2, P99Ms: 4000, Served: 1, CalibrationP99Ms: 4000}})
		}
		sr.compare()
		return &report{Shapes: []*shapeRun{sr}}
	}
	if got := run([]float64{0.25, 0.8, 1.4}).check(0.5, 2.5); len(got) != 0 {
		t.Errorf("one round at 0.25 of the oracle, a median of 0.8: check = %q, want none", got)
	}
	got := run([]float64{0.25, 0.3, 1.4}).check(0.5, 2.5)
	if len(got) != 1 || !strings.Contains(got[0], "oomguard+cost: the median of 3 rounds, goodput 0.300 of oracle's, below 0.50") {
		t.Errorf("a median of 0.3: check = %q, want the median below 0.5", got)
	}
	if got := run([]float64{0.25}).check(0.5, 2.5); len(got) != 1 || !strings.Contains(got[0], "oomguard+cost: goodput 0.250 of oracle's") {
		t.Errorf("one run at 0.25: check = %q, want it below 0.5", got)
	}
	// A round whose reference died says nothing: the median of the others.
	rep := run([]float64{0.3, 0.9, 0.45})
	rep.Shapes[0].roundResult(modeOracle, 2).DiedAtSeconds = ptr(3.0)
	rep.Shapes[0].compare()
	if got := rep.check(0.5, 2.5); len(got) != 1 || !strings.Contains(got[0], "goodput 0.375 of oracle's") {
		t.Errorf("round 2's oracle dead: check = %q, want the median of 0.3 and 0.45", got)
	}
	// A death in any round fails, whatever the median.
	rep = run([]float64{1, 1, 1})
	g := rep.Shapes[0].roundResult(modeOomguardCost, 2)
	g.OOMKilled, g.DiedAtSeconds = true, ptr(7.5)
	if got := rep.check(0.5, 2.5); len(got) != 1 || !strings.Contains(got[0], "oomguard+cost (round 2): OOM-killed at 7.5 s") {
		t.Errorf("a kill in round 2: check = %q", got)
	}
	// The p99 under a quota is judged by its median too.
	rep = run([]float64{1, 1, 1})
	for i, p := range []float64{12000, 5000, 6000} {
		rep.Shapes[0].roundResult(modeOomguard, i+1).P99Ms = p
	}
	if got := rep.check(0.5, 2.5); len(got) != 0 {
		t.Errorf("p99s of 3, 1.25 and 1.5× the calibration's: check = %q, want none", got)
	}
	rep.Shapes[0].roundResult(modeOomguard, 2).P99Ms = 11000
	if got := rep.check(0.5, 2.5); len(got) != 1 || !strings.Contains(got[0], "oomguard: the median of 3 rounds, p99 2.75× the calibration's, above 2.50×") {
		t.Errorf("a median p99 of 2.75× the calibration's: check = %q", got)
	}
}
