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
	// adjustEvery paces the in-flight limit's increases and decreases.
	adjustEvery = 50 * time.Millisecond
	// minInFlight is the floor of the in-flight limit: some work always runs.
	minInFlight = 4
	// cancelEvery and cancelPerStep bound the cancellations at Critical.
	cancelEvery   = 100 * time.Millisecond
	cancelPerStep = 8
	// freeEvery bounds the forced GC and debug.FreeOSMemory at Critical.
	freeEvery = 30 * time.Second
)

// shedder turns each sample into the packed admission state. It belongs to
// the sampler goroutine.
type shedder struct {
	shares     [2]float64 // sheddable, default
	limit      int64      // in-flight limit, 0 = none
	lastAdjust time.Time
	lastCancel time.Time
	lastFree   time.Time
	lastStep   time.Time
}

// band is the pressure range over which a priority's shed share rises from
// 0 to 1: Sheddable from High to Critical, Default from halfway between High
// and Critical up to the limit.
func (g *Guard) band(p Priority) (lo, hi float64) {
	t := g.cfg.Thresholds
	if p == PrioritySheddable {
		return t.High, t.Critical
	}
	return (t.High + t.Critical) / 2, 1
}

func bandShare(pressure, lo, hi float64) float64 {
	return math.Max(0, math.Min(1, (pressure-lo)/(hi-lo)))
}

// step runs after every sample.
func (d *shedder) step(g *Guard, snap *Snapshot, now time.Time) {
	dt := 0.0
	if !d.lastStep.IsZero() {
		dt = now.Sub(d.lastStep).Seconds()
	}
	d.lastStep = now

	pressure := float64(snap.Usage+g.reserved.Load()) / float64(snap.Limit)
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
	if snap.Level >= LevelCritical {
		d.shares[0] = 1
	}
	if snap.GCThrashing {
		d.shares[0] = math.Max(d.shares[0], 0.5)
	}

	d.adjustLimit(g, snap, now)
	g.admission.Store(packAdmission(toShare(d.shares[0]), toShare(d.shares[1]), uint64(d.limit)))

	if snap.Level >= LevelCritical {
		g.readyAfter.Store(now.Add(g.cfg.ReadyHold).UnixNano())
		if now.Sub(d.lastCancel) >= cancelEvery {
			d.lastCancel = now
			g.cancelSheddable(cancelPerStep)
		}
		if now.Sub(d.lastFree) >= freeEvery {
			d.lastFree = now
			g.freeMemory()
		}
	}
}

func toShare(f float64) uint64 { return uint64(math.Round(f * shareAll)) }

// adjustLimit is additive-increase, multiplicative-decrease on the number
// of requests in flight: halved at Critical, cut by an eighth while High
// and still growing, raised while pressure eases, removed at Normal.
func (d *shedder) adjustLimit(g *Guard, snap *Snapshot, now time.Time) {
	if now.Sub(d.lastAdjust) < adjustEvery {
		return
	}
	d.lastAdjust = now
	n := g.inflight.Load()
	cur := d.limit
	if cur == 0 {
		cur = math.MaxInt64
	}
	switch {
	case snap.Level >= LevelCritical:
		d.limit = max(minInFlight, min(cur, n/2))
	case snap.Level == LevelHigh && snap.GrowthRate > 0:
		d.limit = max(minInFlight, min(cur, n-n/8))
	case d.limit == 0:
	case snap.Level == LevelNormal:
		d.limit = 0
	case snap.Level == LevelHigh:
		d.limit++
	default:
		d.limit += max(1, d.limit/8)
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

// freeMemory forces a GC and returns freed memory to the OS, off the
// sampler goroutine: it takes as long as a full GC cycle.
func (g *Guard) freeMemory() {
	if !g.freeing.CompareAndSwap(false, true) {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer g.freeing.Store(false)
		start := time.Now()
		runtime.GC()
		debug.FreeOSMemory()
		g.log.Warn("forced GC and returned free memory to the OS at critical pressure", slog.Duration("took", time.Since(start)))
	}()
}
