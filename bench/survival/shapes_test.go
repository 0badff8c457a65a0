package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var testMatrixOptions = matrixOptions{
	shapes: shapeNames, workBytes: 1 << 20, workHold: 300 * time.Millisecond, conns: 400,
	leakRate: 8 << 20, cacheFracs: []float64{0.78, 0.84}, cacheRates: []float64{1500, 3000},
	decodeLoads: []float64{2, 3}, decodeLimit: 512 << 20, decodeDeadline: 2 * time.Second, quotaCPUs: 0.2, quotaLoad: 2, quotaStretch: 3,
}

func TestMatrix(t *testing.T) {
	shapes := matrix(testMatrixOptions)
	var labels []string
	for _, s := range shapes {
		labels = append(labels, s.Label)
	}
	want := []string{"uniform", "heavytail", "burst", "uploads", "offheap", "leak",
		"cache 0.78, 1500 rps", "cache 0.78, 3000 rps", "cache 0.84, 1500 rps", "cache 0.84, 3000 rps",
		"decode 2x", "decode 3x", "quota 0.2 CPU, 2x"}
	if !slices.Equal(labels, want) {
		t.Fatalf("labels %q, want %q", labels, want)
	}
	for _, s := range shapes {
		modes := s.modesFor(modeNames)
		hasOracle := slices.Contains(modes, modeOracle)
		if hasOracle != (s.Reference == modeOracle) {
			t.Errorf("%s: modes %v; oracle only where it is the reference (%q)", s.Label, modes, s.Reference)
		}
		if s.Number < 1 || s.Number > 9 || strings.ContainsAny(s.key(), " ,/") {
			t.Errorf("%s: number %d, key %q", s.Label, s.Number, s.key())
		}
	}
	if got := shapes[6].Args; !slices.Equal(got, []string{"-cache-frac", "0.78"}) || shapes[6].Reference != modeAutomemlimit {
		t.Errorf("cache args %v, reference %q", got, shapes[6].Reference)
	}
	if got := shapes[5].Args; !slices.Equal(got, []string{"-leak-rate", "8388608"}) || shapes[5].Reference != "" {
		t.Errorf("leak args %v, reference %q", got, shapes[5].Reference)
	}
	if s := shapes[6]; s.Bytes != cacheBytes || s.Hold != cacheHold {
		t.Errorf("cache requests of %d bytes for %v, want the defaults", s.Bytes, s.Hold)
	}
	for _, s := range shapes[:10] {
		if s.Factor != 0 || s.Deadline != 0 || s.CPUs != 0 || s.Limit != 0 || s.Pictures != nil || s.timeout() != requestTimeout || !s.scaled() && s.calibrated() {
			t.Errorf("%s: a memory shape with a CPU shape's fields: %+v", s.Label, s)
		}
	}
}

// TestCPUShapes: the decode shape runs once a load, the quota shape under
// its quota with a deadline that buys as much CPU time, both as a
// thumbnail server in their own limit, their oracle the reference.
func TestCPUShapes(t *testing.T) {
	shapes := matrix(testMatrixOptions)
	d2, d3, q := shapes[10], shapes[11], shapes[12]
	for _, s := range []shape{d2, d3, q} {
		if s.Number != map[string]int{shapeDecode: 8, shapeQuota: 9}[s.Name] || s.Reference != modeOracle || s.Limit != 512<<20 ||
			len(s.Pictures) == 0 || s.scaled() || !s.calibrated() || s.Only != nil {
			t.Errorf("%s: %+v", s.Label, s)
		}
		if want := []string{"-work", "decode", "-pictures", decodeMix.arg()}; !slices.Equal(s.Args, want) {
			t.Errorf("%s: args %q, want %q", s.Label, s.Args, want)
		}
		if len(s.classes()) != 3 || s.meanBytes() != decodeMix.mean() {
			t.Errorf("%s: classes %v, mean %v", s.Label, s.classes(), s.meanBytes())
		}
	}
	if d2.Factor != 2 || d3.Factor != 3 || d2.Deadline != 2*time.Second || d2.timeout() != 2*time.Second || d2.CPUs != 0 || d2.Stretch != 0 {
		t.Errorf("decode: %+v", d2)
	}
	if q.Factor != 2 || q.CPUs != 0.2 || q.Deadline != 10*time.Second || q.Stretch != 3 || q.cpuClients() != 1 {
		t.Errorf("quota: factor %v, CPUs %v, deadline %v, stretch %v, clients %d; want 2, 0.2, 10s, 3, 1",
			q.Factor, q.CPUs, q.Deadline, q.Stretch, q.cpuClients())
	}
	if got := q.key(); got != "quota-0.2-CPU-2x" {
		t.Errorf("quota key %q", got)
	}
	o := testMatrixOptions
	o.shapes, o.cpuModes = []string{shapeDecode}, []string{modeOracle, modeOomguard}
	quick := matrix(o)[0]
	if got := quick.modesFor(modeNames); !slices.Equal(got, []string{modeOracle, modeOomguard}) {
		t.Errorf("with cpuModes, the modes are %v, want oracle and oomguard", got)
	}
	if !strings.Contains(d2.describe(), "3% large (2 scans 6000×4500)") || !strings.Contains(q.describe(), "CPU quota 0.2 CPU; memory limit 512 MiB") ||
		!strings.Contains(q.describe(), "clients wait 10s") {
		t.Errorf("describe: %q\n%q", d2.describe(), q.describe())
	}
}

// TestCacheVariant: the cache shape's requests and its rebuilt block come
// from the options, and show in the label and the service's flags.
func TestCacheVariant(t *testing.T) {
	o := testMatrixOptions
	o.shapes, o.cacheFracs, o.cacheRates = []string{shapeCache}, []float64{0.7}, []float64{3000}
	o.cacheBytes, o.cacheHold, o.cacheRebuild = 16<<10, 50*time.Millisecond, 32<<20
	shapes := matrix(o)
	if len(shapes) != 1 {
		t.Fatalf("%d shapes, want 1", len(shapes))
	}
	s := shapes[0]
	if want := "cache 0.70, 3000 rps, 16 KiB for 50ms, rebuilds 32 MiB"; s.Label != want {
		t.Errorf("label %q, want %q", s.Label, want)
	}
	if want := []string{"-cache-frac", "0.7", "-rebuild-bytes", "33554432"}; !slices.Equal(s.Args, want) {
		t.Errorf("args %q, want %q", s.Args, want)
	}
	if s.Bytes != 16<<10 || s.Hold != 50*time.Millisecond {
		t.Errorf("requests of %d bytes for %v, want 16 KiB for 50ms", s.Bytes, s.Hold)
	}
}

func TestShapeSchedules(t *testing.T) {
	d := durations{warm: 3 * time.Second, spike: 12 * time.Second, recovery: 5 * time.Second, idle: 2 * time.Second,
		cacheWarm: 2 * time.Second, steady: 8 * time.Second, oracleProbe: 6 * time.Second}
	shapes := matrix(testMatrixOptions)
	for _, tc := range []struct {
		s        shape
		measured string
		total    time.Duration
	}{
		{shapes[0], phaseSpike, 20 * time.Second},
		{shapes[2], phaseBurst, 14 * time.Second},
		{shapes[5], phaseSteady, 40 * time.Second}, // 1.25 × 256 MiB / 8 MiB/s
		{shapes[6], phaseSteady, 10 * time.Second},
	} {
		sched := tc.s.schedule(d, 100, 256<<20)
		from, to, ok := tc.s.measuredWindow(sched)
		if tc.s.measured() != tc.measured || !ok || to <= from || sched.Duration() != tc.total {
			t.Errorf("%s: measured %q [%v, %v) in %v, want %q in %v", tc.s.Label, tc.s.measured(), from, to, sched.Duration(), tc.measured, tc.total)
		}
	}
	burst := shapes[2].schedule(d, 100, 256<<20)
	if burst[0].Rate != 0 || burst[0].Conns != 0 || burst[1].Conns != 400 {
		t.Errorf("burst schedule %v: want idle, then 400 connections", burst)
	}
	if p := shapes[0].probeSchedule(d, 100); len(p) != 1 || p[0].Rate != 300 || p[0].Duration != 6*time.Second {
		t.Errorf("uniform probe %v, want the spike rate for 6s", p)
	}
	if p := shapes[2].probeSchedule(d, 100); len(p) != 1 || p[0].Conns != 400 {
		t.Errorf("burst probe %v, want the burst", p)
	}
	// Scaling: heavytail's mean is about a third of a MiB at the same hold.
	if r := shapes[0].byteSeconds() / shapes[1].byteSeconds(); r < 2.5 || r > 3.5 {
		t.Errorf("uniform / heavytail byte-seconds = %.2f, want about 3", r)
	}
	// A CPU-bound shape: warm-up at half the capacity, then the overload,
	// measured; its probes and lives at the overload.
	dec := shapes[11] // decode 3x
	if got, want := dec.schedule(d, 10, 512<<20).String(), "base 3s at 5 rps, then overload 12s at 30 rps"; got != want {
		t.Errorf("decode 3x: %q, want %q", got, want)
	}
	if from, to, ok := dec.measuredWindow(dec.schedule(d, 10, 512<<20)); dec.measured() != phaseOverload || !ok || from != 3*time.Second || to != 15*time.Second {
		t.Errorf("decode 3x measures %s [%v, %v)", dec.measured(), from, to)
	}
	if p := dec.probeSchedule(d, 10); len(p) != 1 || p[0].Rate != 30 || p[0].Duration != 6*time.Second {
		t.Errorf("decode 3x probe %v, want the overload for 6s", p)
	}
	if p := dec.spikeSchedule(d, 10); len(p) != 1 || p[0].Rate != 30 || p[0].Duration != 12*time.Second {
		t.Errorf("decode 3x life on the overload alone %v, want 12s", p)
	}
	// The quota's phases are stretched three times.
	q := shapes[12]
	if got, want := q.schedule(d, 2, 512<<20).String(), "base 9s at 1 rps, then overload 36s at 4 rps"; got != want {
		t.Errorf("quota: %q, want %q", got, want)
	}
	if p, s := q.probeSchedule(d, 2), q.spikeSchedule(d, 2); p[0].Duration != 18*time.Second || s[0].Duration != 36*time.Second {
		t.Errorf("quota probe %v and life %v, want 18s and 36s", p, s)
	}
}

func TestParseShapes(t *testing.T) {
	got, err := parseShapes("1, heavytail,7,8,quota")
	if err != nil || !slices.Equal(got, []string{"uniform", "heavytail", "cache", "decode", "quota"}) {
		t.Errorf("parseShapes = %v, %v", got, err)
	}
	for _, bad := range []string{"10", "0", "spiky", ""} {
		if _, err := parseShapes(bad); err == nil {
			t.Errorf("parseShapes(%q) did not fail", bad)
		}
	}
	if _, err := parseFloats("0.78,1.5", 0.99); err == nil {
		t.Error("parseFloats accepted 1.5 above 0.99")
	}
}

func TestServiceArgs(t *testing.T) {
	for mode, want := range map[string]string{
		modeBare:         "-mode bare",
		modeAutomemlimit: "-mode automemlimit",
		modeOracle:       "-mode automemlimit -max-inflight 42",
		modeOomguard:     "-mode oomguard",
		modeOomguardCost: "-mode oomguard -cost",
	} {
		if got := strings.Join(serviceArgs(mode, 42), " "); got != want {
			t.Errorf("%s: %q, want %q", mode, got, want)
		}
	}
}

func TestInRound(t *testing.T) {
	s := shape{Name: shapeCache, Reference: modeAutomemlimit, Rounds: 3}
	for _, tc := range []struct {
		mode  string
		round int
		want  bool
	}{
		{modeAutomemlimit, 3, true}, {modeOomguard, 2, true},
		{modeBare, 1, true}, {modeBare, 2, false},
		{modeOomguardCost, 1, true}, {modeOomguardCost, 3, true},
		{modeOomguardTrace, 1, true}, {modeOomguardTrace, 2, false},
	} {
		if got := s.inRound(tc.mode, tc.round); got != tc.want {
			t.Errorf("inRound(%s, %d) = %v, want %v", tc.mode, tc.round, got, tc.want)
		}
	}
	if u := (shape{Name: shapeUniform, Reference: modeOracle}); !u.inRound(modeBare, 1) || !u.inRound(modeOomguardCost, 0) {
		t.Error("a shape without rounds runs every mode")
	}
}
