package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Result is one mode's figures, as written to latest.json.
type Result struct {
	Mode      string `json:"mode"`
	OOMKilled bool   `json:"oom_killed"` // SIGKILL and the cgroup's oom_kill counter rose
	ExitCode  int    `json:"exit_code"`  // 128+signal when a signal ended it
	// GoodputRatio is successful responses per second during the spike
	// divided by the calibrated rate.
	GoodputRatio float64 `json:"goodput_ratio"`
	// P50Ms and P99Ms are latencies of the successful responses to
	// requests sent during the spike.
	P50Ms            float64 `json:"p50_ms"`
	P99Ms            float64 `json:"p99_ms"`
	CalibrationP99Ms float64 `json:"calibration_p99_ms"`
	Shed             int64   `json:"shed"` // 503 responses over the whole run
	PeakUsageBytes   int64   `json:"peak_usage_bytes"`
	LimitBytes       int64   `json:"limit_bytes"`
	Profiles         int64   `json:"profiles"` // heap profiles the guard wrote
	// RecoverySeconds is the time from the end of the spike to the last
	// request that was shed or failed; 0 if none was, -1 if requests
	// still failed in the last second of the run.
	RecoverySeconds float64 `json:"recovery_seconds"`
}

// The phases of a mode's run.
const (
	phaseWarm     = "base"
	phaseSpike    = "spike"
	phaseRecovery = "recovery"
)

// summarize computes a mode's figures from its hits and samples.
func summarize(mode string, s schedule, cal calibration, hits []hit, samples []sample, limit int64) Result {
	r := Result{
		Mode:             mode,
		CalibrationP99Ms: ms(cal.P99),
		PeakUsageBytes:   peakUsage(samples),
		LimitBytes:       limit,
		Profiles:         profiles(samples),
	}
	from, to, _ := s.window(phaseSpike)
	end := s.Duration()
	var ok []time.Duration
	lastBad := time.Duration(-1)
	for _, h := range hits {
		if h.Code == 503 {
			r.Shed++
		}
		if h.At >= from && h.At < to && h.ok() {
			ok = append(ok, h.Latency)
		}
		if h.At >= to && !h.ok() {
			lastBad = max(lastBad, h.At)
		}
	}
	if spike := (to - from).Seconds(); spike > 0 && cal.Rate > 0 {
		r.GoodputRatio = round(float64(len(ok))/spike/cal.Rate, 3)
	}
	r.P50Ms = ms(quantile(ok, 0.50))
	r.P99Ms = ms(quantile(ok, 0.99))
	switch {
	case lastBad < 0:
	case lastBad >= end-time.Second:
		r.RecoverySeconds = -1
	default:
		r.RecoverySeconds = round((lastBad - to).Seconds(), 1)
	}
	return r
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

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// report is a whole comparison.
type report struct {
	Enforced    bool // the kernel enforced the limit in a child cgroup
	Quick       bool
	Limit       int64
	WorkBytes   int
	WorkHold    time.Duration
	Calibration calibration
	Runs        []modeRun
}

func (rep *report) results() []Result {
	rs := make([]Result, len(rep.Runs))
	for i, r := range rep.Runs {
		rs[i] = r.Result
	}
	return rs
}

// writeJSON writes the results: an array with one object per mode.
func (rep *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep.results())
}

// writeMarkdown writes the results as a Markdown table with a line on the
// conditions above it and the definitions below.
func (rep *report) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	kind := "full"
	if rep.Quick {
		kind = "quick"
	}
	fmt.Fprintf(&b, "Survival run (%s): limit %s", kind, mib(rep.Limit))
	if rep.Enforced {
		b.WriteString(" enforced by the kernel (memory cgroup)")
	} else {
		b.WriteString(", **no kernel enforcement**: no writable memory cgroup, so only oomguard ran, with Config.Limit set to the limit")
	}
	c := rep.Calibration
	fmt.Fprintf(&b, "; each request holds %s for %v.\n", mib(int64(rep.WorkBytes)), rep.WorkHold)
	fmt.Fprintf(&b, "Calibrated rate %.0f rps (in %s mode: p99 %s ms, unloaded p99 %s ms); spike %.0f rps",
		c.Rate, c.Mode, fmtMs(ms(c.P99)), fmtMs(ms(c.UnloadedP99)), spikeFactor*c.Rate)
	if len(rep.Runs) > 0 {
		var phases []string
		for _, p := range rep.Runs[0].Schedule {
			phases = append(phases, fmt.Sprintf("%s %v at %.0f rps", p.Name, p.Duration, p.Rate))
		}
		fmt.Fprintf(&b, "; the same load for every mode: %s", strings.Join(phases, ", then "))
	}
	b.WriteString(".\n\n")

	b.WriteString("| mode | OOM-killed | exit | goodput | p50 ms | p99 ms | calibration p99 ms | shed | peak usage | limit | profiles | recovery s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.results() {
		recovery := fmtFloat(r.RecoverySeconds)
		if r.RecoverySeconds < 0 {
			recovery = "not recovered"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.3f | %s | %s | %s | %d | %s | %s | %d | %s |\n",
			r.Mode, yesNo(r.OOMKilled), r.ExitCode, r.GoodputRatio, fmtMs(r.P50Ms), fmtMs(r.P99Ms),
			fmtMs(r.CalibrationP99Ms), r.Shed, mib(r.PeakUsageBytes), mib(r.LimitBytes), r.Profiles, recovery)
	}
	b.WriteString("\ngoodput: successful responses per second during the spike / calibrated rate. " +
		"p50, p99: latency of the successful responses to requests sent during the spike. " +
		"shed: 503 responses over the run. peak usage: highest working set sampled every 100 ms. " +
		"recovery: seconds from the end of the spike to the last shed or failed request.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func yesNo(b bool) string {
	if b {
		return "**yes**"
	}
	return "no"
}

func fmtMs(v float64) string { return fmtFloat(v) }

func fmtFloat(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") }
