package admission

import (
	"math"
	"time"
)

const (
	// gcRunway is the most of the work's heap kept for the garbage the
	// work makes during a GC cycle: it piles on top of what the work
	// holds, in proportion to the work, not to a cache that sits still.
	gcRunway = 0.05
	// runwayTau is how slowly the measured runway may fall back toward
	// what the readings show: it rises at once, so the peaks of the
	// garbage's sawtooth between GC cycles decide it.
	runwayTau = 5 * time.Second
)

// runwayFor is the share of the work's heap kept for the garbage the work
// piles up between GC cycles: gcRunway, less where the kernel's readings
// show less above what the model explains (the base, the work at its cost
// and the declared bytes). A GC whose live heap sits at GOMEMLIMIT runs
// cycle after cycle and leaves the work little garbage. The runway rises at
// once to what a reading shows and falls over runwayTau; it is measured
// only where the work's heap is large enough to tell from noise
// (marginFloor of the limit), and returns to gcRunway where it is not, or
// while the GC is behind (see design.md, "The target, and the bound").
func (p *Policy) runwayFor(o *observation, heapCostBytes, baseBytes float64, behind bool) float64 {
	r := o.r
	if !r.Fresh {
		return p.runway // between the kernel's readings, Usage is carried
	}
	var sinceFresh time.Duration
	if !p.runwayAt.IsZero() {
		sinceFresh = r.Now.Sub(p.runwayAt)
	}
	p.runwayAt = r.Now
	workHeapBytes := float64(o.inFlight) * heapCostBytes
	toward := gcRunway
	if !behind && workHeapBytes >= marginFloor*float64(r.LimitBytes) {
		unexplained := float64(r.Usage) - baseBytes - float64(o.inFlight)*o.costBytes - float64(r.Declared)
		toward = math.Min(gcRunway, math.Max(0, unexplained/workHeapBytes))
	}
	if toward >= p.runway {
		p.runway = toward
	} else if sinceFresh > 0 {
		p.runway += (1 - math.Exp(-sinceFresh.Seconds()/runwayTau.Seconds())) * (toward - p.runway)
	}
	return p.runway
}
