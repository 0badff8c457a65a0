package main

import (
	"context"
	"fmt"
	"math"
)

// The oracle's search: the cap that would fill GOMEMLIMIT with requests of
// the shape's mean size, c, bounds the range [c/3, 1.5c] that the probes
// bisect.
const (
	goMemLimitRatio = 0.9 // what automemlimit and the guard set
	capLowFactor    = 1.0 / 3
	capHighFactor   = 1.5
	goodputTie      = 0.01 // goodputs this close are a tie, which the lower cap wins
	oracleRetries   = 1    // full runs at a lower cap after the chosen one died
	capStepDown     = 0.8  // the next cap when no surviving probe lies below
)

// A capProbe is the service under one fixed in-flight cap, fresh, at the
// spike for a short while, or (FullLoad) the oracle's run on the full load
// that died.
type capProbe struct {
	Cap          int     `json:"cap"`
	Killed       bool    `json:"killed"`
	GoodputRatio float64 `json:"goodput_ratio"`
	PeakUsage    int64   `json:"peak_usage_bytes"`
	FullLoad     bool    `json:"full_load,omitempty"`
}

// capRange is where the oracle's cap is sought for requests of meanBytes
// under limit.
func capRange(limit int64, meanBytes float64) (lo, hi int) {
	fill := goMemLimitRatio * float64(limit) / math.Max(meanBytes, 1)
	lo = max(1, int(math.Round(fill*capLowFactor)))
	hi = max(lo+1, int(math.Round(fill*capHighFactor)))
	return lo, hi
}

// bisectCap finds the oracle's cap with at most n probes. lo is taken to
// survive and hi to be killed; each probe at the geometric middle moves one
// of them: a kill lowers hi, survival raises lo. The best cap is bestCap's
// among the probes; lo if none survived.
func bisectCap(lo, hi, n int, probe func(maxInFlight int) (capProbe, error)) (best int, probes []capProbe, err error) {
	low := lo
	for range n {
		mid := int(math.Round(math.Sqrt(float64(lo) * float64(hi))))
		if mid <= lo || mid >= hi {
			break
		}
		var p capProbe
		if p, err = probe(mid); err != nil {
			break
		}
		probes = append(probes, p)
		if p.Killed {
			hi = mid
		} else {
			lo = mid
		}
	}
	if best = bestCap(probes, math.MaxInt); best == 0 {
		best = low
	}
	return best, probes, err
}

// bestCap is the cap below `below` with the highest goodput among the
// probes that survived; of caps whose goodput is within goodputTie of the
// highest, the lowest: it serves as much with more room. 0 if none.
func bestCap(probes []capProbe, below int) int {
	top := -1.0
	for _, p := range probes {
		if !p.Killed && p.Cap < below {
			top = max(top, p.GoodputRatio)
		}
	}
	best := 0
	for _, p := range probes {
		if !p.Killed && p.Cap < below && p.GoodputRatio >= top*(1-goodputTie) && (best == 0 || p.Cap < best) {
			best = p.Cap
		}
	}
	return best
}

// lowerCap is the cap to try after maxInFlight died on the full load: the
// best surviving probe below it, else capStepDown of it; 0 if none is left.
func lowerCap(probes []capProbe, maxInFlight int) int {
	if c := bestCap(probes, maxInFlight); c > 0 {
		return c
	}
	return int(math.Round(capStepDown * float64(maxInFlight)))
}

// findOracleCap bisects the fixed in-flight cap for sr's shape under
// GOMEMLIMIT (mode automemlimit), each probe a fresh service at the spike
// rate or in the burst.
func (h *harness) findOracleCap(ctx context.Context, sr *shapeRun) error {
	lo, hi := capRange(h.cfg.limit, sr.Shape.meanBytes())
	fmt.Printf("  oracle: bisecting the in-flight cap in [%d, %d] with %d probes of %v\n", lo, hi, h.cfg.oracleProbes, h.cfg.durations.oracleProbe)
	best, probes, err := bisectCap(lo, hi, h.cfg.oracleProbes, func(c int) (capProbe, error) {
		name := fmt.Sprintf("%s-oracle-probe-%d", sr.Shape.key(), c)
		run, err := h.runOnce(ctx, sr, modeOracle, c, name, sr.Shape.probeSchedule(h.cfg.durations, sr.BaseRate))
		if err != nil {
			return capProbe{}, err
		}
		p := capProbe{Cap: c, Killed: run.DiedAt >= 0, GoodputRatio: run.Result.GoodputRatio, PeakUsage: run.Result.PeakUsageBytes}
		fmt.Printf("    cap %5d: goodput %.3f  peak %s  %s\n", c, p.GoodputRatio, mib(p.PeakUsage), map[bool]string{true: "killed", false: "survived"}[p.Killed])
		return p, nil
	})
	sr.OracleCap, sr.OracleProbes = best, probes
	return err
}

// runOracle runs the oracle's full load at its cap. A short probe can
// survive at a cap that the full load then kills: that run joins the
// probes as a killed one, and the next lower cap (lowerCap) gets the full
// load, oracleRetries times at most. The last run stands, killed or not.
func (h *harness) runOracle(ctx context.Context, sr *shapeRun, round int) (modeRun, error) {
	for try := 0; ; try++ {
		r, err := h.runMode(ctx, sr, modeOracle, round)
		if err != nil || r.DiedAt < 0 || try == oracleRetries || h.cfg.oracleCap > 0 {
			return r, err
		}
		sr.OracleProbes = append(sr.OracleProbes, capProbe{Cap: sr.OracleCap, Killed: true, FullLoad: true,
			GoodputRatio: r.Result.GoodputRatio, PeakUsage: r.Result.PeakUsageBytes})
		next := lowerCap(sr.OracleProbes, sr.OracleCap)
		if next < 1 || next >= sr.OracleCap {
			return r, nil
		}
		fmt.Printf("  oracle: cap %d died on the full load at %.1fs; again at cap %d\n", sr.OracleCap, r.DiedAt.Seconds(), next)
		sr.OracleCap = next
	}
}
