// Package admission is the guard's admission policy. From one reading of
// memory and of the work in flight it decides how much work may run at
// once, so that the memory the work holds stays below the limit while as
// much of it as is safe gets used.
//
// The policy is pure: the caller passes every input, the clock included,
// in a Reading, and applies the Decision. Policy.OnSample is its one entry.
//
// The model: memory = base + n × cost + declared, where n is the work in
// flight, cost what one unit holds (learned online), declared the bytes that
// requests said they would hold, and base everything else (caches, the
// runtime, leaks). Admission keeps that sum below a target just under the
// Critical threshold, less a margin for the largest requests seen. Work
// that holds little gets a large bound whatever the base: a service with a
// big, stable live set is not shed for memory its requests do not hold.
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
	Now   time.Time
	Limit int64 // the effective memory limit
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

	// Critical reports the working set at or past the Critical threshold
	// now: not the level, which leaves Critical only after a dwell.
	Critical bool

	// GCThrashing reports the GC CPU limiter engaged, or the GC past its
	// share of the CPU. Alone it is no reason to shed: only when the work
	// slows down with it (see Policy.OnSample).
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
	// must leave free what LargeReserve holds beyond the large requests
	// already in flight, so that the largest are not starved by a stream
	// of small ones. LargeSize 0: no reserve.
	Room, SheddableRoom int64
	LargeReserve        int64
	LargeSize           int64

	Cost   int64 // learned bytes one unit of work in flight holds
	Tail   int64 // size of the largest recent single allocations
	Target int64 // what committed memory is steered below
	Base   int64 // memory held by what is not work in flight
	Window int64 // the slow-start bound on work in flight
	// TailRoom is the room to keep below Critical for the largest
	// allocations landing at once: one of them, or two while the work
	// brings them often enough that two may be in flight together.
	// GOMEMLIMIT leaves it free: the GC lets garbage fill the heap to
	// GOMEMLIMIT, and a large allocation lands before any cycle frees it.
	TailRoom int64

	RefreshGC bool // run a GC cycle: work is refused on a stale live heap

	// Leak reports the base growing for leakWindow while the work did not:
	// likely a leak, which shedding cannot slow. LeakRate is the base's
	// growth then, in bytes per second. While it holds, the bound on
	// Default work does not fall below the work the service had in flight.
	Leak     bool
	LeakRate float64
}

const (
	// costFloor is the least a unit of work is taken to hold: a goroutine
	// stack and a request's buffers.
	costFloor = 8 << 10
	// marginFloor is the least margin below Critical, as a fraction of the
	// limit: the GC's runway for garbage between cycles.
	marginFloor = 0.025
	// marginRoomShare caps the margin's floor at this share of the room
	// the base leaves below Critical (see OnSample).
	marginRoomShare = 0.25
	// penaltyStep and penaltyDecay move the margin after the working set
	// passed the warning line: the safe point is lower than the model said.
	// gcRunway is the share of the work's heap kept for the garbage it
	// makes during a GC cycle; gcThrashRunway the same while the GC is
	// behind, when the work must also fit under GOMEMLIMIT.
	penaltyStep = 0.02
	// penaltyWorkShare bounds a step by the work's memory (see OnSample).
	penaltyWorkShare = 0.1
	penaltyMax       = 0.3
	penaltyDecay     = 0.01 // per second
	gcRunway         = 0.05
	gcThrashRunway   = 0.3
	// runwayTau is how slowly the measured runway may fall back toward
	// what the readings show (see runwayFor): it rises at once, so the
	// peak of the garbage's sawtooth between GC cycles decides it.
	runwayTau = 5 * time.Second
	// refusalBytes is what one refused request allocates, about: the HTTP
	// server's request and the 503 (measured: 2 to 5 KiB); the low end,
	// so that the cost of admitted work errs high.
	// baseFallTau is how slowly the heap base may fall (see OnSample).
	baseFallTau = time.Second
	// proofTime is how long the work may hold half the slow-start window or
	// more, with no Critical reading, before the window doubles.
	proofTime = 250 * time.Millisecond
	// cutEvery paces the cuts while the working set stays at Critical:
	// work in flight takes time to end and give its memory back.
	cutEvery = 100 * time.Millisecond
	// thruTau smooths the throughput the leak watch compares. waitTau
	// smooths the work in flight and its admission rate, whose ratio is
	// the time work spends in flight (Little's law): both over one span, so
	// that a step of the load moves both and not the ratio. spiralEvents
	// is the least work admitted over waitTau for that ratio to count.
	// calmTau smooths the calm time in flight; spiralWait is how many
	// times the calm time the work must take, with the GC in trouble,
	// before the window is cut.
	thruTau      = time.Second
	waitTau      = 250 * time.Millisecond
	spiralEvents = 25
	calmTau      = 10 * time.Second
	spiralWait   = 2.0
	// slewEvery paces the bounds' rise (see OnSample).
	slewEvery = 20 * time.Millisecond
	// thrashHold keeps the thrashing runway after the GC caught up: it
	// toggles from cycle to cycle, and each toggle moved the bound.
	thrashHold = 2 * time.Second
	// tailZ is how many standard deviations of the work's total the margin
	// holds: about one reading in a thousand passes it.
	tailZ        = 3
	refusalBytes = 2 << 10
	// reserveHold is how long a refused large request keeps room reserved.
	reserveHold = time.Second
)

// Policy is the admission policy's state. The zero value is not usable:
// make one with New. A Policy is not safe for concurrent use.
type Policy struct {
	cfg  Config
	cost costModel

	prev    Reading
	started bool

	// Heap base: the live heap the last GC cycle marked, less the work in
	// flight then.
	heapBase float64
	gcAt     time.Time
	freshAt  time.Time // the last reading with the kernel's figures
	nSinceGC int64     // the least work in flight since the last cycle ended

	window         int64 // slow-start bound
	grownAt        time.Time
	peak, peakPrev int64 // most in flight in this and the previous Quiet/2
	peakAt         time.Time
	penalty        float64 // extra margin after Critical, fraction of the limit
	wasWarn        bool
	reserve        float64 // bytes of large declared requests refused, decaying over reserveHold
	largest        int64   // the largest of them
	reserveAt      time.Time
	lastRefresh    time.Time
	lastCut        time.Time
	lastHalved     time.Time // the last cut at Critical
	lastLimit      int64
	slewAt         time.Time // the bound may rise again slewEvery after this
	thrashAt       time.Time // the last reading with the GC thrashing
	slewBase       int64
	runway         float64   // the GC's runway measured, a share of the work's heap; at most gcRunway
	runwayAt       time.Time // its last fresh reading
	declPerUnit    float64   // declared bytes per unit of work admitted, smoothed
	leak           leakWatch

	thru float64 // units done per second, smoothed over thruTau
	// Little's law: the time work spends in flight is n / admission rate.
	nAvg, admRate float64   // smoothed over waitTau from 0, by the same weight
	waitWeight    float64   // that weight: the smoothing's share of the true mean
	waitSince     time.Time // since when enough work came to judge the ratio
	wait          float64   // seconds in flight now
	calmWait      float64   // seconds in flight while the work did not spiral
}

// New returns a policy with cfg's zero fields set to their defaults.
func New(cfg Config) *Policy {
	cfg = cfg.withDefaults()
	return &Policy{cfg: cfg, window: cfg.InitialWindow, runway: gcRunway}
}

// Config returns the policy's configuration, defaults filled in.
func (p *Policy) Config() Config { return p.cfg }

// OnSample feeds one reading and returns the decision to enforce until the
// next one.
func (p *Policy) OnSample(r Reading) Decision {
	cfg := &p.cfg
	n := max(0, r.InFlight())
	if !p.started {
		p.started, p.prev, p.gcAt, p.peakAt = true, r, r.Now, r.Now
		p.heapBase = float64(r.HeapLive - r.Declared)
		p.nSinceGC = n
	}
	prev := p.prev
	p.prev = r
	dt := r.Now.Sub(prev.Now)
	if dt < 0 {
		// The clock went back: take this reading as the first of a new
		// series, keeping what was learned.
		dt = 0
	}
	done := float64(sub(r.Done, prev.Done))
	admitted := float64(sub(r.Admitted, prev.Admitted))
	// Declared work allocates what it declared, about as it starts, on
	// the heap or outside it: the rest is the cost of the undeclared work.
	// Refusals allocate a little each: a shed storm must not read as
	// costly work.
	alloc := float64(sub(r.Alloc, prev.Alloc)) - refusalBytes*float64(sub(r.Refusals, prev.Refusals))
	// Large allocations while no work is in flight or moving are not the
	// work's: a cache or an index loaded before the first request, in
	// chunks of megabytes or in one, would set the margin and lower
	// GOMEMLIMIT for requests that allocate nothing like it.
	if la := sub(r.LargeAllocs, prev.LargeAllocs); la > 0 && (n > 0 || admitted > 0 || done > 0) {
		p.cost.observeLarge(r.Now, float64(la), float64(sub(r.LargeBytes, prev.LargeBytes)))
	}
	p.cost.observeHeap(r.Now, math.Max(0, alloc), float64(sub(r.DeclaredTotal, prev.DeclaredTotal)),
		admitted, done, n)
	// The declared bytes in flight, on the heap and outside it.
	declHeap := p.cost.declHeapShare() * float64(r.Declared)
	declOff := float64(r.Declared) - declHeap
	if r.Fresh {
		off := r.OffHeapNow
		if off == 0 {
			off = r.OffHeap
		}
		off -= int64(declOff)
		// The regression weighs by the time since the last kernel reading,
		// not the last reading.
		var fdt time.Duration
		if !p.freshAt.IsZero() {
			fdt = max(0, r.Now.Sub(p.freshAt))
		}
		p.freshAt = r.Now
		p.cost.observeOffHeap(fdt, n, float64(off))
	}
	// The large allocations count in the mean as the work the bound may
	// let in holds them (see costModel.largeMean).
	p.cost.inFlight = float64(max(n, p.lastLimit))
	c := p.cost.mean(n, costFloor)
	if r.GCCycles != prev.GCCycles || r.HeapLive != prev.HeapLive {
		// A cycle ended: the live heap is exact, and what the work in
		// flight does not explain of it is base. The cycle marked at some
		// moment since the previous one ended: the least work in flight
		// over that span is what it surely saw, since work admitted in a
		// burst after the mark has not allocated into the live heap, and
		// counting it read as room that let in more of the burst. For the
		// same reason base rises at once and falls over baseFallTau.
		marked := min(n, p.nSinceGC)
		b := float64(r.HeapLive) - declHeap - float64(marked)*math.Max(p.cost.heapMean(), p.cost.pendingHeap())
		if b >= p.heapBase {
			p.heapBase = b
		} else {
			p.heapBase += (1 - math.Exp(-r.Now.Sub(p.gcAt).Seconds()/baseFallTau.Seconds())) * (b - p.heapBase)
		}
		p.gcAt, p.nSinceGC = r.Now, n
	}
	p.nSinceGC = min(p.nSinceGC, n)

	limit := float64(r.Limit)
	// The GC is behind, or the work spirals with it thrashing, or either
	// did within thrashHold: it toggles from cycle to cycle, and each
	// toggle moved the bound. A spiral with the goal pinned alone only cuts
	// the window (see spiral): the work then fits the room the goal leaves
	// as soon as it flows again, and holding it under GOMEMLIMIT on top
	// for thrashHold shed 7% of a cache's requests (0.78 of the limit,
	// 3000 a second) in a round where GOMEMLIMIT alone served them all.
	if r.GCBehind || r.GCThrashing && p.spiraling(r) {
		p.thrashAt = r.Now
	}
	behind := !p.thrashAt.IsZero() && r.Now.Sub(p.thrashAt) < thrashHold
	// GOMEMLIMIT binds while the GC is behind, where one is set below
	// Critical.
	g := float64(r.GoMemLimit)
	bounded := behind && g > 0 && g < cfg.Critical*limit
	// The margin: room for the largest requests seen, for the GC's runway,
	// and what readings past a warning line taught. One line is for the
	// whole working set: halfway from the least margin to Critical. The
	// other, while the GC is behind, is for Go's own memory: past
	// GOMEMLIMIT, halfway to Critical, the GC is losing. A GC that keeps up
	// may hold a cache and its garbage there for good: the line then read a
	// healthy cache at 0.84 of the limit as a warning every second or so,
	// and shed a fifth of its requests. Memory outside Go does not count
	// there: GOMEMLIMIT does not bound it, and work that holds it may fill
	// the room to the first line.
	warn := r.Critical || float64(r.Usage) >= cfg.Critical*limit-marginFloor*limit/2
	if bounded {
		warn = warn || float64(r.Usage-r.OffHeap) >= (g+cfg.Critical*limit)/2
	}
	if warn && !p.wasWarn {
		// The model erred in what the work holds, not in the base it
		// measures: the penalty takes at most a tenth of the work's memory
		// a step. A step of 2% of the limit took all the room of work that
		// held 5 MiB beside a cache, which shedding could not move.
		work := float64(n)*c + float64(r.Declared)
		p.penalty = math.Min(penaltyMax, p.penalty+math.Min(penaltyStep, penaltyWorkShare*work/limit))
	} else if !warn {
		p.penalty = math.Max(0, p.penalty-penaltyDecay*dt.Seconds())
	}
	p.wasWarn = warn
	// Neither part of the base is below zero. The heap's reads negative
	// when the last cycle marked less than the work in flight times its
	// cost (work admitted after the mark had not allocated yet); taken as
	// room, it let a closed-loop burst's bound rise to 232 units with a
	// base of -24 MiB, and the service was killed.
	goBase := math.Max(0, p.heapBase) + float64(r.GoOther)
	base := goBase + math.Max(0, float64(r.OffHeap)-float64(n)*p.cost.offHeap()-declOff)
	// The sum of the work in flight swings above its mean by about
	// spread × √n; tailZ of those, or room for as many of the largest
	// allocations as the work may hold at once (up to two), whichever is
	// more.
	p.cost.fadeTail(r.Now)
	tail := p.cost.tail
	nb := p.cost.inFlight
	spread := p.cost.spread()
	tailN := p.cost.tailCount(nb)
	// The floor is the garbage the work leaves between GC cycles: 2.5% of
	// the limit, but no more than a quarter of the room the base leaves
	// below Critical. The garbage is the work's, and the work fits in that
	// room; a GC whose heap sits near GOMEMLIMIT runs back to back and
	// leaves little. With the whole floor, a cache at 0.86 to 0.88 of the
	// limit beside churn that held 4 MiB was shed 8% to 79%, where
	// GOMEMLIMIT alone lived with its working set at 0.92 to 0.95.
	mfloor := math.Min(marginFloor*limit, marginRoomShare*math.Max(0, cfg.Critical*limit-base))
	marginFor := func(tails, n float64) float64 {
		return math.Max(math.Max(tail*tails, tailZ*spread*math.Sqrt(n)), mfloor) + p.penalty*limit
	}
	// Below Critical, less the margin, for everything the work holds, with
	// gcRunway on the work's own heap: what it allocates during a GC cycle
	// piles on top, in proportion to the work, not to a cache that sits
	// still. GOMEMLIMIT bounds the work too, but only while the GC is
	// behind or the work spirals (or did within thrashHold): then the
	// work's heap must fit below it with gcThrashRunway on top. A GC that
	// keeps up holds Go's memory at GOMEMLIMIT by itself, however much CPU
	// it takes, and a budget at GOMEMLIMIT then shed a healthy service
	// whose cache sat a few MiB under it: 3% to 8% of its requests at 0.84
	// of the limit, where GOMEMLIMIT alone served them all.
	target := cfg.Critical*limit - marginFor(tailN, nb)
	gml, runway := math.Inf(1), 1.0
	if bounded {
		gml, runway = g-p.penalty*limit, 1+gcThrashRunway
	}
	// GOMEMLIMIT bounds the Go runtime's memory alone: the soft budget
	// holds the base and the work's heap, not what either holds outside Go.
	// ch is also what the GC's runway is a share of.
	ch := math.Max(costFloor, c-p.cost.offHeap())
	rw := p.runwayFor(r, n, c, ch, base, behind)
	// The units that fit below t: those in flight, and as many more as the
	// room left holds, each at the cost and the bytes a unit usually
	// declares. Counted at the cost alone, declared bytes a little past t
	// took the bound to the floor: a burst of declared off-heap work 3 MiB
	// over the target cut it from 230 units to 4, and the slew took 0.7 s
	// to bring it back. Work that declares nothing is bounded as before.
	if admitted > 0 {
		m := float64(sub(r.DeclaredTotal, prev.DeclaredTotal)) / admitted
		if p.declPerUnit == 0 {
			p.declPerUnit = m
		} else {
			p.declPerUnit += 0.05 * (m - p.declPerUnit)
		}
	}
	unit := c + rw*ch
	fits := func(t float64) float64 {
		left := t - base - float64(r.Declared) - float64(n)*unit
		return float64(n) + left/(unit+p.declPerUnit)
	}
	// The room for the largest allocations follows the bound, and the
	// bound the room: room for two where the bound lets in enough work to
	// hold two leaves a bound too low to hold two. Taken as they came, the
	// two flipped: beside a cache and a large block kept live, the bound
	// went from 4 to 28 units and back. Each count below the one the
	// bound asks for is tried with the work capped where that count
	// suffices (tailLimit); the largest bound wins.
	capN := math.Inf(1)
	if tailN > 0 {
		best := fits(target)
		for k, most := 0.0, tailN; k < most; k++ {
			nk := math.Floor(p.cost.tailLimit(k))
			t := cfg.Critical*limit - marginFor(k, math.Min(nb, nk))
			if b := math.Min(fits(t), nk); b > best && nk >= float64(cfg.MinInFlight) {
				best, target, capN, tailN = b, t, nk, k
			}
		}
	}

	// Large declared requests refused: keep room for them, for a while.
	// The reserve is what was refused over about reserveHold, not the
	// largest alone: under steady overload several large requests wait at
	// once, and room for one kept the share of the largest served at a
	// third of the small ones'. Requests of half the largest or more may
	// use it; it is at most half the room.
	if dt > 0 {
		p.reserve *= math.Exp(-dt.Seconds() / reserveHold.Seconds())
	}
	if r.LargeWaiting > 0 {
		p.reserve += float64(r.LargeWaiting)
		p.largest, p.reserveAt = max(p.largest, r.LargeWaiting), r.Now
	} else if r.Now.Sub(p.reserveAt) >= reserveHold {
		p.reserve, p.largest = 0, 0
	}
	reserve := math.Min(math.Max(p.reserve, float64(p.largest)), math.Max(0, math.Min(target, gml)-base)/2)

	// The slow start: the window grows by the work done while it is used,
	// doubling once per duration of the work, and forgets after Quiet.
	p.trackPeak(r.Now, n)
	init := cfg.InitialWindow
	if tail > 0 {
		init = clamp(int64((math.Min(target, gml)-base)/math.Max(tail, c)), cfg.MinInFlight, cfg.InitialWindow)
	}
	// Not past the warning line, nor within proofTime of a cut: a GC
	// cycle that ended right after a Critical reading doubled the window
	// the reading had halved, and a costlier class of requests arriving
	// in a warmed service took memory past the limit.
	if 2*n >= p.window && !p.spiraling(r) && !warn && r.Now.Sub(p.lastCut) >= proofTime {
		p.window += int64(done)
		// Long-lived work (streams, long polls) may not end for a long
		// time: memory that held the window for a GC cycle, or for
		// proofTime, proves it as well as work done does.
		if r.GCCycles != prev.GCCycles || r.Now.Sub(p.grownAt) >= proofTime {
			p.window, p.grownAt = 2*p.window, r.Now
		}
	} else {
		p.grownAt = r.Now
	}
	p.window = max(init, min(p.window, 2*max(p.peak, p.peakPrev)+init))
	p.spiral(r, n, admitted, dt)
	switch {
	case r.Critical && r.Now.Sub(p.lastHalved) >= cutEvery:
		// Past the model: the working set reached Critical. Halve what is
		// in flight; the penalty keeps the model lower for a while. Only
		// a halving paces the next: paced by a cut at the warning line
		// too, a costlier class of requests replacing cheaper ones as
		// they ended went on past the limit under a bound held at the
		// work in flight.
		p.window = max(cfg.MinInFlight, min(p.window, n/2))
		p.lastCut, p.lastHalved = r.Now, r.Now
	case r.Now.Sub(p.lastCut) < cutEvery:
	case warn:
		// Past the warning line: stop the work from growing, and ease it.
		p.window, p.lastCut = max(cfg.MinInFlight, min(p.window, n*9/10)), r.Now
	}

	// The work that fits both budgets, less gap, in units and in
	// declared bytes. The reserve for a large declared request is kept in
	// the room, against smaller declared requests (see Decision), not in
	// the units: there it took its bytes at the cost of a unit (8 KiB for
	// declared work), and with the room full of declared work 1 MiB of
	// reserve cut the bound from 210 units to 103.
	bound := func(gap float64, floor int64) int64 {
		crit := fits(target - gap)
		soft := (gml - gap - goBase - runway*declHeap) / (runway * ch)
		return clamp(min(int64(math.Floor(math.Min(math.Min(crit, soft), capN))), p.window), floor, math.MaxInt32)
	}
	roomFor := func(gap float64) int64 {
		crit := target - gap - base - float64(n)*(c+rw*ch)
		// GOMEMLIMIT's budget holds the declared bytes that land on the
		// heap.
		soft := ((gml-gap-goBase)/runway - float64(n)*ch) / math.Max(p.cost.declHeapShare(), 1e-3)
		return clampBytes(math.Min(crit, soft))
	}
	// Default work always has MinInFlight: a service whose memory is full
	// of other things still answers; during a leak, what it had in flight.
	// Sheddable work gets none at Critical.
	if dt > 0 {
		p.thru += (1 - math.Exp(-dt.Seconds()/thruTau.Seconds())) * (done/dt.Seconds() - p.thru)
	}
	leak, leakRate, usual := p.leak.observe(r.Now, base, float64(n), p.thru, limit)
	floor := cfg.MinInFlight
	if leak {
		floor = max(floor, int64(usual))
	}
	gap := cfg.SheddableGap * limit
	shedFloor := cfg.MinInFlight
	if r.Critical {
		shedFloor = 0
	}
	// The floors hold for declared work too, at the bytes a unit usually
	// declares (declPerUnit): with Config.Cost, a leak's base left no room
	// and 11% of the light requests were shed.
	d := Decision{
		Limit:          bound(0, floor),
		SheddableLimit: bound(gap, shedFloor),
		Room:           max(roomFor(0), int64(float64(floor)*p.declPerUnit)),
		SheddableRoom:  max(roomFor(gap), int64(float64(shedFloor)*p.declPerUnit)),
		LargeReserve:   int64(reserve),
		LargeSize:      p.largest / 2,
		Cost:           int64(c),
		Tail:           int64(tail),
		TailRoom:       int64(tail * math.Max(1, tailN)),
		Target:         int64(math.Min(target, gml)),
		Base:           max(0, int64(base)),
		Window:         p.window,
		Leak:           leak,
		LeakRate:       leakRate,
	}
	// The bounds fall at once and rise by at most a slew per slewEvery:
	// work let in all at once allocates all at once, faster than the GC
	// collects; a fixed cap lets work in only as other work ends.
	if p.lastLimit > 0 && r.Now.Sub(p.slewAt) < slewEvery {
		d.Limit = min(d.Limit, p.slewBase)
	} else {
		p.slewAt, p.slewBase = r.Now, d.Limit
		if p.lastLimit > 0 {
			p.slewBase = min(d.Limit, p.lastLimit+max(cfg.MinInFlight, p.lastLimit/16))
			d.Limit = p.slewBase
		}
	}
	d.SheddableLimit = min(d.SheddableLimit, d.Limit)
	p.lastLimit = d.Limit
	if r.Refusals != prev.Refusals && r.Now.Sub(p.gcAt) >= cfg.RefreshEvery && r.Now.Sub(p.lastRefresh) >= cfg.RefreshEvery {
		d.RefreshGC, p.lastRefresh = true, r.Now
	}
	return d
}

// runwayFor is the share of the work's heap kept for the garbage the work
// piles up between GC cycles: gcRunway, less where the kernel's readings
// show less above what the model explains (the base and the work's cost).
// A GC whose live heap sits at GOMEMLIMIT runs cycle after cycle and
// leaves the work little garbage: with 210 requests of 1 MiB in flight and
// a fixed 5%, the working set sat 12 MiB below the target, and the room
// kept for garbage never made held a twentieth of the work out. The
// runway rises at once to what a reading shows and falls over runwayTau,
// so a sawtooth's peaks decide it; it is measured only where the work's
// heap is large enough to tell from noise (marginFloor of the limit), and
// returns to gcRunway where it is not, or while the GC is behind.
func (p *Policy) runwayFor(r Reading, n int64, c, ch, base float64, behind bool) float64 {
	if !r.Fresh {
		return p.runway // between the kernel's readings, Usage is carried
	}
	var dt time.Duration
	if !p.runwayAt.IsZero() {
		dt = r.Now.Sub(p.runwayAt)
	}
	p.runwayAt = r.Now
	work := float64(n) * ch
	toward := gcRunway
	if !behind && work >= marginFloor*float64(r.Limit) {
		resid := float64(r.Usage) - base - float64(n)*c - float64(r.Declared)
		toward = math.Min(gcRunway, math.Max(0, resid/work))
	}
	if toward >= p.runway {
		p.runway = toward
	} else if dt > 0 {
		p.runway += (1 - math.Exp(-dt.Seconds()/runwayTau.Seconds())) * (toward - p.runway)
	}
	return p.runway
}

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
// has a calm time too, measured in that state.
func (p *Policy) spiral(r Reading, n int64, admitted float64, dt time.Duration) {
	if dt <= 0 {
		return
	}
	secs := dt.Seconds()
	a := 1 - math.Exp(-secs/waitTau.Seconds())
	p.nAvg += a * (float64(n) - p.nAvg)
	p.admRate += a * (admitted/secs - p.admRate)
	p.waitWeight += a * (1 - p.waitWeight)
	// Both averages start from 0 with the same weight: their ratio is
	// unbiased from the start, their levels once divided by the weight.
	// The ratio holds once the averages span many times the time in
	// flight: right after a start or an idle spell it reads low.
	if p.admRate <= 0 || p.admRate/p.waitWeight*waitTau.Seconds() < spiralEvents {
		p.wait, p.waitSince = 0, time.Time{}
		return
	}
	if p.waitSince.IsZero() {
		p.waitSince = r.Now
	}
	p.wait = p.nAvg / p.admRate
	if r.Now.Sub(p.waitSince) < thruTau {
		return
	}
	if !p.spiraling(r) {
		b := 1 - math.Exp(-secs/calmTau.Seconds())
		if p.calmWait == 0 {
			b = 1
		}
		p.calmWait += b * (p.wait - p.calmWait)
		return
	}
	if r.Now.Sub(p.lastCut) < cutEvery {
		return
	}
	// From the work in flight averaged as the time in flight is: a cut
	// from a lull between two clumps of arrivals went to the floor.
	avg := p.nAvg / p.waitWeight
	grad := math.Max(0.5, p.calmWait/p.wait)
	cut := int64(avg*grad + math.Sqrt(avg))
	p.window, p.lastCut = max(p.cfg.MinInFlight, min(p.window, cut)), r.Now
}

// spiraling reports a death spiral: the GC in trouble, and the work taking
// spiralWait times as long as when it did not spiral.
func (p *Policy) spiraling(r Reading) bool {
	return (r.GCThrashing || r.GCPinned) && p.calmWait > 0 && p.wait >= spiralWait*p.calmWait
}

// trackPeak keeps the most work in flight over the last Quiet, as two
// halves.
func (p *Policy) trackPeak(now time.Time, n int64) {
	if now.Sub(p.peakAt) >= p.cfg.Quiet/2 {
		p.peakPrev, p.peak, p.peakAt = p.peak, 0, now
	}
	p.peak = max(p.peak, n)
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

// leakWatch tells a leak from load: once a second it records the base (the
// memory the work in flight does not explain), the work in flight and the
// throughput; a leak is the base grown by at least leakGrowth of the limit
// over leakWindow, in most of its seconds, while the work and its rate
// grew by less than a tenth.
type leakWatch struct {
	ring  [leakWindowSecs + 1]leakPoint
	next  int
	count int
	at    time.Time
	leak  bool
	rate  float64
	usual float64
}

type leakPoint struct {
	base, n, thru float64
}

const (
	leakWindowSecs = 20
	leakGrowth     = 0.05
)

// observe feeds one reading; it returns whether a leak is suspected, the
// base's growth in bytes per second, and the work usually in flight.
func (w *leakWatch) observe(now time.Time, base, n, thru, limit float64) (bool, float64, float64) {
	if now.Sub(w.at) < time.Second && !w.at.IsZero() {
		return w.leak, w.rate, w.usual
	}
	if now.Before(w.at) {
		*w = leakWatch{} // the clock went back: start over
	}
	w.at = now
	w.ring[w.next] = leakPoint{base: base, n: n, thru: thru}
	w.next = (w.next + 1) % len(w.ring)
	w.count = min(w.count+1, len(w.ring))
	if w.count < len(w.ring) {
		return false, 0, 0
	}
	oldest := w.ring[w.next]
	rising, meanN := 0, 0.0
	for i := range leakWindowSecs {
		a, b := w.ring[(w.next+i)%len(w.ring)], w.ring[(w.next+i+1)%len(w.ring)]
		if b.base >= a.base {
			rising++
		}
		meanN += b.n / leakWindowSecs
	}
	grew := base - oldest.base
	w.leak = grew >= leakGrowth*limit && rising >= leakWindowSecs*7/10 &&
		n <= 1.1*oldest.n+1 && thru <= 1.1*oldest.thru+1
	w.rate, w.usual = 0, 0
	if w.leak {
		w.rate, w.usual = grew/leakWindowSecs, meanN
	}
	return w.leak, w.rate, w.usual
}
