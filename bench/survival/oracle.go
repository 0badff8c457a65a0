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
)

// A capProbe is the service under one fixed in-flight cap, fresh, at the
// spike for a short while.
type capProbe struct {
	Cap          int     `json:"cap"`
	Killed       bool    `json:"killed"`
	GoodputRatio float64 `json:"goodput_ratio"`
	PeakUsage    int64   `json:"peak_usage_bytes"`
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
// of them: a kill lowers hi, survival raises lo. The best cap is the one
// with the highest goodput among the probes that survived, the lower cap on
// a tie; lo if none survived.
func bisectCap(lo, hi, n int, probe func(maxInFlight int) (capProbe, error)) (best int, probes []capProbe, err error) {
	best, bestGoodput := lo, -1.0
	for range n {
		mid := int(math.Round(math.Sqrt(float64(lo) * float64(hi))))
		if mid <= lo || mid >= hi {
			break
		}
		p, err := probe(mid)
		if err != nil {
			return best, probes, err
		}
		probes = append(probes, p)
		if p.Killed {
			hi = mid
			continue
		}
		lo = mid
		if p.GoodputRatio > bestGoodput || (p.GoodputRatio == bestGoodput && mid < best) {
			best, bestGoodput = mid, p.GoodputRatio
		}
	}
	return best, probes, nil
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
