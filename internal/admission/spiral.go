package admission

import (
	"math"
	"time"
)

const (
	// waitTau smooths the work in flight and its admission rate, whose
	// ratio is the time work spends in flight (Little's law): both over one
	// span, so that a step of the load moves both and not the ratio.
	waitTau = 250 * time.Millisecond
	// spiralEvents is the least work admitted over waitTau for that ratio
	// to count, and waitSettle how long it must have counted: right after
	// a start or an idle spell it reads low.
	spiralEvents = 25
	waitSettle   = time.Second
	// calmTau smooths the calm time in flight; spiralWait is how many
	// times the calm time the work must take, with the GC in trouble,
	// before the window is cut.
	calmTau    = 10 * time.Second
	spiralWait = 2.0
)

// spiral cuts the window in a GC death spiral: the GC in trouble
// (thrashing, or pinned at GOMEMLIMIT) while the work takes more than
// spiralWait times as long as when it did not spiral. A GC that takes much
// CPU, or runs back to back, while the work goes as fast as before is no
// reason to shed. The cut follows the gradient of the time in flight, as
// concurrency limiters do: the window becomes n × calm/now (at least half
// of n) plus √n, n averaged over waitTau, so that it finds the concurrency
// where the work flows again instead of falling to the floor.
//
// The calm time is the time in flight whenever the work does not spiral,
// in whatever state the GC is: a cache whose GC is pinned all the time
// has a calm time too, measured in that state. See design.md, "When the
// model is wrong".
func (p *Policy) spiral(o *observation) {
	if o.dt <= 0 {
		return
	}
	if !p.observeWait(o) || o.r.Now.Sub(p.waitSince) < waitSettle {
		return
	}
	secs := o.dt.Seconds()
	if !p.spiraling(o.r) {
		calmWeight := 1 - math.Exp(-secs/calmTau.Seconds())
		if p.calmWait == 0 {
			calmWeight = 1
		}
		p.calmWait += calmWeight * (p.wait - p.calmWait)
		return
	}
	if o.r.Now.Sub(p.lastCut) < cutEvery {
		return
	}
	// From the work in flight averaged as the time in flight is: a cut
	// from a lull between two clumps of arrivals would go to the floor.
	avg := p.inFlightAvg / p.waitWeight
	gradient := math.Max(0.5, p.calmWait/p.wait)
	cut := int64(avg*gradient + math.Sqrt(avg))
	p.window, p.lastCut = max(p.cfg.MinInFlight, min(p.window, cut)), o.r.Now
}

// observeWait smooths the work in flight and its admission rate over
// waitTau and reads the time in flight from them; it reports whether
// enough work came for the ratio to count. Both averages start from 0 with
// the same weight: their ratio is unbiased from the start, their levels
// once divided by the weight.
func (p *Policy) observeWait(o *observation) bool {
	secs := o.dt.Seconds()
	weight := 1 - math.Exp(-secs/waitTau.Seconds())
	p.inFlightAvg += weight * (float64(o.inFlight) - p.inFlightAvg)
	p.admitRate += weight * (o.admittedUnits/secs - p.admitRate)
	p.waitWeight += weight * (1 - p.waitWeight)
	if p.admitRate <= 0 || p.admitRate/p.waitWeight*waitTau.Seconds() < spiralEvents {
		p.wait, p.waitSince = 0, time.Time{}
		return false
	}
	if p.waitSince.IsZero() {
		p.waitSince = o.r.Now
	}
	p.wait = p.inFlightAvg / p.admitRate
	return true
}

// spiraling reports a death spiral: the GC in trouble, and the work taking
// spiralWait times as long as when it did not spiral.
func (p *Policy) spiraling(r Reading) bool {
	return (r.GCThrashing || r.GCPinned) && p.calmWait > 0 && p.wait >= spiralWait*p.calmWait
}
