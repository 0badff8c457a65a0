package guard

import (
	"cmp"
	"errors"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"time"
)

// ErrShed is the cause of the context cancellation the guard gives
// in-flight Sheddable work at Critical.
var ErrShed = errors.New("guard: cancelled to relieve critical memory pressure")

const (
	// shareDecay is how fast a shed share may fall, per second: admission
	// comes back over a second or more, not in one step.
	shareDecay = 1.0
	// adjustEvery paces the in-flight limit.
	adjustEvery = 50 * time.Millisecond
	// maxGrow and maxCut bound one step of the in-flight limit.
	maxGrow, maxCut = 2, 0.7
	// brakeHorizon: a burst that would reach the limit sooner than this,
	// at its rate over the last burstTau, engages the in-flight limit even
	// before the levels move; admission happens before allocation, and at
	// Normal nothing else stops a burst from idle.
	brakeHorizon = 500 * time.Millisecond
	// minInFlight is the floor of the in-flight limit: some work always runs.
	minInFlight = 4
	// cancelEvery and cancelPerStep bound the cancellations at Critical.
	cancelEvery   = 100 * time.Millisecond
	cancelPerStep = 8
	// freeEvery bounds the forced GC and debug.FreeOSMemory at Critical.
	freeEvery = 30 * time.Second
	// refreshEvery: while work is refused and no GC cycle has ended for
	// this long, the guard runs one, so that committed memory is judged
	// on a fresh mark and not on garbage the last cycle saw live. Refused
	// work allocates nothing, and without allocation no GC would come.
	refreshEvery = 250 * time.Millisecond
)

// shedder turns each sample into the packed admission state. It belongs to
// the sampler goroutine.
//
// Admission judges committed memory (Snapshot.Committed): the working set
// minus the Go heap the GC can reclaim. The working set alone misleads:
// under GOMEMLIMIT it sits near GOMEMLIMIT whenever the program allocates
// fast, garbage included, and after a burst it stays there until the next
// GC cycle, which may not come while little is admitted. Shedding on it
// refuses work that fits (measured in bench/survival: goodput 0.43 of the
// base rate).
type shedder struct {
	shares      [2]float64 // sheddable, default
	limit       int64      // in-flight limit, 0 = none
	easySince   time.Time  // since when pressure allows dropping the limit
	lastAdjust  time.Time
	lastCancel  time.Time
	lastFree    time.Time
	lastRefresh time.Time
	lastStep    time.Time

	grownCycle uint64 // the GC cycle whose reading last grew the limit
	lastShed   int64  // Sheddable and Default refusals counted at the last step
}

// band is the committed pressure over which a priority's shed share rises
// from 0 to 1: Sheddable from Elevated to High, Default from High to
// Critical.
func (g *Guard) band(p Priority) (lo, hi float64) {
	t := g.cfg.Thresholds
	if p <= PrioritySheddable {
		return t.Elevated, t.High
	}
	return t.High, t.Critical
}

func bandShare(pressure, lo, hi float64) float64 {
	return math.Max(0, math.Min(1, (pressure-lo)/(hi-lo)))
}

// gcClock is what the shedder knows of the runtime's GC: the cycle count
// at the sample, and when a sample first saw that cycle. The sampler passes
// it in, so that the policy never reads the live runtime.
type gcClock struct {
	cycles   uint64
	lastGC   time.Time
	burstTTL time.Duration // time to the limit at the burst rate; negative when not growing
}

// step runs after every sample.
func (d *shedder) step(g *Guard, snap *Snapshot, gc gcClock, now time.Time) {
	dt := 0.0
	if !d.lastStep.IsZero() {
		dt = now.Sub(d.lastStep).Seconds()
	}
	d.lastStep = now

	pressure := float64(snap.Committed+g.reserved.Load()) / float64(snap.Limit)
	for i, p := range []Priority{PrioritySheddable, PriorityDefault} {
		lo, hi := g.band(p)
		if target := bandShare(pressure, lo, hi); target >= d.shares[i] {
			d.shares[i] = target
		} else {
			// Falling: only as pressure drops Hysteresis below, and slowly.
			eased := math.Max(bandShare(pressure+g.cfg.Hysteresis, lo, hi), d.shares[i]-shareDecay*dt)
			d.shares[i] = math.Min(d.shares[i], eased)
		}
	}
	// The working set at Critical or a thrashing GC: whatever the estimate
	// of committed memory says, Sheddable work waits.
	if snap.Level >= LevelCritical {
		d.shares[0] = 1
	}
	if snap.GCThrashing {
		d.shares[0] = math.Max(d.shares[0], 0.5)
	}

	d.adjustLimit(g, snap, gc, pressure, now)
	g.admission.Store(packAdmission(toShare(d.shares[0]), toShare(d.shares[1]), uint64(d.limit)))

	if snap.Level >= LevelCritical {
		g.readyAfter.Store(now.Add(g.cfg.ReadyHold).UnixNano())
		if now.Sub(d.lastCancel) >= cancelEvery {
			d.lastCancel = now
			g.cancelSheddable(cancelPerStep)
		}
		// FreeOSMemory forces a GC, then returns free pages to the OS; it
		// goes before the refresh below, which it makes needless.
		if now.Sub(d.lastFree) >= freeEvery &&
			g.background(debug.FreeOSMemory, "forced a GC and returned free memory to the OS at critical pressure") {
			d.lastFree, d.lastRefresh = now, now
		}
	}

	// Work was refused since the last step, and no GC cycle has ended for
	// refreshEvery: run one, so that the next judgement is on fresh marks.
	shed := g.shed[0].Load() + g.shed[1].Load()
	refused := shed != d.lastShed
	d.lastShed = shed
	if refused && now.Sub(gc.lastGC) >= refreshEvery && now.Sub(d.lastRefresh) >= refreshEvery &&
		g.background(runtime.GC, "forced a GC cycle to measure committed memory afresh") {
		d.lastRefresh = now
	}
}

func toShare(f float64) uint64 { return uint64(math.Round(f * shareAll)) }

// adjustLimit steers the number of requests in flight so that committed
// memory settles at the Elevated threshold: every adjustEvery the limit is
// multiplied by 1 + (target − pressure) / target, within [maxCut, maxGrow].
// Work in flight holds the memory that pressure measures, so by feedback
// the limit comes to what the headroom below the target holds. It grows
// once per GC cycle, when committed memory is exact, and to at most twice
// what is in flight, so that it never floats above the work and lets the
// next burst in at once.
//
// The limit engages when committed memory or the working set reaches High,
// or when a burst would reach the limit within brakeHorizon, starting from
// what is in flight. At Critical it is cut to half of what is in flight,
// and it is dropped once pressure has stayed easy for Dwell with well under
// the limit in flight.
func (d *shedder) adjustLimit(g *Guard, snap *Snapshot, gc gcClock, pressure float64, now time.Time) {
	if now.Sub(d.lastAdjust) < adjustEvery {
		return
	}
	d.lastAdjust = now
	t := g.cfg.Thresholds
	target := t.Elevated
	n := g.inflight.Load()
	if d.limit == 0 {
		burst := gc.burstTTL >= 0 && gc.burstTTL < brakeHorizon && snap.Pressure() >= t.Elevated/2
		if pressure < t.High && snap.Level < LevelHigh && !burst {
			return
		}
		d.limit = max(n, minInFlight)
	}
	if snap.Level >= LevelCritical {
		d.limit = max(minInFlight, min(d.limit, n/2))
		d.easySince = time.Time{}
		return
	}
	f := math.Max(maxCut, math.Min(maxGrow, 1+(target-pressure)/target))
	next := int64(math.Round(float64(d.limit) * f))
	if f > 1 {
		// Committed memory lags the work between GC cycles, low while the
		// work grows: grow once per cycle, on a reading the last cycle made
		// exact, and to at most twice what is in flight.
		if cycles := gc.cycles; cycles != d.grownCycle {
			d.grownCycle = cycles
			next = min(max(next, d.limit+1), max(d.limit, 2*n))
		} else {
			next = d.limit
		}
	}
	d.limit = max(minInFlight, next)

	if pressure >= target-g.cfg.Hysteresis || snap.Level >= LevelHigh || n > d.limit/2 {
		d.easySince = time.Time{}
		return
	}
	if d.easySince.IsZero() {
		d.easySince = now
	}
	if now.Sub(d.easySince) >= g.cfg.Dwell {
		d.limit, d.easySince = 0, time.Time{}
	}
}

// cancelSheddable cancels up to n in-flight Sheddable requests: the largest
// reservation first, then the newest.
func (g *Guard) cancelSheddable(n int) {
	g.cancellable.mu.Lock()
	victims := make([]*inflightEntry, 0, len(g.cancellable.entries))
	for e := range g.cancellable.entries {
		victims = append(victims, e)
	}
	slices.SortFunc(victims, func(a, b *inflightEntry) int {
		if c := cmp.Compare(b.reserved.Load(), a.reserved.Load()); c != 0 {
			return c
		}
		return b.start.Compare(a.start)
	})
	victims = victims[:min(n, len(victims))]
	// A cancelled request is not a candidate again while it unwinds.
	for _, e := range victims {
		delete(g.cancellable.entries, e)
	}
	g.cancellable.mu.Unlock()
	for _, e := range victims {
		e.cancel(ErrShed)
	}
	if len(victims) > 0 {
		g.cancelled.Add(int64(len(victims)))
		g.log.Warn("cancelled sheddable requests at critical pressure", slog.Int("count", len(victims)))
	}
}

// background runs f, a GC of some kind, off the sampler goroutine: it takes
// as long as a full GC cycle. One runs at a time, and Stop waits for it; it
// reports whether f was started.
func (g *Guard) background(f func(), done string) bool {
	if !g.freeing.CompareAndSwap(false, true) {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer g.freeing.Store(false)
		start := time.Now()
		f()
		g.log.Info(done, slog.Duration("took", time.Since(start)))
	}()
	return true
}
