// Package rightsize recommends a memory limit: while the guard sheds work
// for memory, the limit at which the load offered over the last minutes
// would have been served without shedding.
//
// The offered load is a concurrency: the work that would have been in
// flight had none been refused. By Little's law the time work spends in
// flight is the work in flight over the rate it is admitted, and the
// offered concurrency is that time at the rate it arrives, admitted and
// refused together:
//
//	N_offered = n̄ × (admitted + refused) / admitted
//
// over a horizon of seconds. The limit that admits it is the memory bound
// turned around (admission.Sizing.LimitFor), and the recommendation is the
// largest such limit over a window of minutes: a limit must hold the
// load's peaks, not its mean.
//
// The policy is pure: the caller passes every input, the clock included,
// in a Reading. See docs/design.md, "The limit that would have served".
package rightsize

import (
	"time"

	"github.com/oomguard/oomguard/internal/admission"
)

const (
	// Window is how long a recommendation covers: the largest limit the
	// offered load asked for over the last Window, so that a limit that
	// holds it also holds the peaks that recur within minutes.
	Window = 5 * time.Minute
	// SayEvery is the least time between two of Decision.Say.
	SayEvery = time.Minute
	// The offered concurrency is averaged over the shortest span back
	// from now of at least shortHorizon that saw horizonUnits arrive, and
	// at most horizon: enough units that one second's clump is not taken
	// for the load, and no longer than that, so that a spike of a few
	// seconds at a high rate still counts at its height. Whether work is
	// shed, and for what, is judged over the whole horizon.
	shortHorizon = 2 * time.Second
	horizonUnits = 200
	horizon      = 10 * time.Second
	// bucket is the step the policy keeps its counts in, and the pace of
	// its decisions.
	bucket = time.Second
)

// Reason says why a Decision recommends no limit.
type Reason string

// The reasons for no recommendation.
const (
	// NotShedding: no work was refused for memory over the last Window,
	// or none that was admitted as well: the time in flight is unknown.
	NotShedding Reason = "not shedding"
	// Leak: memory grows while the load does not; more memory would only
	// put the kill off.
	Leak Reason = "leak"
	// Time: the time bound refused most of the work refused over the
	// horizon; the CPUs, not memory, are short.
	Time Reason = "time"
)

// Reading is one reading of the work and the memory model. Counters are
// cumulative since the caller started, so that the policy takes
// differences itself and a missed reading loses nothing.
type Reading struct {
	Now time.Time
	// LimitBytes is the memory limit now. A recommendation at or below it
	// is not said: the shedding was not for want of memory at this limit
	// but, say, a slow start from idle.
	LimitBytes int64
	InFlight   int64  // units of work in flight
	Admitted   uint64 // units of work admitted
	// Shed counts the units refused by the memory bound; ShedForTime those
	// refused by the time bound or for a deadline nearer than recent work
	// took; ShedSheddable the units of Sheddable priority refused for
	// either.
	Shed, ShedForTime, ShedSheddable uint64
	// Leak reports memory growing independent of load (admission's
	// Decision.Leak).
	Leak bool
	// Sizing is the memory bound's terms at this reading.
	Sizing admission.Sizing
}

// Decision is the recommendation as of a reading.
type Decision struct {
	// Limit is the recommended memory limit in bytes: the largest that the
	// offered load asked for over the last Window; 0 when there is none,
	// and Reason says why.
	Limit  int64
	Reason Reason
	// Offered is the offered concurrency, in units of work, that asked for
	// Limit.
	Offered float64
	// Say reports that the caller should say the recommendation, or why
	// there is none, now: at most once every SayEvery, and only while
	// work is being shed for memory (a Limit above Reading.LimitBytes) or
	// a Leak or Time reason holds.
	Say bool
}

// Policy is the state between readings. The zero value is ready to use. It
// is not safe for concurrent use.
type Policy struct {
	prev    Reading
	started bool

	// The bucket in progress, from since.
	since time.Time
	cur   counts

	recent []counts // closed buckets, oldest first, covering the horizon
	peaks  []peak   // one per closed bucket that asked for a limit, oldest first

	dec    Decision
	said   bool
	saidAt time.Time
}

// counts are the work's counts over one bucket.
type counts struct {
	end                     time.Time
	seconds                 float64 // the bucket's length
	area                    float64 // units of work in flight × seconds
	admitted, shed, forTime float64
	sheddable               float64
}

func (c *counts) add(o counts) {
	c.seconds += o.seconds
	c.area += o.area
	c.admitted += o.admitted
	c.shed += o.shed
	c.forTime += o.forTime
	c.sheddable += o.sheddable
}

// peak is the limit one bucket's horizon asked for.
type peak struct {
	at      time.Time
	limit   int64
	offered float64
}

// OnSample feeds one reading and returns the recommendation. The decision
// moves once every bucket (a second); between, the last is returned, with
// Say false.
func (p *Policy) OnSample(r Reading) Decision {
	if !p.started || r.Now.Before(p.prev.Now) {
		// The first reading, or a clock that went back: start over.
		*p = Policy{started: true, prev: r, since: r.Now, recent: p.recent[:0], peaks: p.peaks[:0]}
		p.dec = Decision{Reason: NotShedding}
		return p.dec
	}
	dt := r.Now.Sub(p.prev.Now).Seconds()
	p.cur.seconds += dt
	// The work in flight at the previous reading stayed until this one.
	p.cur.area += float64(max(0, p.prev.InFlight)) * dt
	p.cur.admitted += float64(sub(r.Admitted, p.prev.Admitted))
	p.cur.shed += float64(sub(r.Shed, p.prev.Shed))
	p.cur.forTime += float64(sub(r.ShedForTime, p.prev.ShedForTime))
	p.cur.sheddable += float64(sub(r.ShedSheddable, p.prev.ShedSheddable))
	p.prev = r
	if r.Now.Sub(p.since) < bucket {
		d := p.dec
		d.Say = false
		return d
	}
	p.cur.end = r.Now
	p.recent = append(p.recent, p.cur)
	p.cur, p.since = counts{}, r.Now
	p.decide(r)
	return p.dec
}

// decide closes a bucket: it sums the horizon, records the limit its
// offered load asks for, and sets the decision.
func (p *Policy) decide(r Reading) {
	now := r.Now
	drop := 0
	for drop < len(p.recent) && now.Sub(p.recent[drop].end) >= horizon {
		drop++
	}
	p.recent = append(p.recent[:0], p.recent[drop:]...)
	var h counts
	for _, c := range p.recent {
		h.add(c)
	}
	// More memory serves what the memory bound refused, not what the
	// CPUs could not run in time: where the time bound refused as much,
	// that is the resource short.
	forTime := h.forTime > 0 && h.forTime >= h.shed
	shedding := h.shed > 0 && !forTime
	if o := p.offered(); shedding && !r.Leak && o > 0 {
		if l := r.Sizing.LimitFor(o, h.sheddable > 0); l > 0 {
			p.peaks = append(p.peaks, peak{at: now, limit: l, offered: o})
		}
	}
	drop = 0
	for drop < len(p.peaks) && now.Sub(p.peaks[drop].at) >= Window {
		drop++
	}
	p.peaks = append(p.peaks[:0], p.peaks[drop:]...)

	d := Decision{Reason: NotShedding}
	for _, k := range p.peaks {
		if k.limit > d.Limit {
			d.Limit, d.Offered = k.limit, k.offered
		}
	}
	if d.Limit > 0 {
		d.Reason = ""
	}
	switch {
	case r.Leak:
		d = Decision{Reason: Leak}
	case forTime:
		d = Decision{Reason: Time}
	}
	// Said while it lasts: a limit while work is shed for memory now, or
	// why more memory would not help.
	sayable := d.Reason == Leak || d.Reason == Time || d.Limit > r.LimitBytes && shedding
	if sayable && (!p.said || now.Sub(p.saidAt) >= SayEvery) {
		d.Say, p.said, p.saidAt = true, true, now
	}
	p.dec = d
}

// offered is the offered concurrency, by Little's law, over the newest
// buckets that span shortHorizon and saw horizonUnits arrive, or over the
// whole horizon where fewer arrived; 0 where nothing was admitted.
func (p *Policy) offered() float64 {
	var h counts
	for i := len(p.recent) - 1; i >= 0; i-- {
		h.add(p.recent[i])
		if h.seconds >= shortHorizon.Seconds() && h.admitted+h.shed+h.forTime >= horizonUnits {
			break
		}
	}
	if h.admitted <= 0 || h.seconds <= 0 {
		return 0
	}
	return h.area / h.seconds * (h.admitted + h.shed + h.forTime) / h.admitted
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}
