package admission

import "time"

// slewEvery paces the rise of the bounds on units of work.
const slewEvery = 20 * time.Millisecond

// slew lets the bound on Default work fall at once and rise by at most a
// sixteenth of itself, or MinInFlight, per slewEvery: work let in all at
// once allocates all at once, faster than the GC collects, where a fixed
// cap lets work in only as other work ends. The bound on Sheddable work
// stays within it.
func (p *Policy) slew(d *Decision, now time.Time) {
	if p.lastBound > 0 && now.Sub(p.slewAt) < slewEvery {
		d.Limit = min(d.Limit, p.slewCap)
	} else {
		p.slewAt, p.slewCap = now, d.Limit
		if p.lastBound > 0 {
			p.slewCap = min(d.Limit, p.lastBound+max(p.cfg.MinInFlight, p.lastBound/16))
			d.Limit = p.slewCap
		}
	}
	d.SheddableLimit = min(d.SheddableLimit, d.Limit)
	p.lastBound = d.Limit
}
