package guard

import (
	"cmp"
	"errors"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/oomguard/oomguard/internal/admission"
	"github.com/oomguard/oomguard/internal/latency"
)

// ErrShed is the cause of the context cancellation the guard gives
// in-flight Sheddable work at Critical.
var ErrShed = errors.New("guard: cancelled to relieve critical memory pressure")

const (
	// cancelEvery and cancelPerStep bound the cancellations at Critical.
	cancelEvery   = 100 * time.Millisecond
	cancelPerStep = 8
	// freeEvery bounds the forced GC and debug.FreeOSMemory at Critical.
	freeEvery = 30 * time.Second
)

// shedder applies the admission policy's decisions and the Critical level's
// actions. It belongs to the sampler goroutine.
type shedder struct {
	policy     *admission.Policy
	decision   admission.Decision
	time       *latency.Policy // nil with Config.DisableTimeBound
	timeDec    latency.Decision
	meter      loadMeter
	lastCancel time.Time
	lastFree   time.Time
}

// reading is the policy's view of the work in flight, read from the
// counters the hot path keeps; the sampler adds the memory.
func (g *Guard) workReading(r *admission.Reading) {
	r.Done = g.finished.Load()
	r.Admitted = g.admitted.Load()
	r.DeclaredTotal = g.declaredTotal.Load()
	r.Declared = g.declared.Load()
	r.LargeWaiting = g.largeWaiting.Swap(0)
	// Refusals for time are not the memory policy's: it would read them as
	// work its bound turned away.
	r.Refusals = uint64(g.shed[0].Load() + g.shed[1].Load() - g.shedForTime.Load())
}

// apply runs the memory policy on r and the time policy on t, publishes
// the tighter of their bounds to the hot path, and the load after them.
func (d *shedder) apply(g *Guard, r admission.Reading, t latency.Reading) {
	dec := d.policy.OnSample(r)
	d.decision = dec
	if d.time != nil {
		d.timeDec = d.time.OnSample(t)
	}
	g.publishBounds(dec, d.timeDec)
	g.load.set(d.meter.next(loadReading{
		now:       r.Now,
		admitted:  r.Admitted,
		refused:   uint64(g.shed[0].Load() + g.shed[1].Load() + g.shed[2].Load() + g.shedLate.Load()),
		inFlight:  r.InFlight(),
		declared:  r.Declared,
		cost:      dec.Cost,
		target:    dec.Target,
		base:      dec.Base,
		timeLimit: d.timeDec.Limit,
		usage:     r.Usage,
		limit:     r.LimitBytes,
	}))
	if dec.RefreshGC {
		g.background(runtime.GC, "forced a GC cycle to measure the live heap afresh while refusing work")
	}
}

// publishBounds hands the bounds of dec, for memory, and t, for time, to
// the hot path.
func (g *Guard) publishBounds(dec admission.Decision, t latency.Decision) {
	g.room.Store(dec.Room)
	g.sheddableRoom.Store(dec.SheddableRoom)
	g.largeReserve.Store(dec.LargeReserve)
	g.largeSize.Store(dec.LargeSize)
	g.ceiling.Store(ceilingOf(dec))
	g.timeTighter.Store(t.Limit > 0 && t.Limit < dec.Limit)
	g.shortest.Store(int64(t.Shortest))
	g.limits.Store(uint64(packLimits(dec, t)))
}

// ceilingOf is the most bytes one unit of work may declare under dec: the
// target, below which all admitted work must fit.
func ceilingOf(dec admission.Decision) int64 {
	if dec.Target <= 0 || dec.Target >= unarmedCeiling {
		return unarmedCeiling
	}
	return dec.Target
}

// atCritical runs the Critical level's actions after a full sample.
func (d *shedder) atCritical(g *Guard, now time.Time) {
	g.readyAfter.Store(now.Add(g.cfg.ReadyHold).UnixNano())
	if now.Sub(d.lastCancel) >= cancelEvery {
		d.lastCancel = now
		g.cancelSheddable(cancelPerStep)
	}
	if now.Sub(d.lastFree) >= freeEvery &&
		g.background(debug.FreeOSMemory, "forced a GC and returned free memory to the OS at critical pressure") {
		d.lastFree = now
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
		g.log.Debug(done, slog.Duration("took", time.Since(start)))
	}()
	return true
}
