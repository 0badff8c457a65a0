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
	oracleStepDowns = 5    // lower caps the full load tries after the chosen one died
	capStepDown     = 0.9  // the next cap is at least this share of the one that died
)

// A capProbe is the service under one fixed in-flight cap, fresh, at the
// spike for a short while (the bisection's probes), or one of the oracle's
// lives (see settleCap): on the spike alone, as long as the full load's
// (Spike), or on the full load (FullLoad).
type capProbe struct {
	Cap          int     `json:"cap"`
	Killed       bool    `json:"killed"`
	GoodputRatio float64 `json:"goodput_ratio"`
	PeakUsage    int64   `json:"peak_usage_bytes"`
	Spike        bool    `json:"spike,omitempty"`
	FullLoad     bool    `json:"full_load,omitempty"`
}

// probeOf is what a run at the cap c tells the oracle.
func probeOf(c int, r modeRun) capProbe {
	return capProbe{Cap: c, Killed: r.DiedAt >= 0, GoodputRatio: r.Result.GoodputRatio, PeakUsage: r.Result.PeakUsageBytes}
}

// log prints the probe's line of the log; what says which kind of run it was.
func (p capProbe) log(what string) {
	verdict := "survived"
	if p.Killed {
		verdict = "killed"
	}
	fmt.Printf("    cap %5d%s: goodput %.3f  peak %s  %s\n", p.Cap, what, p.GoodputRatio, mib(p.PeakUsage), verdict)
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

// climbCap finds the oracle's cap for a CPU-bound load with at most n
// probes. There goodput rises with the cap while CPUs idle, and falls once
// requests queue past their deadline or the requests in flight fill the
// memory: it doubles the cap from start, up to hi, until goodput rises no
// more than goodputTie (or the probe is killed), then probes the
// geometric middle between the best cap and its better neighbour among
// the caps tried, while probes and untried caps between them remain. The
// cap is bestCap's among the probes; 1 if none survived.
func climbCap(start, hi, n int, probe func(maxInFlight int) (capProbe, error)) (best int, probes []capProbe, err error) {
	tried := map[int]capProbe{}
	try := func(c int) (capProbe, error) {
		p, err := probe(c)
		if err == nil {
			probes = append(probes, p)
			tried[c] = p
		}
		return p, err
	}
	var prev *capProbe
	for c := max(1, start); len(probes) < n && c <= hi; c *= 2 {
		p, err := try(c)
		if err != nil {
			return max(1, bestCap(probes, math.MaxInt)), probes, err
		}
		if p.Killed || prev != nil && p.GoodputRatio <= prev.GoodputRatio*(1+goodputTie) {
			break
		}
		prev = &p
	}
	for len(probes) < n {
		b := bestCap(probes, math.MaxInt)
		if b == 0 {
			break
		}
		below, above := 0, 0
		for c := range tried {
			if c < b && c > below {
				below = c
			}
			if c > b && (above == 0 || c < above) {
				above = c
			}
		}
		// The side of the neighbour with the higher goodput; a killed
		// neighbour, or none, is the lower.
		score := func(c int) float64 {
			if p, ok := tried[c]; ok && !p.Killed {
				return p.GoodputRatio
			}
			return -1
		}
		mid := func(a int) int {
			m := int(math.Round(math.Sqrt(float64(a) * float64(b))))
			if _, done := tried[m]; done || a == 0 || m == a || m == b {
				return 0
			}
			return m
		}
		next := mid(below)
		if m := mid(above); m > 0 && (next == 0 || score(above) > score(below)) {
			next = m
		}
		if next == 0 {
			break
		}
		if _, err := try(next); err != nil {
			return max(1, bestCap(probes, math.MaxInt)), probes, err
		}
	}
	return max(1, bestCap(probes, math.MaxInt)), probes, nil
}

// bestCap is the cap below `below` with the highest goodput among the
// probes that survived; of caps whose goodput is within goodputTie of the
// highest, the lowest: it serves as much with more room. 0 if none.
func bestCap(probes []capProbe, below int) int {
	top := -1.0
	for _, p := range probes {
		if p.comparable(below) {
			top = max(top, p.GoodputRatio)
		}
	}
	best := 0
	for _, p := range probes {
		if p.comparable(below) && p.GoodputRatio >= top*(1-goodputTie) && (best == 0 || p.Cap < best) {
			best = p.Cap
		}
	}
	return best
}

// comparable reports whether p is a short probe that survived at a cap
// below `below`: a full load's goodput counts its calm phases too, so it is
// not on the probes' scale.
func (p capProbe) comparable(below int) bool {
	return !p.Killed && !p.FullLoad && !p.Spike && p.Cap < below
}

// lowerCap is the cap to try after maxInFlight died in one of its lives: the
// best surviving probe below it, or capStepDown of it if that is higher,
// and always below it: capStepDown of a small cap rounds back to the cap.
// The probes are far apart: in the uniform shape 237 died on the full
// load, and the probe below it was 163, where the fixed cap of 216 lives
// in the burst; a reference that low flatters the guard.
func lowerCap(probes []capProbe, maxInFlight int) int {
	step := min(int(math.Round(capStepDown*float64(maxInFlight))), maxInFlight-1)
	return max(bestCap(probes, maxInFlight), step)
}

// findOracleCap bisects the fixed in-flight cap for sr's shape under
// GOMEMLIMIT (mode automemlimit), each probe a fresh service at the spike
// rate or in the burst; for a CPU-bound shape it climbs to the cap of the
// highest goodput (climbCap) from one request a CPU, each probe at the
// overload.
func (h *harness) findOracleCap(ctx context.Context, sr *shapeRun) error {
	lo, hi := capRange(h.limit(sr.Shape), sr.Shape.meanBytes())
	search := bisectCap
	if sr.Shape.Factor > 0 {
		lo, search = sr.Shape.cpuClients(), climbCap
		fmt.Printf("  oracle: climbing to the in-flight cap of the highest goodput from %d, up to %d, with %d probes of %v\n",
			lo, hi, h.cfg.oracleProbes, sr.Shape.stretched(h.cfg.durations).oracleProbe)
	} else {
		fmt.Printf("  oracle: bisecting the in-flight cap in [%d, %d] with %d probes of %v\n", lo, hi, h.cfg.oracleProbes, h.cfg.durations.oracleProbe)
	}
	best, probes, err := search(lo, hi, h.cfg.oracleProbes, func(c int) (capProbe, error) {
		name := fmt.Sprintf("%s-oracle-probe-%d", sr.Shape.key(), c)
		run, err := h.runOnce(ctx, sr, modeOracle, c, name, sr.Shape.probeSchedule(h.cfg.durations, sr.BaseRate), sizeSeed)
		if err != nil {
			return capProbe{}, err
		}
		p := probeOf(c, run)
		p.log("")
		return p, nil
	})
	sr.OracleCap, sr.OracleProbes = best, probes
	return err
}

// settleCap runs the load at the cap start until one cap has lived
// through it lives times in a row. A short probe can survive at a cap that
// the full load then kills, and a heavy-tailed load kills a cap in some
// runs and not others, by when its clumps of large requests meet a
// collection: a cap that lives once is not one an operator could set.
//
// The last of the lives is the full load (run's full is true): its goodput
// is the reference. The others are its spike alone, as long as the full
// load's: a fixed cap lives or dies there, and the base rate's warm-up and
// recovery around it took 8 s of every 20. run's life counts the lives so
// far, from 0: the spikes draw their sizes from other seeds than every
// mode's (sizeSeed + 1 + life), since a cap bisected on one sequence of
// sizes is a cap fitted to where its clumps fall. Each run joins the probes
// (Spike or FullLoad); a death moves to the next lower cap (lowerCap),
// stepDowns times at most. When they run out, the last cap runs the full
// load once if its last run was not one. It returns the cap of the last
// run, which lived unless the step-downs ran out.
func settleCap(start, lives, stepDowns int, probes []capProbe, run func(maxInFlight, life int, full bool) (capProbe, error)) (int, []capProbe, error) {
	c, lived, steps := start, 0, 0
	for {
		full := lived >= lives-1
		p, err := run(c, lived, full)
		if err != nil {
			return c, probes, err
		}
		p.Cap, p.FullLoad, p.Spike = c, full, !full
		probes = append(probes, p)
		if !p.Killed {
			if lived++; lived >= lives {
				return c, probes, nil
			}
			continue
		}
		next := lowerCap(probes, c)
		if steps == stepDowns || next < 1 || next >= c {
			if !full {
				// The reference is a full load, killed or not.
				lived = lives - 1
				continue
			}
			return c, probes, nil
		}
		steps, lived, c = steps+1, 0, next
	}
}

// runOracle runs the oracle's full load at its cap, settled (settleCap)
// in the first round; the last run stands, killed or not. With -oracle-cap
// the cap is fixed: one run, no step-down.
func (h *harness) runOracle(ctx context.Context, sr *shapeRun, round int) (modeRun, error) {
	fixed := h.cfg.oracleCap > 0
	lives, steps := h.cfg.oracleLives, oracleStepDowns
	if round > 1 {
		lives = 1
	}
	if fixed {
		lives, steps = 1, 0
	}
	var last modeRun
	prev, runs := capProbe{}, 0
	c, probes, err := settleCap(sr.OracleCap, lives, steps, sr.OracleProbes, func(c, life int, full bool) (capProbe, error) {
		switch {
		case runs == 0:
		case prev.Killed:
			fmt.Printf("  oracle: cap %d died; again at cap %d\n", sr.OracleCap, c)
		default:
			fmt.Printf("  oracle: cap %d lived (goodput %.3f); again, to live %d times in a row\n", c, prev.GoodputRatio, lives)
		}
		runs++
		sr.OracleCap = c
		if !full {
			name := fmt.Sprintf("%s-oracle-spike-%d-%d", sr.Shape.key(), c, runs)
			seed := sizeSeed + 1 + uint64(life)
			r, err := h.runOnce(ctx, sr, modeOracle, c, name, sr.Shape.spikeSchedule(h.cfg.durations, sr.BaseRate), seed)
			if err != nil {
				return capProbe{}, err
			}
			prev = probeOf(c, r)
			what := ", the spike alone"
			if sr.Shape.Factor > 0 {
				what = ", the overload alone"
			}
			if len(sr.Shape.Mix) > 0 || len(sr.Shape.Pictures) > 0 {
				what += fmt.Sprintf(" (sizes of seed %d)", seed)
			}
			prev.log(what)
			return prev, nil
		}
		r, err := h.runMode(ctx, sr, modeOracle, round)
		last, prev = r, probeOf(c, r)
		return prev, err
	})
	if !fixed {
		sr.OracleProbes = probes
	}
	sr.OracleCap = c
	return last, err
}
