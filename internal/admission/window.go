package admission

import (
	"math"
	"time"
)

const (
	// proofTime is how long the work may hold half the slow-start window or
	// more, with no reading past a warning line, before the window doubles;
	// also how long after a cut the window does not grow.
	proofTime = 250 * time.Millisecond
	// cutEvery paces the cuts while the working set stays at Critical:
	// work in flight takes time to end and give its memory back.
	cutEvery = 100 * time.Millisecond
)

// slowStart moves the slow-start window, which bounds the work in flight
// whatever the model says until the memory the work uses has been seen.
// From idle, or after Quiet, it starts at InitialWindow, fewer where the
// largest allocations would not fit. It grows by the work done while at
// least half of it is used, doubling once per duration of the work, and
// doubles after a GC cycle or proofTime at half of it, so that long-lived
// work gets in when memory holds it. It does not grow past a warning line,
// in a spiral, nor within proofTime of a cut, and it never floats more than
// twice above the most work seen over Quiet (see design.md, "Slow start,
// and long-lived work").
func (p *Policy) slowStart(o *observation, b *budget) {
	r, n, cfg := o.r, o.inFlight, &p.cfg
	p.trackPeak(r.Now, n)
	initial := cfg.InitialWindow
	if b.tailBytes > 0 {
		fit := (b.targetBytes() - b.baseBytes) / math.Max(b.tailBytes, o.costBytes)
		initial = clamp(int64(fit), cfg.MinInFlight, cfg.InitialWindow)
	}
	if 2*n >= p.window && !p.spiraling(r) && !b.warn && r.Now.Sub(p.lastCut) >= proofTime {
		p.window += int64(o.doneUnits)
		if r.GCCycles != o.prev.GCCycles || r.Now.Sub(p.grownAt) >= proofTime {
			p.window, p.grownAt = 2*p.window, r.Now
		}
	} else {
		p.grownAt = r.Now
	}
	p.window = max(initial, min(p.window, 2*max(p.peak, p.peakPrev)+initial))
}

// trackPeak keeps the most work in flight over the last Quiet, as two
// halves.
func (p *Policy) trackPeak(now time.Time, n int64) {
	if now.Sub(p.peakAt) >= p.cfg.Quiet/2 {
		p.peakPrev, p.peak, p.peakAt = p.peak, 0, now
	}
	p.peak = max(p.peak, n)
}

// cut lowers the window when the model was wrong. A reading at Critical
// halves the work in flight, at most every cutEvery, and only a halving
// paces the next: paced by a cut at the warning line too, a costlier class
// of work replacing cheaper work as it ended could go on past the limit
// under a bound held at the work in flight. Past the warning line the work
// stops growing and eases (see design.md, "When the model is wrong").
func (p *Policy) cut(o *observation, warn bool) {
	r, n, floor := o.r, o.inFlight, p.cfg.MinInFlight
	switch {
	case r.Critical && r.Now.Sub(p.lastHalved) >= cutEvery:
		p.window = max(floor, min(p.window, n/2))
		p.lastCut, p.lastHalved = r.Now, r.Now
	case r.Now.Sub(p.lastCut) < cutEvery:
	case warn:
		p.window, p.lastCut = max(floor, min(p.window, n*9/10)), r.Now
	}
}
