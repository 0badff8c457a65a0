package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// runMatrix calibrates, then runs each shape in each of its modes, and
// adds the shapes to rep as they finish.
func (h *harness) runMatrix(ctx context.Context, rep *report) error {
	c := h.cfg
	shapes := matrix(c.matrix)
	calMode := modeBare
	if h.enf == nil {
		calMode = modeOomguard
	}
	uniform := matrix(matrixOptions{shapes: []string{shapeUniform}, workBytes: c.matrix.workBytes, workHold: c.matrix.workHold})[0]
	cal := calibration{Mode: "none, -rate", Rate: c.rate}
	for _, s := range shapes {
		if s.scaled() && c.rate <= 0 {
			fmt.Printf("== calibration: the uniform shape (%s)\n", uniform.describe())
			var err error
			if cal, err = h.calibrate(ctx, uniform, calMode); err != nil {
				return err
			}
			fmt.Printf("base rate %.0f rps (p99 %v), spike %.0f rps\n", cal.Rate, cal.P99.Round(time.Millisecond), spikeFactor*cal.Rate)
			break
		}
	}
	rep.Calibration = cal

	// The capacity of a CPU-bound shape, by name: its loads share it.
	capacities := map[string]calibration{}
	// The capacity's closed loop runs under GOMEMLIMIT: two scans at once
	// and the garbage of the last would pass the limit without it, and the
	// loop measures CPU, not memory.
	capMode := modeAutomemlimit
	if h.enf == nil {
		capMode = modeOomguard
	}
	for _, s := range shapes {
		sr, start := &shapeRun{Shape: s}, time.Now()
		fmt.Printf("\n== %d %s: %s\n", s.Number, s.Label, s.describe())
		if s.CPUs > 0 && h.enf == nil {
			fmt.Println("  skipped: without a cgroup the harness can set no CPU quota")
			continue
		}
		switch {
		case s.Factor > 0:
			capc, ok := capacities[s.Name]
			if !ok {
				fmt.Printf("  capacity: a closed loop of %s asks for every picture %s (%s mode)\n", count(s.cpuClients(), "client"), times(c.capacityPasses), capMode)
				var err error
				if capc, err = h.calibrateCapacity(ctx, s, capMode, c.capacityPasses); err != nil {
					return err
				}
				capacities[s.Name] = capc
				fmt.Printf("  capacity %.1f rps, p99 %v (each class weighed by its share); mean latency %s\n",
					capc.Rate, capc.P99.Round(time.Millisecond), classMeans(s.classes(), capc.ClassMeans))
			}
			sr.Calibration = capc
		case !s.calibrated():
			sr.Calibration = calibration{Mode: "none, fixed rate", Rate: s.FixedRate}
		case s.Name == shapeUniform || s.Name == shapeBurst:
			sr.Calibration = cal
		case c.rate > 0:
			sr.Calibration = calibration{Mode: cal.Mode, Rate: math.Round(cal.Rate * uniform.byteSeconds() / s.byteSeconds()), ScaledFrom: cal.Rate}
		default:
			var err error
			if sr.Calibration, err = h.calibrateScaled(ctx, s, calMode, uniform, cal); err != nil {
				return err
			}
		}
		sr.BaseRate = sr.Calibration.Rate
		sr.Schedule = s.schedule(c.durations, sr.BaseRate, h.limit(s))
		for round := 1; round <= max(1, s.Rounds); round++ {
			for _, mode := range s.modesFor(c.modes) {
				if !s.inRound(mode, round) {
					continue
				}
				if mode == modeOracle && sr.OracleCap == 0 {
					if c.oracleCap > 0 {
						sr.OracleCap = c.oracleCap
					} else if err := h.findOracleCap(ctx, sr); err != nil {
						return err
					}
				}
				name := mode
				if s.Rounds > 1 {
					name = roundName(mode, round)
				}
				fmt.Printf("  %s: %s\n", name, sr.Schedule)
				var r modeRun
				var err error
				if mode == modeOracle {
					r, err = h.runOracle(ctx, sr, round)
				} else {
					r, err = h.runMode(ctx, sr, mode, round)
				}
				if err != nil {
					return err
				}
				if s.Rounds > 1 {
					r.Result.Round = round
				}
				sr.Runs = append(sr.Runs, r)
				res := r.Result
				died := "lived"
				if res.DiedAtSeconds != nil {
					died = fmt.Sprintf("died at %.1fs (exit %d, oom_killed=%v)", *res.DiedAtSeconds, res.ExitCode, res.OOMKilled)
				}
				fmt.Printf("  %s: %s goodput=%.3f p50=%.1fms p99=%.1fms sent=%d served=%d shed=%d peak=%s\n",
					name, died, res.GoodputRatio, res.P50Ms, res.P99Ms, res.Sent, res.Served, res.Shed, mib(res.PeakUsageBytes))
			}
		}
		sr.compare()
		sr.Wall = time.Since(start)
		fmt.Printf("  (%d %s took %v)\n", s.Number, s.Label, sr.Wall.Round(time.Second))
		rep.Shapes = append(rep.Shapes, sr)
	}
	return nil
}

// count is n things in words: "1 client", "2 clients".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// times is n times in words: "once", "twice", "3 times".
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// classMeans is each class's mean latency, in words.
func classMeans(classes sizeMix, means []time.Duration) string {
	var parts []string
	for i, m := range means {
		parts = append(parts, fmt.Sprintf("%s %v", classes[i].Name, m.Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// roundName names a mode's run in a round, for the log and -check.
func roundName(mode string, round int) string {
	return fmt.Sprintf("%s (round %d)", mode, round)
}

// checked lists the shapes that -check judges: those where a guard mode ran,
// but the leak.
func (rep *report) checked() []string {
	var out []string
	for _, sr := range rep.Shapes {
		if sr.Shape.Name != shapeLeak && (sr.result(modeOomguard) != nil || sr.result(modeOomguardCost) != nil) {
			out = append(out, fmt.Sprintf("%d %s", sr.Shape.Number, sr.Shape.Label))
		}
	}
	return out
}

// check returns why the matrix fails -check, if it does: oomguard or
// oomguard+cost died in a shape but the leak, in any round; served less
// than minGoodput of the reference mode (of the base rate where none ran
// or it died), as the median of its rounds, each against its own round's
// reference; or, under a CPU quota, answered with a median p99 above
// maxQuotaP99 times the shape's calibration p99: there the reference's own
// p99 is long, and the calibration is the bar the time bound is held to.
// A shape of few requests runs in rounds because one run of it is too few
// to judge.
func (rep *report) check(minGoodput, maxQuotaP99 float64) []string {
	var failures []string
	ran := false
	for _, sr := range rep.Shapes {
		if sr.Shape.Name == shapeLeak {
			continue // a kill is expected
		}
		for _, mode := range []string{modeOomguard, modeOomguardCost} {
			var runs []Result
			for _, run := range sr.Runs {
				if run.Result.Mode == mode {
					runs = append(runs, run.Result)
				}
			}
			if len(runs) == 0 {
				continue
			}
			ran = true
			where := fmt.Sprintf("%d %s, %s:", sr.Shape.Number, sr.Shape.Label, mode)
			median := ""
			if len(runs) > 1 {
				median = fmt.Sprintf(" the median of %d rounds,", len(runs))
			}
			died := false
			for _, r := range runs {
				name := mode
				if r.Round > 0 {
					name = roundName(mode, r.Round)
				}
				at := fmt.Sprintf("%d %s, %s:", sr.Shape.Number, sr.Shape.Label, name)
				switch {
				case r.OOMKilled:
					failures = append(failures, fmt.Sprintf("%s OOM-killed at %.1f s", at, *r.DiedAtSeconds))
				case r.DiedAtSeconds != nil:
					failures = append(failures, fmt.Sprintf("%s died at %.1f s (exit %d)", at, *r.DiedAtSeconds, r.ExitCode))
				}
				died = died || r.DiedAtSeconds != nil
			}
			if died {
				continue
			}
			sum := sr.summary(mode)
			if g := sum.GoodputVsReference; g != nil {
				if *g < minGoodput {
					failures = append(failures, fmt.Sprintf("%s%s goodput %.3f of %s's, below %.2f", where, median, *g, sr.Shape.Reference, minGoodput))
				}
			} else if g := medianOf(runs, func(r Result) *float64 { return ptr(r.GoodputRatio) }); *g < minGoodput {
				failures = append(failures, fmt.Sprintf("%s%s goodput %.3f of the base rate, below %.2f", where, median, *g, minGoodput))
			}
			if sr.Shape.CPUs > 0 {
				if p := sr.calibrationP99(mode); p != nil && *p > maxQuotaP99 {
					failures = append(failures, fmt.Sprintf("%s%s p99 %.2f× the calibration's, above %.2f×", where, median, *p, maxQuotaP99))
				}
			}
		}
	}
	if !ran {
		failures = append(failures, "oomguard did not run on any shape but the leak")
	}
	return failures
}
