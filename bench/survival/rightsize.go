package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The bars of the right-sizing run: at the recommended limit, the load is
// served shedding at most rightsizeShed of it, and the recommendation is
// at most rightsizeRatio times the smallest limit that serves the load.
const (
	rightsizeShed  = 0.05
	rightsizeRatio = 1.5
	// rightsizeShedQuick is -check's bar for the shed at the recommended
	// limit in the quick run: its share shed at one limit swings by a few
	// points from run to run, and the recommendation lands near the
	// smallest limit that serves the load, whose shed is near
	// rightsizeShed by its definition.
	rightsizeShedQuick = 0.08
)

// rightsizeGrain is the bisection's resolution: it stops once the limits
// that do and do not serve the load are this close, in bytes.
const rightsizeGrain = 8 << 20

// A limitProbe is the guarded service under the load at one limit.
type limitProbe struct {
	Limit     int64
	ShedShare float64
	Killed    bool
	// Recommended is the guard's last recommendation of the run, bytes;
	// 0 if it made none.
	Recommended int64
}

// serves reports whether the limit served the load: not killed, and shed
// at most rightsizeShed of it.
func (p limitProbe) serves() bool { return !p.Killed && p.ShedShare <= rightsizeShed }

func (p limitProbe) String() string {
	s := fmt.Sprintf("%s: shed %.1f%%", mib(p.Limit), 100*p.ShedShare)
	if p.Killed {
		s += ", killed"
	}
	if p.Recommended > 0 {
		s += ", recommends " + mib(p.Recommended)
	}
	return s
}

// rightsizeResult is the whole right-sizing run.
type rightsizeResult struct {
	Rate        float64 // the uniform shape's base rate; the spike is spikeFactor times it
	First       limitProbe
	AtRecommend limitProbe
	Smallest    int64 // the smallest limit found to serve the load; 0 if none did
	Probes      []limitProbe
}

// rightsize tests the guard's recommendation (Snapshot.RecommendedLimit)
// end to end. The uniform shape's load, a spike of spikeFactor times its
// base rate, makes the guarded service shed at -limit-mib; the guard's last
// recommendation of that run, R, is the limit it says would have served
// the load without shedding. The same load then runs in a cgroup of R,
// which must serve it, and a bisection between -limit-mib and R finds
// the smallest limit that does, which R must not exceed by more than
// rightsizeRatio.
func (h *harness) rightsize(ctx context.Context) (rightsizeResult, error) {
	c := h.cfg
	uniform := matrix(matrixOptions{shapes: []string{shapeUniform}, workBytes: c.matrix.workBytes, workHold: c.matrix.workHold})[0]
	res := rightsizeResult{Rate: c.rate}
	if res.Rate <= 0 {
		fmt.Printf("== calibration: the uniform shape (%s)\n", uniform.describe())
		cal, err := h.calibrate(ctx, uniform, modeBare)
		if err != nil {
			return res, err
		}
		res.Rate = cal.Rate
	}
	sched := uniform.schedule(c.durations, res.Rate, c.limit)
	fmt.Printf("\n== right-sizing: %s; load: %s\n", uniform.describe(), sched)
	n := 0
	probe := func(limit int64) (limitProbe, error) {
		n++
		s := uniform
		s.Limit = limit
		sr := &shapeRun{Shape: s, BaseRate: res.Rate, Schedule: sched}
		r, err := h.runOnce(ctx, sr, modeOomguard, 0, fmt.Sprintf("rightsize-%d-%dMiB", n, limit>>20), sched, sizeSeed)
		if err != nil {
			return limitProbe{}, err
		}
		p := limitProbe{Limit: limit, ShedShare: r.Result.ShedShare, Killed: r.Result.DiedAtSeconds != nil, Recommended: lastRecommendation(r.Samples)}
		fmt.Printf("  %s\n", p)
		res.Probes = append(res.Probes, p)
		return p, nil
	}

	var err error
	if res.First, err = probe(c.limit); err != nil {
		return res, err
	}
	if res.First.serves() {
		return res, fmt.Errorf("the load did not overload %s (shed %.1f%%): nothing to right-size; raise -rate", mib(c.limit), 100*res.First.ShedShare)
	}
	r := res.First.Recommended
	if r == 0 {
		return res, fmt.Errorf("the guard shed %.1f%% at %s but recommended no limit", 100*res.First.ShedShare, mib(c.limit))
	}
	r = (r + 1<<20 - 1) &^ (1<<20 - 1) // cgroup limits in whole MiB
	if res.AtRecommend, err = probe(r); err != nil {
		return res, err
	}

	res.Smallest, err = smallestServing(c.limit, r, res.AtRecommend.serves(), c.limit*8, probe)
	return res, err
}

// smallestServing bisects for the smallest limit that serves the load,
// with lo known not to, and r a limit already probed (servesAtR says how it
// went). If r does not serve the load either, limits double from it, up to
// most, until one does; 0 if none does.
func smallestServing(lo, r int64, servesAtR bool, most int64, probe func(limit int64) (limitProbe, error)) (int64, error) {
	hi := int64(0)
	if servesAtR {
		hi = r
	} else {
		lo = r
		for l := 2 * r; hi == 0 && l <= most; l *= 2 {
			p, err := probe(l)
			if err != nil {
				return 0, err
			}
			if p.serves() {
				hi = l
			} else {
				lo = l
			}
		}
		if hi == 0 {
			return 0, nil
		}
	}
	for hi-lo > max(rightsizeGrain, lo/32) {
		mid := (lo + (hi-lo)/2) &^ (1<<20 - 1)
		p, err := probe(mid)
		if err != nil {
			return 0, err
		}
		if p.serves() {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, nil
}

// lastRecommendation is the guard's last nonzero recommendation among the
// samples: the recommendation covers the load of the last minutes, so the
// last one made covers the whole run.
func lastRecommendation(samples []sample) int64 {
	for i := len(samples) - 1; i >= 0; i-- {
		if samples[i].Recommended > 0 {
			return samples[i].Recommended
		}
	}
	return 0
}

// check returns the bars the run missed, shedBar the most the recommended
// limit may shed (rightsizeShed, or rightsizeShedQuick).
func (r rightsizeResult) check(shedBar float64) []string {
	var failed []string
	if r.AtRecommend.Killed {
		failed = append(failed, fmt.Sprintf("killed at the recommended %s", mib(r.AtRecommend.Limit)))
	}
	if r.AtRecommend.ShedShare > shedBar {
		failed = append(failed, fmt.Sprintf("shed %.1f%% at the recommended %s, want at most %.0f%%", 100*r.AtRecommend.ShedShare, mib(r.AtRecommend.Limit), 100*shedBar))
	}
	switch {
	case r.Smallest == 0:
		failed = append(failed, "no limit tried served the load")
	case float64(r.AtRecommend.Limit) > rightsizeRatio*float64(r.Smallest):
		failed = append(failed, fmt.Sprintf("recommended %s, %.2f times the smallest limit that serves the load (%s), want at most %.1f",
			mib(r.AtRecommend.Limit), float64(r.AtRecommend.Limit)/float64(r.Smallest), mib(r.Smallest), rightsizeRatio))
	}
	return failed
}

// print writes the run's summary.
func (r rightsizeResult) print(wall time.Duration) {
	fmt.Printf("\nright-sizing, %.0f rps base, spike %d×, in %v:\n", r.Rate, spikeFactor, wall.Round(time.Second))
	fmt.Printf("  at %s: shed %.1f%%; the guard recommends %s\n", mib(r.First.Limit), 100*r.First.ShedShare, mib(r.AtRecommend.Limit))
	fmt.Printf("  at the recommended %s: shed %.1f%%, killed %v\n", mib(r.AtRecommend.Limit), 100*r.AtRecommend.ShedShare, r.AtRecommend.Killed)
	if r.Smallest > 0 {
		fmt.Printf("  the smallest limit that serves the load (shed <= %.0f%%, not killed), bisected to %s: %s; recommended / smallest = %.2f\n",
			100*rightsizeShed, mib(max(rightsizeGrain, r.Smallest/32)), mib(r.Smallest), float64(r.AtRecommend.Limit)/float64(r.Smallest))
	}
}

// runRightsize is the -rightsize run; it returns the exit code.
func (h *harness) runRightsize(ctx context.Context, began time.Time) int {
	var err error
	if h.enf, err = newEnforcer(h.cfg.limit); err != nil {
		return fail(fmt.Errorf("-rightsize needs cgroups with a limit the kernel enforces: %w", err))
	}
	res, err := h.rightsize(ctx)
	if err != nil {
		return fail(err)
	}
	res.print(time.Since(began))
	if !h.cfg.check {
		return 0
	}
	shedBar := rightsizeShed
	if h.cfg.quick {
		shedBar = rightsizeShedQuick
	}
	if failed := res.check(shedBar); len(failed) > 0 {
		fmt.Println("CHECK FAILED:\n  " + strings.Join(failed, "\n  "))
		return 1
	}
	fmt.Println("check passed: the recommended limit served the load, within the bound of the smallest that does")
	return 0
}
