package admission

import (
	"math"
	"time"
)

const (
	// leakWindowSecs is the span the leak watch compares, in seconds;
	// leakGrowth is the least growth of the base over it that is a leak,
	// as a fraction of the limit.
	leakWindowSecs = 20
	leakGrowth     = 0.05
	// thruTau smooths the throughput the leak watch compares.
	thruTau = time.Second
)

// leakFloor watches for a leak and returns the floor of the bound on
// Default work: MinInFlight, or during a leak the work the service usually
// had in flight, since shedding cannot slow a leak (see design.md, "A leak
// is not load"). It also returns whether a leak is suspected and the
// base's growth, in bytes per second.
func (p *Policy) leakFloor(o *observation, baseBytes, limitBytes float64) (leak bool, rate float64, floorUnits int64) {
	if o.dt > 0 {
		secs := o.dt.Seconds()
		p.thru += (1 - math.Exp(-secs/thruTau.Seconds())) * (o.doneUnits/secs - p.thru)
	}
	leak, rate, usual := p.leak.observe(o.r.Now, baseBytes, float64(o.inFlight), p.thru, limitBytes)
	floorUnits = p.cfg.MinInFlight
	if leak {
		floorUnits = max(floorUnits, int64(usual))
	}
	return leak, rate, floorUnits
}

// leakWatch tells a leak from load: once a second it records the base (the
// memory the work in flight does not explain), the work in flight and the
// throughput; a leak is the base grown by at least leakGrowth of the limit
// over leakWindowSecs, in most of its seconds, while the work and its rate
// grew by less than a tenth.
type leakWatch struct {
	ring  [leakWindowSecs + 1]leakPoint
	next  int
	count int
	at    time.Time
	leak  bool
	rate  float64 // the base's growth, in bytes per second
	usual float64 // the units of work usually in flight
}

type leakPoint struct {
	baseBytes, inFlight, thru float64
}

// observe feeds one reading; it returns whether a leak is suspected, the
// base's growth in bytes per second, and the units of work usually in
// flight.
func (w *leakWatch) observe(now time.Time, baseBytes, inFlight, thru, limitBytes float64) (bool, float64, float64) {
	if now.Sub(w.at) < time.Second && !w.at.IsZero() {
		return w.leak, w.rate, w.usual
	}
	if now.Before(w.at) {
		*w = leakWatch{} // the clock went back: start over
	}
	w.at = now
	w.ring[w.next] = leakPoint{baseBytes: baseBytes, inFlight: inFlight, thru: thru}
	w.next = (w.next + 1) % len(w.ring)
	w.count = min(w.count+1, len(w.ring))
	if w.count < len(w.ring) {
		return false, 0, 0
	}
	oldest := w.ring[w.next]
	rising, meanInFlight := 0, 0.0
	for i := range leakWindowSecs {
		earlier, later := w.ring[(w.next+i)%len(w.ring)], w.ring[(w.next+i+1)%len(w.ring)]
		if later.baseBytes >= earlier.baseBytes {
			rising++
		}
		meanInFlight += later.inFlight / leakWindowSecs
	}
	grew := baseBytes - oldest.baseBytes
	w.leak = grew >= leakGrowth*limitBytes && rising >= leakWindowSecs*7/10 &&
		inFlight <= 1.1*oldest.inFlight+1 && thru <= 1.1*oldest.thru+1
	w.rate, w.usual = 0, 0
	if w.leak {
		w.rate, w.usual = grew/leakWindowSecs, meanInFlight
	}
	return w.leak, w.rate, w.usual
}
