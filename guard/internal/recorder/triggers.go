package recorder

import (
	"fmt"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/profile"
)

const (
	// hwmStep is how far past the last high-water mark usage must climb, as
	// a fraction of the limit, to count as a new one.
	hwmStep = 0.05
	// hwmPerClimb bounds the high-water-mark profiles between two returns
	// to Normal.
	hwmPerClimb = 3
	// hwmReset forgets the high-water mark after an hour, so a slow leak
	// over days still leaves fresh evidence.
	hwmReset = time.Hour
	// criticalPerClimb bounds the profiles taken while Critical lasts.
	criticalPerClimb = 8
	// lastMomentsPressure triggers a last-moments profile once per climb.
	lastMomentsPressure = 0.98
)

// lastMomentsTTL are the times to the limit, at the current growth, at
// which a last-moments profile is written, each once per climb: the last
// nearer the kill the slower the climb, and an earlier one stands if a
// write too near the limit cannot finish.
var lastMomentsTTL = [...]time.Duration{2 * time.Second, 1200 * time.Millisecond, 600 * time.Millisecond}

// Triggers runs after every sample of the guard, rd the reading and prev
// the level before it, and asks for a profile when pressure rose a level,
// usage set a new high-water mark, or the limit is near; and for the state
// record when it has news. afterGC says a GC cycle ended since the last
// sample: a profile's pair is taken then. It is called from one goroutine,
// the sampler's.
//
// now is the sampler's steady clock (rd.Time is the wall clock's).
func (r *Recorder) Triggers(prev level.Level, rd *Reading, now time.Time, afterGC bool) {
	if rd.Level == level.Normal {
		r.hwmCount, r.critCount, r.ttlFired, r.crossed, r.lastTTL, r.lastPressure = 0, 0, false, [4]bool{}, 0, false
		r.mu.Lock()
		r.climbFirst = ""
		r.mu.Unlock()
	}
	if rd.Level != prev || rd.Level >= level.High && now.Sub(r.stateAt) >= stateEvery {
		r.stateAt = now
		if rec := r.record(rd, false); rd.Level != prev || r.stateLast.news(rec) {
			r.stateLast = rec
			r.mu.Lock()
			r.state = &rec
			r.stateSync = r.stateSync || rd.Level != prev
			r.mu.Unlock()
			r.poke()
		}
	}
	if !r.hwmAt.IsZero() && now.Sub(r.hwmAt) >= hwmReset {
		r.hwm, r.hwmAt = 0, time.Time{}
	}
	step := int64(hwmStep * float64(rd.Limit))
	var reason string
	var force, critical bool
	switch {
	case rd.Level > prev && rd.Level >= level.Elevated && !r.crossed[rd.Level]:
		// Once per level per climb: a level flapping under GC thrash must
		// not rotate the first profiles of the incident away.
		r.crossed[rd.Level] = true
		reason, force = "level "+rd.Level.String(), true
		critical = rd.Level == level.Critical
	case rd.Level >= level.High && r.lastTTL < len(lastMomentsTTL) && rd.TimeToLimit >= 0 && rd.TimeToLimit < lastMomentsTTL[r.lastTTL]:
		// The last moments before a kill: the evidence closest to it.
		// Writing one allocates about a megabyte, which the limit may not
		// have; the state record has been written first. Steps passed at
		// once give one profile.
		for r.lastTTL < len(lastMomentsTTL) && rd.TimeToLimit < lastMomentsTTL[r.lastTTL] {
			r.lastTTL++
		}
		reason, force = fmt.Sprintf("last moments: limit in %.1fs", rd.TimeToLimit.Seconds()), true
	case rd.Level >= level.High && !r.lastPressure && rd.Pressure >= lastMomentsPressure:
		r.lastPressure = true
		reason, force = fmt.Sprintf("last moments: %.3f of the limit", rd.Pressure), true
	case rd.Level >= level.Critical && r.critCount < criticalPerClimb && now.Sub(r.critAt) >= r.cfg.MinInterval:
		// At Critical the kill may come at any moment, and the working set
		// may sit still while the kernel's count of the cgroup's pages
		// rises: a profile every MinInterval after the last one asked for
		// at Critical, so that the last is at most about that old when the
		// kernel strikes. It is forced, as the store's own interval counts
		// from a last-moments profile or a pair, and would refuse it.
		r.critCount++
		reason, force = "still critical", true
	case rd.Level >= level.Elevated && rd.Usage > r.hwm+step && r.hwmCount < hwmPerClimb:
		r.hwmCount++
		reason = "high-water mark"
	case rd.Level >= level.Elevated && !r.ttlFired && rd.TimeToLimit >= 0 && rd.TimeToLimit < r.cfg.BeforeLimit:
		r.ttlFired = true
		reason = fmt.Sprintf("limit in %.1fs", rd.TimeToLimit.Seconds())
	case afterGC && r.pairAfter.Load() != pairNone:
		if rd.Level >= level.Critical {
			r.critAt = now
		}
		r.queue(rd, PairReason, true, "", r.pairAfter.Swap(pairNone) == pairOnDemand)
		return
	default:
		return
	}
	if force && rd.Level >= level.Critical {
		r.critAt = now
	}
	if rd.Usage > r.hwm {
		r.hwm, r.hwmAt = rd.Usage, now
	}
	r.Request(rd, reason, force)
	if critical {
		// Leaked goroutines are a common cause of slow growth; and what
		// ran just before, when the flight recorder is on.
		r.queue(rd, reason, true, profile.KindGoroutine, false)
		if r.flight != nil {
			r.queue(rd, reason, true, profile.KindTrace, false)
		}
	}
}
