// Package admission is the guard's admission policy. From one reading of
// memory and of the work in flight it decides how much work may run at
// once, so that the memory the work holds stays below the limit while as
// much of it as is safe gets used.
//
// The policy is pure: the caller passes every input, the clock included,
// in a Reading, and applies the Decision. Policy.OnSample is its one entry.
//
// The bound on work in flight is the most units of work n for which
//
//	base + n × (cost + runway × heapCost) + declared ≤ Critical × limit − margin − penalty
//
// and, while the GC is behind, also
//
//	goBase + (1 + gcThrashRunway) × (n × heapCost + declaredHeap) ≤ GOMEMLIMIT − penalty
//
// where limit is the effective memory limit and Critical the fraction of it
// the working set stays below; cost is the bytes one unit of work in flight
// holds, learned online, and heapCost its part on the Go heap; declared is
// the bytes that the work in flight declared, declaredHeap their part on the
// Go heap; base is the memory that is not the work's (caches, the runtime,
// leaks), and goBase its part inside the Go runtime; runway is the share of
// the work's heap kept for the garbage it makes between GC cycles; margin
// is room for the work's tail: the largest of room for its largest single
// allocations, tailZ standard deviations of its sum, and a floor for
// garbage; penalty is what readings past a warning line taught. Sizes are in
// bytes. Work that holds little gets a large bound whatever the base: a
// service with a big, stable live set is not shed for memory its requests
// do not hold. See docs/design.md, "Admission" and its subsections.
package admission

import (
	"math"
	"time"
)

// Config tunes the policy. Zero fields take their defaults.
type Config struct {
	// Critical is the fraction of the limit the working set must stay
	// below; the target for committed memory sits under it. 0 means 0.95.
	Critical float64

	// SheddableGap is how much earlier, as a fraction of the limit,
	// Sheddable work stops being admitted. 0 means 0.05.
	SheddableGap float64

	// InitialWindow is the most work admitted at once from idle, before
	// the memory it uses has been seen: a slow start. 0 means 16.
	InitialWindow int64

	// MinInFlight is the floor of the bound on Default work, and of
	// Sheddable work below Critical: some work always runs. 0 means 4.
	MinInFlight int64

	// Quiet is how long the bound remembers the work it saw: after a quiet
	// spell this long, a burst starts again from InitialWindow. 0 means 2s.
	Quiet time.Duration

	// RefreshEvery: while work is refused and no GC cycle has ended for
	// this long, the policy asks for one, so that the live heap it judges
	// is fresh. 0 means 250ms.
	RefreshEvery time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *float64, d float64) {
		if *v <= 0 || math.IsNaN(*v) {
			*v = d
		}
	}
	def(&c.Critical, 0.95)
	def(&c.SheddableGap, 0.05)
	if c.InitialWindow <= 0 {
		c.InitialWindow = 16
	}
	if c.MinInFlight <= 0 {
		c.MinInFlight = 4
	}
	c.InitialWindow = max(c.InitialWindow, c.MinInFlight)
	if c.Quiet <= 0 {
		c.Quiet = 2 * time.Second
	}
	if c.RefreshEvery <= 0 {
		c.RefreshEvery = 250 * time.Millisecond
	}
	return c
}

// Reading is one immutable reading of memory and work. Sizes are in bytes;
// counters are cumulative since the caller started, so that the policy
// takes differences itself and a missed reading loses nothing.
type Reading struct {
	Now        time.Time
	LimitBytes int64 // the effective memory limit, in bytes
	// GoMemLimit is the runtime's soft limit (GOMEMLIMIT). A live heap
	// past it keeps the GC running, and what the program allocates during
	// each cycle piles on top: the target stays below it.
	GoMemLimit int64

	// Usage is the working set. Fresh reports that Usage and OffHeap were
	// read from the kernel for this reading; between such reads the
	// caller carries them forward, adjusted by what the Go runtime says.
	Usage   int64
	Fresh   bool
	OffHeap int64 // memory outside the Go runtime: Usage minus Go's resident memory
	// OffHeapNow is the kernel's figure less Go's at this fresh reading,
	// unsmoothed, where OffHeap may follow a fall slowly: the cost model
	// regresses it on the work in flight, and a slow fall would flatten
	// the slope. 0 means OffHeap.
	OffHeapNow int64
	GoOther    int64 // Go runtime memory that is neither heap objects nor free heap

	HeapLive    int64  // heap marked live by the last GC cycle
	GCCycles    uint64 // completed GC cycles
	Alloc       uint64 // heap bytes allocated
	LargeAllocs uint64 // heap allocations over 32 KiB
	LargeBytes  uint64 // their bytes

	Admitted      uint64 // units of work admitted
	Done          uint64 // units of work done
	DeclaredTotal uint64 // declared bytes of the work admitted, in flight or done
	Declared      int64  // declared bytes of the work in flight
	LargeWaiting  int64  // the largest declared request refused since the previous reading; 0 = none
	Refusals      uint64 // units of work refused

	// Runnable is the goroutines ready to run and waiting for a P, per P,
	// now; 0 where unknown. Work admitted while many wait may not yet hold
	// its memory.
	Runnable float64

	// Critical reports the working set at or past the Critical threshold
	// now: not the level, which leaves Critical only after a dwell.
	Critical bool

	// GCThrashing reports the GC CPU limiter engaged, or the GC past its
	// share of the CPU. Alone it is no reason to shed: only when the work
	// slows down with it (see Policy.spiral).
	GCThrashing bool

	// GCBehind reports the GC unable to keep up: its CPU limiter engaged
	// (the GC wants more of the CPU than it may take, and Go's memory
	// passes GOMEMLIMIT while it waits), or the memory stalling on the
	// kernel. Then the work must fit under GOMEMLIMIT too.
	GCBehind bool

	// GCPinned reports the heap goal at the live heap: GOMEMLIMIT leaves
	// the GC no room, and it starts a cycle as soon as one ends. Like
	// GCThrashing, alone it is no reason to shed.
	GCPinned bool
}

// InFlight is the work in flight at the reading.
func (r Reading) InFlight() int64 { return int64(r.Admitted - r.Done) }

// Decision is what the caller enforces until the next reading.
type Decision struct {
	// Limit and SheddableLimit bound the units of work in flight of
	// Default and Sheddable priority. Critical work is never bounded.
	Limit, SheddableLimit int64
	// Room and SheddableRoom bound the declared bytes in flight. Declared
	// requests of LargeSize bytes or more may use all of it; smaller ones
	// must leave free the LargeReserve bytes beyond the large requests
	// already in flight, so that the largest are not starved by a stream
	// of small ones. LargeSize 0: no reserve.
	Room, SheddableRoom int64
	LargeReserve        int64
	LargeSize           int64

	Cost   int64 // learned bytes one unit of work in flight holds
	Tail   int64 // size of the largest recent single allocations, in bytes
	Target int64 // what committed memory is steered below, in bytes
	Base   int64 // bytes held by what is not work in flight
	Window int64 // the slow-start bound on work in flight, in units of work
	// TailRoom is the room in bytes to keep below Critical for the largest
	// allocations landing at once: one of them, or two while the work
	// brings them often enough that two may be in flight together.
	// GOMEMLIMIT leaves it free: the GC lets garbage fill the heap to
	// GOMEMLIMIT, and a large allocation lands before any cycle frees it.
	TailRoom int64

	RefreshGC bool // run a GC cycle: work is refused on a stale live heap

	// Leak reports the base growing over 20 s (leakWindowSecs) while the
	// work did not: likely a leak, which shedding cannot slow. LeakRate is
	// the base's growth then, in bytes per second. While it holds, the
	// bound on Default work does not fall below the work the service
	// usually had in flight.
	Leak     bool
	LeakRate float64

	// Sizing is the bound's terms apart from the limit: the limit at
	// which a given work would be admitted is Sizing.LimitFor.
	Sizing Sizing
}

// Policy is the admission policy's state. The zero value is not usable:
// make one with New. A Policy is not safe for concurrent use.
type Policy struct {
	cfg  Config
	cost costModel

	prev    Reading
	started bool

	// The heap base (base.go): the live heap the last GC cycle marked, less
	// the work in flight then.
	heapBase    float64
	gcAt        time.Time // when the last GC cycle was seen to end
	freshAt     time.Time // the last reading with the kernel's figures
	lineAt      time.Time // the last reading with a line for the CPUs (offLineRunnable)
	nSinceGC    int64     // the least work in flight since the last cycle ended
	lastRefresh time.Time // the last GC cycle asked for

	// The budgets (budget.go, margin.go, runway.go).
	thrashAt    time.Time // the last reading with the GC behind, or thrashing in a spiral
	penalty     float64   // extra margin after a warning, a fraction of the limit
	wasWarn     bool
	runway      float64   // the GC's runway measured, a share of the work's heap; at most gcRunway
	runwayAt    time.Time // its last fresh reading
	declPerUnit float64   // declared bytes per unit of work admitted, smoothed

	// The large reserve (reserve.go).
	reserve   float64 // bytes of large declared requests refused, decaying over reserveHold
	largest   int64   // the largest of them
	reserveAt time.Time

	// The slow-start window and its cuts (window.go).
	window         int64 // the slow-start bound, in units of work
	grownAt        time.Time
	peak, peakPrev int64 // most in flight in this and the previous Quiet/2
	peakAt         time.Time
	lastCut        time.Time
	lastHalved     time.Time // the last cut at Critical

	// The time in flight, for the spiral (spiral.go). Little's law: the
	// time work spends in flight is the work in flight over its admission
	// rate.
	inFlightAvg, admitRate float64   // smoothed over waitTau from 0, by the same weight
	waitWeight             float64   // that weight: the smoothing's share of the true mean
	waitSince              time.Time // since when enough work came to judge the ratio
	wait                   float64   // seconds in flight now
	calmWait               float64   // seconds in flight while the work did not spiral

	// The leak watch (leak.go).
	thru float64 // units done per second, smoothed over thruTau
	leak leakWatch

	// The slew (slew.go).
	lastBound int64     // the last bound on Default work, in units
	slewAt    time.Time // the bound may rise again slewEvery after this
	slewCap   int64     // the most the bound may be until then, in units
}

// New returns a policy with cfg's zero fields set to their defaults.
func New(cfg Config) *Policy {
	cfg = cfg.withDefaults()
	return &Policy{cfg: cfg, window: cfg.InitialWindow, runway: gcRunway}
}

// Config returns the policy's configuration, defaults filled in.
func (p *Policy) Config() Config { return p.cfg }

// OnSample feeds one reading and returns the decision to enforce until the
// next one: it observes the reading, sets the budgets and the margin,
// keeps room for large declared requests refused, moves the slow-start
// window, bounds the work in units and in declared bytes, and slews the
// bound's rise.
func (p *Policy) OnSample(r Reading) Decision {
	o := p.observe(r)
	b := p.budget(o)
	reserveBytes := p.largeReserve(o, b)
	p.slowStart(o, b)
	p.spiral(o)
	p.cut(o, b.warn)
	d := p.decide(o, b, reserveBytes)
	p.slew(&d, r.Now)
	d.RefreshGC = p.refreshGC(o)
	return d
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }

func clampBytes(f float64) int64 {
	switch {
	case f <= 0 || math.IsNaN(f):
		return 0
	case f >= math.MaxInt64/2:
		return math.MaxInt64 / 2
	}
	return int64(f)
}
