package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is one mode's figures on one shape, as written to latest.json.
// Figures about requests count those sent during the shape's measured
// phase (the spike, the burst, or the steady load) unless they say
// otherwise. Pointers are null where a figure does not apply.
type Result struct {
	Mode string `json:"mode"`
	// Round is the round of a shape whose modes run several times, from 1;
	// 0 where they run once.
	Round       int  `json:"round,omitempty"`
	InFlightCap int  `json:"in_flight_cap,omitempty"` // the oracle's fixed cap
	OOMKilled   bool `json:"oom_killed"`              // SIGKILL and the cgroup's oom_kill counter rose
	ExitCode    int  `json:"exit_code"`               // 128+signal when a signal ended it
	// DiedAtSeconds is when the process died, since the load started; null
	// if it lived to the end. For the leak, the time to kill.
	DiedAtSeconds *float64 `json:"died_at_seconds"`
	// GoodputRatio is successful responses per second divided by the base
	// rate. Where the shape has a deadline, a success is a 200 within it.
	GoodputRatio float64 `json:"goodput_ratio"`
	// DeadlineMs is how long the clients waited for an answer, where the
	// shape has a deadline; 0 (absent) without.
	DeadlineMs float64 `json:"deadline_ms,omitempty"`
	// GoodputPerSecond is 200s within the deadline per second of the
	// measured phase; TimedOut the requests sent in it whose client gave
	// up at the deadline without an answer. Null (absent) without a
	// deadline.
	GoodputPerSecond *float64 `json:"goodput_per_second,omitempty"`
	TimedOut         *int     `json:"timed_out,omitempty"`
	// GoodputVsReference and P99VsReference divide this mode's goodput and
	// p99 by the reference mode's: the oracle's, or automemlimit's for the
	// cache.
	GoodputVsReference *float64 `json:"goodput_vs_reference"`
	P50Ms              float64  `json:"p50_ms"` // latency of the successful responses
	P99Ms              float64  `json:"p99_ms"`
	P99VsReference     *float64 `json:"p99_vs_reference"`
	CalibrationP99Ms   float64  `json:"calibration_p99_ms"`
	Sent               int      `json:"sent"`
	Served             int      `json:"served"` // 200 responses, within the deadline where there is one
	// Classes counts sent and served per size class (heavytail, uploads,
	// and the decode shapes' classes of pictures);
	// ServedShareLarge and ServedShareSmall are served/sent of the largest
	// and smallest class, LargeVsSmall the first over the second.
	Classes          []classShare `json:"classes,omitempty"`
	ServedShareLarge *float64     `json:"served_share_large"`
	ServedShareSmall *float64     `json:"served_share_small"`
	LargeVsSmall     *float64     `json:"large_vs_small"`
	Shed             int64        `json:"shed"`       // 503 responses over the whole run
	ShedShare        float64      `json:"shed_share"` // 503 responses / requests sent, over the whole run
	PeakUsageBytes   int64        `json:"peak_usage_bytes"`
	LimitBytes       int64        `json:"limit_bytes"`
	Profiles         int64        `json:"profiles"` // heap profiles the guard wrote
	// CPUSeconds is the service's CPU time, user and system, over its
	// whole life; 0 when unknown.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUThrottledShare is the share of the CPU quota's periods in which
	// the kernel throttled the service, over its life; null (absent)
	// without a quota.
	CPUThrottledShare *float64 `json:"cpu_throttled_share,omitempty"`
	// RecoverySeconds is the time from the end of the spike to the last
	// request that was shed or failed; 0 if none was, -1 if requests
	// still failed in the last second of the run; null without a recovery
	// phase.
	RecoverySeconds *float64 `json:"recovery_seconds"`
	// Guard is the guard's admission state during the measured phase, from
	// its /debug/guard/status; null without the guard.
	Guard *guardSummary `json:"guard"`
}

// guardSummary is what the guard's status said during the measured phase,
// sampled every 100 ms.
type guardSummary struct {
	Samples          int   `json:"samples"`
	LevelMax         int   `json:"level_max"` // 0 normal .. 3 critical
	InFlightMax      int64 `json:"in_flight_max"`
	InFlightLimitMin int64 `json:"in_flight_limit_min"` // over samples with a limit; 0 if none had one
	InFlightLimitP50 int64 `json:"in_flight_limit_p50"`
	InFlightLimitMax int64 `json:"in_flight_limit_max"`
	WorkCostP50      int64 `json:"work_cost_p50_bytes"` // the learned bytes per unit of work; 0 if none was reported
}

// summarize computes a mode's figures on shape s from its hits and samples;
// base is the shape's base rate and calP99 its calibration p99.
func summarize(mode string, s shape, sched schedule, base float64, calP99 time.Duration, hits []hit, samples []sample, limit int64) Result {
	r := Result{
		Mode:             mode,
		CalibrationP99Ms: ms(calP99),
		PeakUsageBytes:   peakUsage(samples),
		LimitBytes:       limit,
		Profiles:         profiles(samples),
	}
	from, to, _ := s.measuredWindow(sched)
	_, recoveryEnd, hasRecovery := sched.window(phaseRecovery)
	var ok []time.Duration
	timedOut := 0
	lastBad := time.Duration(-1)
	for _, h := range hits {
		if h.Code == 503 {
			r.Shed++
		}
		if h.At >= from && h.At < to {
			r.Sent++
			if h.served(s.Deadline) {
				ok = append(ok, h.Latency)
			}
			if s.Deadline > 0 && h.Err && h.Latency >= s.Deadline {
				timedOut++
			}
		}
		if h.At >= to && !h.ok() {
			lastBad = max(lastBad, h.At)
		}
	}
	r.Served = len(ok)
	if len(hits) > 0 {
		r.ShedShare = round(float64(r.Shed)/float64(len(hits)), 4)
	}
	if secs := (to - from).Seconds(); secs > 0 && base > 0 {
		r.GoodputRatio = round(float64(len(ok))/secs/base, 3)
	}
	if secs := (to - from).Seconds(); s.Deadline > 0 && secs > 0 {
		r.DeadlineMs = ms(s.Deadline)
		r.GoodputPerSecond, r.TimedOut = ptr(round(float64(len(ok))/secs, 2)), ptr(timedOut)
	}
	r.P50Ms = ms(quantile(ok, 0.50))
	r.P99Ms = ms(quantile(ok, 0.99))
	if m := s.classes(); len(m) > 0 {
		r.Classes = classShares(m, hits, from, to, s.Deadline)
		small, large := r.Classes[0], r.Classes[len(r.Classes)-1]
		if small.Sent > 0 {
			r.ServedShareSmall = ptr(round(small.share(), 3))
		}
		if large.Sent > 0 {
			r.ServedShareLarge = ptr(round(large.share(), 3))
		}
		if small.Sent > 0 && large.Sent > 0 && small.Served > 0 {
			r.LargeVsSmall = ptr(round(large.share()/small.share(), 3))
		}
	}
	if hasRecovery {
		switch {
		case lastBad < 0:
			r.RecoverySeconds = ptr(0.0)
		case lastBad >= recoveryEnd-time.Second:
			r.RecoverySeconds = ptr(-1.0)
		default:
			r.RecoverySeconds = ptr(round((lastBad - to).Seconds(), 1))
		}
	}
	if guarded(mode) {
		r.Guard = summarizeGuard(samples, from, to)
	}
	return r
}

// measuredWindow is when the shape's measured phase runs in sched.
func (s shape) measuredWindow(sched schedule) (from, to time.Duration, ok bool) {
	if from, to, ok = sched.window(s.measured()); ok {
		return from, to, true
	}
	return 0, sched.Duration(), len(sched) > 0 // a probe: all of it
}

// summarizeGuard sums up the guard's samples in [from, to).
func summarizeGuard(samples []sample, from, to time.Duration) *guardSummary {
	g := &guardSummary{}
	var limits, costs []time.Duration // as Durations for quantile
	for _, s := range samples {
		if s.At < from || s.At >= to || s.Level < 0 {
			continue
		}
		g.Samples++
		g.LevelMax = max(g.LevelMax, s.Level)
		g.InFlightMax = max(g.InFlightMax, s.InFlight)
		if s.InFlightLimit > 0 {
			limits = append(limits, time.Duration(s.InFlightLimit))
		}
		if s.WorkCost > 0 {
			costs = append(costs, time.Duration(s.WorkCost))
		}
	}
	g.WorkCostP50 = int64(quantile(costs, 0.5))
	if len(limits) > 0 {
		g.InFlightLimitP50 = int64(quantile(limits, 0.5))
		g.InFlightLimitMin, g.InFlightLimitMax = int64(limits[0]), int64(limits[len(limits)-1])
	}
	return g
}

// compare fills in each result's figures against the shape's reference
// mode, if it ran.
func (sr *shapeRun) compare() {
	for i := range sr.Runs {
		r := &sr.Runs[i].Result
		r.GoodputVsReference, r.P99VsReference = nil, nil
		ref := sr.roundResult(sr.Shape.Reference, r.Round)
		if ref == nil {
			continue
		}
		if ref.GoodputRatio > 0 {
			r.GoodputVsReference = ptr(round(r.GoodputRatio/ref.GoodputRatio, 3))
		}
		if ref.P99Ms > 0 && r.Served > 0 {
			r.P99VsReference = ptr(round(r.P99Ms/ref.P99Ms, 3))
		}
	}
}

// result is the named mode's result, of its first round; nil if it did
// not run.
func (sr *shapeRun) result(mode string) *Result {
	for i := range sr.Runs {
		if sr.Runs[i].Result.Mode == mode {
			return &sr.Runs[i].Result
		}
	}
	return nil
}

// roundResult is the named mode's result in round (0 where the modes ran
// once); nil if it did not run.
func (sr *shapeRun) roundResult(mode string, round int) *Result {
	for i := range sr.Runs {
		if r := &sr.Runs[i].Result; r.Mode == mode && r.Round == round {
			return r
		}
	}
	return nil
}

// summary is the named mode's figures over its rounds, for the summary
// table: its one result where the modes ran once; else the medians of its
// ratios to the reference, each taken against the reference of its own
// round, over the rounds where that reference lived (a ratio to a killed
// reference says nothing: nil if it died in every round), and dead (with
// the first death's figures) if any round died. Nil if it did not run.
func (sr *shapeRun) summary(mode string) *Result {
	var runs []Result
	for _, run := range sr.Runs {
		if run.Result.Mode == mode {
			runs = append(runs, run.Result)
		}
	}
	switch len(runs) {
	case 0:
		return nil
	case 1:
		return &runs[0]
	}
	out := runs[0]
	out.Round = 0
	for _, r := range runs {
		if r.DiedAtSeconds != nil && out.DiedAtSeconds == nil {
			out.DiedAtSeconds, out.ExitCode = r.DiedAtSeconds, r.ExitCode
		}
		out.OOMKilled = out.OOMKilled || r.OOMKilled
	}
	var fair []Result
	for _, r := range runs {
		if ref := sr.roundResult(sr.Shape.Reference, r.Round); ref != nil && ref.DiedAtSeconds == nil {
			fair = append(fair, r)
		}
	}
	out.GoodputVsReference = medianOf(fair, func(r Result) *float64 { return r.GoodputVsReference })
	out.P99VsReference = medianOf(fair, func(r Result) *float64 { return r.P99VsReference })
	out.LargeVsSmall = medianOf(runs, func(r Result) *float64 { return r.LargeVsSmall })
	return &out
}

// calibrationP99 is the median over the named mode's rounds of its p99
// against the calibration's, where it lived; nil where none did.
func (sr *shapeRun) calibrationP99(mode string) *float64 {
	var runs []Result
	for _, run := range sr.Runs {
		if r := run.Result; r.Mode == mode && r.DiedAtSeconds == nil && r.CalibrationP99Ms > 0 {
			runs = append(runs, r)
		}
	}
	return medianOf(runs, func(r Result) *float64 { return ptr(r.P99Ms / r.CalibrationP99Ms) })
}

// medianOf is the median of the figure f over the runs that have it (the
// mean of the middle two for an even count); nil if none has.
func medianOf(runs []Result, f func(Result) *float64) *float64 {
	var vs []float64
	for _, r := range runs {
		if v := f(r); v != nil {
			vs = append(vs, *v)
		}
	}
	if len(vs) == 0 {
		return nil
	}
	slices.Sort(vs)
	m := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		m = (vs[len(vs)/2-1] + m) / 2
	}
	return ptr(round(m, 3))
}

// quantile returns the q-quantile of ds by nearest rank; 0 for none. It
// sorts ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// peakUsage is the highest working set sampled; -1 if none was read.
func peakUsage(samples []sample) int64 {
	peak := int64(-1)
	for _, s := range samples {
		peak = max(peak, s.Usage)
	}
	return peak
}

// profiles is the last count of heap profiles the guard reported.
func profiles(samples []sample) int64 {
	var n int64
	for _, s := range samples {
		n = max(n, s.Profiles)
	}
	return n
}

func ptr[T any](v T) *T { return &v }

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// report is a whole matrix.
type report struct {
	Enforced    bool // the kernel enforced the limit in child cgroups
	Quick       bool
	Limit       int64
	Wall        time.Duration
	LoadBefore  float64 // the machine's one-minute load average; -1 unknown
	LoadAfter   float64
	CPUs        int
	Calibration calibration // the uniform shape's, that the others scale from
	Shapes      []*shapeRun
	ServiceEnv  []string // -service-env: NAME=VALUE added to every service's environment
}

func (rep *report) kind() string {
	if rep.Quick {
		return "quick"
	}
	return "full"
}

// jsonReport is latest.json.
type jsonReport struct {
	Kind        string          `json:"kind"` // full or quick
	Enforced    bool            `json:"enforced"`
	LimitBytes  int64           `json:"limit_bytes"`
	WallSeconds float64         `json:"wall_seconds"`
	CPUs        int             `json:"cpus"`
	LoadBefore  float64         `json:"load_average_before"` // one-minute, from /proc/loadavg; -1 unknown
	LoadAfter   float64         `json:"load_average_after"`
	Calibration jsonCalibration `json:"calibration"`
	Shapes      []jsonShape     `json:"shapes"`
	ServiceEnv  []string        `json:"service_env,omitempty"`
}

type jsonCalibration struct {
	Mode          string  `json:"mode"`
	Rate          float64 `json:"rate"`
	P99Ms         float64 `json:"p99_ms"`
	UnloadedP99Ms float64 `json:"unloaded_p99_ms,omitempty"`
	ScaledFrom    float64 `json:"scaled_from_rate,omitempty"`
	// Clients and Passes: a capacity measured by a closed loop of that
	// many clients asking for every picture that many times.
	Clients     int       `json:"clients,omitempty"`
	Passes      int       `json:"passes,omitempty"`
	ClassMeanMs []float64 `json:"class_mean_ms,omitempty"`
}

type jsonPhase struct {
	Name    string  `json:"name"`
	Rate    float64 `json:"rate,omitempty"`
	Conns   int     `json:"conns,omitempty"`
	Seconds float64 `json:"seconds"`
}

type jsonShape struct {
	Shape       string          `json:"shape"`
	Number      int             `json:"number"`
	Label       string          `json:"label"`
	Description string          `json:"description"`
	Reference   string          `json:"reference_mode"`
	BaseRate    float64         `json:"base_rate"`
	Calibration jsonCalibration `json:"calibration"`
	Measured    string          `json:"measured_phase"`
	Phases      []jsonPhase     `json:"phases"`
	// LoadFactor is a CPU-bound shape's load as a multiple of its capacity
	// (the base rate); DeadlineMs its clients' deadline; CPUQuota its CPU
	// quota in CPUs; LimitBytes its own memory limit. Absent where none.
	LoadFactor   float64    `json:"load_factor,omitempty"`
	DeadlineMs   float64    `json:"deadline_ms,omitempty"`
	CPUQuota     float64    `json:"cpu_quota,omitempty"`
	LimitBytes   int64      `json:"limit_bytes,omitempty"`
	OracleCap    int        `json:"oracle_cap,omitempty"`
	OracleProbes []capProbe `json:"oracle_probes,omitempty"`
	WallSeconds  float64    `json:"wall_seconds"` // the shape's whole time: calibration, probes and every run
	// Rounds and Medians: where every mode ran in several rounds, the
	// median of each mode's ratios to the reference over them.
	Rounds  int          `json:"rounds,omitempty"`
	Medians []jsonMedian `json:"medians,omitempty"`
	Modes   []Result     `json:"modes"`
}

type jsonMedian struct {
	Mode               string   `json:"mode"`
	Died               bool     `json:"died"` // in any round
	GoodputVsReference *float64 `json:"goodput_vs_reference"`
	P99VsReference     *float64 `json:"p99_vs_reference"`
	// LargeVsSmall and P99VsCalibration: of the decode and quota shapes,
	// the largest class's share over the smallest's and, under a quota,
	// the p99 over the calibration's, each the median over the rounds.
	LargeVsSmall     *float64 `json:"large_vs_small,omitempty"`
	P99VsCalibration *float64 `json:"p99_vs_calibration,omitempty"`
}

func toJSONCalibration(c calibration) jsonCalibration {
	j := jsonCalibration{Mode: c.Mode, Rate: c.Rate, P99Ms: ms(c.P99), UnloadedP99Ms: ms(c.UnloadedP99), ScaledFrom: c.ScaledFrom,
		Clients: c.Clients, Passes: c.Passes}
	for _, m := range c.ClassMeans {
		j.ClassMeanMs = append(j.ClassMeanMs, ms(m))
	}
	return j
}

// writeJSON writes latest.json: the conditions, then per shape its load
// and a result per mode.
func (rep *report) writeJSON(w io.Writer) error {
	out := jsonReport{
		Kind:        rep.kind(),
		Enforced:    rep.Enforced,
		LimitBytes:  rep.Limit,
		WallSeconds: round(rep.Wall.Seconds(), 1),
		CPUs:        rep.CPUs,
		LoadBefore:  rep.LoadBefore,
		LoadAfter:   rep.LoadAfter,
		Calibration: toJSONCalibration(rep.Calibration),
		Shapes:      []jsonShape{},
		ServiceEnv:  rep.ServiceEnv,
	}
	for _, sr := range rep.Shapes {
		js := jsonShape{
			Shape: sr.Shape.Name, Number: sr.Shape.Number, Label: sr.Shape.Label, Description: sr.Shape.describe(),
			Reference: sr.Shape.Reference, BaseRate: sr.BaseRate, Calibration: toJSONCalibration(sr.Calibration),
			Measured: sr.Shape.measured(), OracleCap: sr.OracleCap, OracleProbes: sr.OracleProbes, Modes: []Result{},
			WallSeconds: round(sr.Wall.Seconds(), 1),
			LoadFactor:  sr.Shape.Factor, DeadlineMs: ms(sr.Shape.Deadline), CPUQuota: sr.Shape.CPUs, LimitBytes: sr.Shape.Limit,
		}
		for _, p := range sr.Schedule {
			js.Phases = append(js.Phases, jsonPhase{Name: p.Name, Rate: p.Rate, Conns: p.Conns, Seconds: p.Duration.Seconds()})
		}
		for _, r := range sr.Runs {
			js.Modes = append(js.Modes, r.Result)
		}
		if sr.Shape.Rounds > 1 {
			js.Rounds = sr.Shape.Rounds
			for _, m := range sr.modes() {
				r := sr.summary(m)
				jm := jsonMedian{Mode: m, Died: r.DiedAtSeconds != nil,
					GoodputVsReference: r.GoodputVsReference, P99VsReference: r.P99VsReference, LargeVsSmall: r.LargeVsSmall}
				if sr.Shape.CPUs > 0 {
					jm.P99VsCalibration = sr.calibrationP99(m)
				}
				js.Medians = append(js.Medians, jm)
			}
		}
		out.Shapes = append(out.Shapes, js)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeMarkdown writes the conditions, a summary table of goodput against
// the reference (shape by mode), then one table per shape and the
// definitions.
func (rep *report) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Survival matrix (%s): limit %s", rep.kind(), mib(rep.Limit))
	if rep.Enforced {
		b.WriteString(" enforced by the kernel (memory cgroup)")
	} else {
		b.WriteString(", **no kernel enforcement**: no writable memory cgroup, so only oomguard ran, with Config.Limit set to the limit")
	}
	fmt.Fprintf(&b, "; wall time %v; %d CPUs, load average %s before, %s after.\n",
		rep.Wall.Round(time.Second), rep.CPUs, fmtLoad(rep.LoadBefore), fmtLoad(rep.LoadAfter))
	if len(rep.ServiceEnv) > 0 {
		fmt.Fprintf(&b, "Every service ran with %s in its environment (-service-env).\n", strings.Join(rep.ServiceEnv, " "))
	}
	switch c := rep.Calibration; {
	case c.Rate > 0 && len(c.Probes) > 0:
		fmt.Fprintf(&b, "Calibrated rate of the uniform shape %.0f rps (in %s mode: p99 %s ms, unloaded p99 %s ms)",
			c.Rate, c.Mode, fmtMs(ms(c.P99)), fmtMs(ms(c.UnloadedP99)))
	case c.Rate > 0:
		fmt.Fprintf(&b, "Base rate of the uniform shape %.0f rps, given by -rate", c.Rate)
	}
	if rep.Calibration.Rate > 0 {
		fmt.Fprintf(&b, "; heavytail, uploads and offheap scale it by mean bytes held times hold; the spike is %d× the base rate.\n", spikeFactor)
	}

	modes := rep.modes()
	b.WriteString("\nGoodput as a fraction of the reference mode's (the oracle; automemlimit for cache); " +
		"where a shape ran in rounds, the median of the rounds, each against its own round's reference; " +
		"✕ OOM-killed (in any round), † died otherwise, – no reference.\n\n")
	b.WriteString("| shape | " + strings.Join(modes, " | ") + " |\n")
	b.WriteString("|---" + strings.Repeat("|---", len(modes)) + "|\n")
	for _, sr := range rep.Shapes {
		fmt.Fprintf(&b, "| %d %s |", sr.Shape.Number, sr.Shape.Label)
		for _, m := range modes {
			r := sr.summary(m)
			if r == nil {
				b.WriteString(" |")
				continue
			}
			fmt.Fprintf(&b, " %s%s |", deathMark(*r), fmtRatio(r.GoodputVsReference))
		}
		b.WriteString("\n")
	}

	for _, sr := range rep.Shapes {
		sr.writeMarkdown(&b)
	}
	b.WriteString("\ngoodput: successful responses per second to requests sent in the measured phase (spike, burst, steady or overload) / base rate; " +
		"vs ref: divided by the reference mode's. p50, p99: latency of those successful responses. " +
		"large / small: served/sent of the largest size class over that of the smallest. " +
		"shed: 503 responses over the run (share of all requests sent). peak: highest working set sampled every 100 ms. " +
		"in flight: the guard's in-flight count (max) and in-flight limit (median) in the measured phase, from its status. " +
		"recovery: seconds from the end of the spike to the last shed or failed request. CPU s: the service's CPU time, user and system, over its life.\n")
	if rep.hasDeadlines() {
		b.WriteString("\nWhere clients have a deadline (decode, quota), a success is a 200 within it; base rate: the shape's capacity. " +
			"served/s: those per second. timed out: requests whose client gave up at the deadline. " +
			"served: served/sent of each class of pictures (by pixels); large vs small: the largest class's share over the smallest's. " +
			"throttled: share of the CPU quota's periods in which the kernel throttled the service.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMarkdown writes the shape's heading, load and table.
func (sr *shapeRun) writeMarkdown(b *strings.Builder) {
	s := sr.Shape
	fmt.Fprintf(b, "\n### %d %s\n\n%s", s.Number, s.Label, s.describe())
	if c := sr.Calibration; c.ScaledFrom > 0 {
		fmt.Fprintf(b, "; base rate %.0f rps, scaled from %.0f (probe p99 %s ms)", sr.BaseRate, c.ScaledFrom, fmtMs(ms(c.P99)))
	}
	if c := sr.Calibration; c.Clients > 0 {
		fmt.Fprintf(b, "; capacity %.1f rps (%s mode: a closed loop of %s asking for every picture %s, each class weighed by its share; mean latency %s; p99 %s ms)",
			sr.BaseRate, c.Mode, count(c.Clients, "client"), times(c.Passes), classMeans(s.classes(), c.ClassMeans), fmtMs(ms(c.P99)))
	}
	fmt.Fprintf(b, "; load: %s", sr.Schedule)
	switch {
	case s.Reference == modeOracle && sr.OracleCap > 0:
		var ps []string
		for _, p := range sr.OracleProbes {
			verdict := fmt.Sprintf("%.3f", p.GoodputRatio)
			if p.Killed {
				verdict = "killed"
			}
			switch {
			case p.FullLoad:
				verdict += " on the full load"
			case p.Spike:
				verdict += " on the spike"
			}
			ps = append(ps, fmt.Sprintf("%d %s", p.Cap, verdict))
		}
		fmt.Fprintf(b, "; reference: oracle, cap %d (probes: %s)", sr.OracleCap, strings.Join(ps, ", "))
	case s.Reference != "":
		fmt.Fprintf(b, "; reference: %s", s.Reference)
	}
	b.WriteString(".")
	if sr.Wall > 0 {
		fmt.Fprintf(b, " The shape took %v in all.", sr.Wall.Round(time.Second))
	}
	var refDied []string
	for _, run := range sr.Runs {
		if r := run.Result; r.Mode == s.Reference && r.DiedAtSeconds != nil {
			refDied = append(refDied, strconv.Itoa(r.Round))
		}
	}
	switch {
	case len(refDied) == 0:
	case s.Rounds > 1:
		fmt.Fprintf(b, " **The reference (%s) died in round %s**: ratios against it there overstate the others.", s.Reference, strings.Join(refDied, ", "))
	default:
		fmt.Fprintf(b, " **The reference (%s) died**: ratios against it overstate the others.", s.Reference)
	}
	b.WriteString("\n\n")
	cols := sr.columns()
	b.WriteString("|")
	for _, c := range cols {
		b.WriteString(" " + c.head + " |")
	}
	b.WriteString("\n" + strings.Repeat("|---", len(cols)) + "|\n")
	for _, run := range sr.Runs {
		b.WriteString("|")
		for _, c := range cols {
			b.WriteString(" " + c.cell(run.Result) + " |")
		}
		b.WriteString("\n")
	}
	if s.Rounds > 1 {
		var parts []string
		for _, m := range sr.modes() {
			if m == s.Reference {
				continue
			}
			r := sr.summary(m)
			part := fmt.Sprintf("%s%s goodput %s, p99 %s", deathMark(*r), m, fmtRatio(r.GoodputVsReference), fmtRatio(r.P99VsReference))
			if r.LargeVsSmall != nil {
				part += ", large vs small " + fmtRatio(r.LargeVsSmall)
			}
			if s.CPUs > 0 {
				part += ", p99 against the calibration's " + fmtRatio(sr.calibrationP99(m))
			}
			parts = append(parts, part)
		}
		fmt.Fprintf(b, "\nMedian of %d rounds, each against its own round's %s: %s.\n", s.Rounds, s.Reference, strings.Join(parts, "; "))
		parts = parts[:0]
		for _, m := range sr.modes() {
			mean, died, n := sr.allRounds(m)
			parts = append(parts, fmt.Sprintf("%s %.3f (died in %d of %d)", m, mean, died, n))
		}
		fmt.Fprintf(b, "Over all rounds, deaths included, mean goodput: %s.\n", strings.Join(parts, "; "))
	}
}

// A column is one of a shape's table: its heading, and its cell of a
// mode's row.
type column struct {
	head string
	cell func(Result) string
}

// columns is the shape's table. A shape with a deadline has the served
// rate and the timed out after the goodput, and every class's share in
// place of the largest's and smallest's; a CPU-bound shape has no
// recovery, which its load has not; one with a CPU quota has the share of
// periods throttled.
func (sr *shapeRun) columns() []column {
	s := sr.Shape
	cols := []column{
		{"mode", func(r Result) string {
			mode := r.Mode
			if r.InFlightCap > 0 {
				mode = fmt.Sprintf("%s (cap %d)", mode, r.InFlightCap)
			}
			if r.Round > 0 {
				mode = fmt.Sprintf("%s, round %d", mode, r.Round)
			}
			return mode
		}},
		{"OOM-killed", func(r Result) string {
			killed := yesNo(r.OOMKilled)
			if r.DiedAtSeconds != nil {
				killed += fmt.Sprintf(" at %.1f s", *r.DiedAtSeconds)
			}
			return killed
		}},
		{"exit", func(r Result) string { return strconv.Itoa(r.ExitCode) }},
		{"goodput", func(r Result) string { return fmt.Sprintf("%.3f", r.GoodputRatio) }},
		{"vs ref", func(r Result) string { return fmtRatio(r.GoodputVsReference) }},
	}
	if s.Deadline > 0 {
		cols = append(cols,
			column{fmt.Sprintf("served/s in %v", s.Deadline), func(r Result) string { return fmtRatio(r.GoodputPerSecond) }},
			column{"timed out", func(r Result) string {
				if r.TimedOut == nil {
					return "–"
				}
				return strconv.Itoa(*r.TimedOut)
			}})
	}
	cols = append(cols,
		column{"p50 ms", func(r Result) string { return fmtMs(r.P50Ms) }},
		column{"p99 ms", func(r Result) string { return fmtMs(r.P99Ms) }},
		column{"p99 vs ref", func(r Result) string { return fmtRatio(r.P99VsReference) }})
	if s.Deadline == 0 || len(s.classes()) == 0 {
		cols = append(cols, column{"large / small", func(r Result) string {
			if r.ServedShareLarge == nil || r.ServedShareSmall == nil {
				return "–"
			}
			return fmt.Sprintf("%.2f / %.2f", *r.ServedShareLarge, *r.ServedShareSmall)
		}})
	} else {
		var names []string
		for _, c := range s.classes() {
			names = append(names, c.Name)
		}
		cols = append(cols, column{"served: " + strings.Join(names, " / "), func(r Result) string {
			var shares []string
			for _, c := range r.Classes {
				shares = append(shares, fmt.Sprintf("%.2f", c.share()))
			}
			if len(shares) == 0 {
				return "–"
			}
			return strings.Join(shares, " / ")
		}}, column{"large vs small", func(r Result) string { return fmtRatio(r.LargeVsSmall) }})
	}
	cols = append(cols,
		column{"shed", func(r Result) string { return fmt.Sprintf("%d (%.1f%%)", r.Shed, 100*r.ShedShare) }},
		column{"peak", func(r Result) string { return mib(r.PeakUsageBytes) }},
		column{"profiles", func(r Result) string { return strconv.FormatInt(r.Profiles, 10) }},
		column{"in flight", func(r Result) string {
			if g := r.Guard; g != nil && g.Samples > 0 {
				return fmt.Sprintf("%d / %d", g.InFlightMax, g.InFlightLimitP50)
			}
			return "–"
		}})
	if s.Factor == 0 {
		cols = append(cols, column{"recovery s", func(r Result) string {
			v := r.RecoverySeconds
			switch {
			case v == nil:
				return "–"
			case *v < 0:
				return "not recovered"
			}
			return fmtFloat(*v)
		}})
	}
	cols = append(cols, column{"CPU s", func(r Result) string { return fmtFloat(r.CPUSeconds) }})
	if s.CPUs > 0 {
		cols = append(cols, column{"throttled", func(r Result) string { return fmtRatio(r.CPUThrottledShare) }})
	}
	return cols
}

// allRounds is the mean goodput of the named mode over all its rounds,
// those it died in included (what it served until it died), with how many
// rounds it died in and how many it ran. The medians against the
// reference leave out the rounds where the reference died: at a load
// where it dies in some, this is the figure that compares the risks.
func (sr *shapeRun) allRounds(mode string) (mean float64, died, n int) {
	for _, run := range sr.Runs {
		if r := run.Result; r.Mode == mode {
			mean += r.GoodputRatio
			n++
			if r.DiedAtSeconds != nil {
				died++
			}
		}
	}
	if n > 0 {
		mean /= float64(n)
	}
	return mean, died, n
}

// modes is the modes that ran on the shape, in the order they first ran.
func (sr *shapeRun) modes() []string {
	var out []string
	for _, run := range sr.Runs {
		if !slices.Contains(out, run.Result.Mode) {
			out = append(out, run.Result.Mode)
		}
	}
	return out
}

// hasDeadlines reports whether a shape's clients had a deadline.
func (rep *report) hasDeadlines() bool {
	for _, sr := range rep.Shapes {
		if sr.Shape.Deadline > 0 {
			return true
		}
	}
	return false
}

// modes is every mode that ran, in the canonical order.
func (rep *report) modes() []string {
	var out []string
	for _, m := range modeNames {
		for _, sr := range rep.Shapes {
			if sr.result(m) != nil {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// deathMark is ✕ for an OOM kill, † for another death, else "".
func deathMark(r Result) string {
	switch {
	case r.OOMKilled:
		return "✕ "
	case r.DiedAtSeconds != nil:
		return "† "
	}
	return ""
}

func fmtLoad(v float64) string {
	if v < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtRatio(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f", *v)
}

func yesNo(b bool) string {
	if b {
		return "**yes**"
	}
	return "no"
}

func fmtMs(v float64) string { return fmtFloat(v) }

func fmtFloat(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") }
