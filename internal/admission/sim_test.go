package admission

import (
	"math"
	"math/rand/v2"
	"time"
)

// sim is a service in a simulated clock: work arrives, is admitted by the
// policy's last decision, holds memory on the Go heap and outside it for a
// while, and ends. The Go heap's live figure moves only at GC cycles, as
// the runtime's does; a cycle ends when the heap has grown by the live heap
// (GOGC=100) or past what GOMEMLIMIT leaves it (GOMEMLIMIT less the
// runtime's own memory), and the goal is pinned when that is no more than
// the live heap. Every step feeds one reading to the policy.
type sim struct {
	p     *Policy
	now   time.Time
	limit int64
	step  time.Duration

	base     int64 // long-lived heap: a cache
	runtime  int64 // the Go runtime's own memory: stacks, metadata
	leakRate int64 // bytes per second added to base

	// shape
	rate      float64 // arrivals per second (open loop); 0 with conns
	conns     int     // closed-loop clients, no think time
	size      func(r *rand.Rand) (heap, off int64)
	hold      time.Duration
	declare   bool // the work declares its heap bytes
	critical  bool // every arrival is Critical priority
	sheddable bool // every arrival is Sheddable priority
	gcBusy    bool // the GC past its share of the CPU
	gcBehind  bool // the GC's CPU limiter engaged
	// pinnedSlow: while GOMEMLIMIT pins the heap goal at the live heap,
	// the GC runs back to back and the work in flight goes this many times
	// slower; 0 or 1, not at all. Until slowUntil it goes that much slower
	// anyway: a stall (the scheduler, a page fault storm, the load
	// generator) that may set the spiral off.
	pinnedSlow float64
	slowUntil  time.Time
	pinned     bool
	pinnedFor  time.Duration // how long the goal was pinned, in all
	hidePinned bool          // the readings do not report the goal pinned
	// garbage is what the GC leaves above the live heap beyond the
	// simulated cycles' own, as a share of the work's heap: a GC whose
	// cycles take long piles up what the work allocates meanwhile.
	garbage   float64
	inFlightS float64 // work in flight × seconds, in all
	// offLag is how long after it is admitted a job maps its memory
	// outside the Go heap: a goroutine that waits for a CPU first.
	offLag time.Duration
	// runnable is the goroutines waiting for a P, per P, the readings
	// report.
	runnable float64

	// fixedCap, if set, admits work up to this many in flight and
	// ignores the policy's decisions: the benchmark's oracle.
	fixedCap int64

	rng      *rand.Rand
	due      float64
	inflight []job
	// ordered: the jobs in flight end in the order they started, so the
	// ends are a prefix. slowed is the slowdown so far (pinnedSlow),
	// added to every job's end.
	ordered bool
	slowed  time.Duration
	// what the work in flight holds, on the heap and outside it
	workHeap, workOff int64
	dec               Decision
	lastGC            time.Time

	heapLive  int64 // as of the last GC cycle
	heapObj   int64 // live and garbage since
	alloc     uint64
	large     uint64 // allocations over 32 KiB, and their bytes
	largeB    uint64
	cycles    uint64
	admitted  uint64
	done      uint64
	declTotal uint64
	declared  int64
	largeDecl int64 // declared bytes in flight counted as large
	largeWait int64
	refusals  uint64 // refused since the start, unlike shed

	// results
	arrived, served, shed int64
	largeArrived          int64
	largeServed           int64
	peak                  int64 // highest committed memory: live work + base + off-heap
	peakUsage             int64 // highest working set: committed, garbage and the runtime
	peakInFlight          int64
}

type job struct {
	end       time.Time
	heap, off int64
	offAt     time.Time // when off is mapped; zero once it is
	declared  int64
	large     bool
}

func newSim(limit int64) *sim {
	return &sim{
		p:       New(Config{}),
		ordered: true,
		now:     time.Unix(1e9, 0),
		limit:   limit,
		step:    2 * time.Millisecond,
		rng:     rand.New(rand.NewPCG(1, 2)),
		hold:    300 * time.Millisecond,
		size:    func(*rand.Rand) (int64, int64) { return 1 << 20, 0 },
	}
}

// committed is what the work and the base really hold.
func (s *sim) committed() int64 { return s.base + s.workHeap + s.workOff }

func (s *sim) offHeap() int64 { return s.workOff }

func (s *sim) arrive() {
	heap, off := s.size(s.rng)
	s.arrived++
	large := heap+off >= 8<<20
	if large {
		s.largeArrived++
	}
	n := int64(s.admitted - s.done)
	bound := s.dec.Limit
	room := s.dec.Room
	if s.sheddable {
		bound, room = s.dec.SheddableLimit, s.dec.SheddableRoom
	}
	if s.fixedCap > 0 {
		bound, room = s.fixedCap, math.MaxInt64
	}
	var decl int64
	bigDecl := false
	if s.declare {
		decl = heap + off
		bigDecl = s.dec.LargeSize > 0 && decl >= s.dec.LargeSize
		if !bigDecl {
			room -= max(0, s.dec.LargeReserve-s.largeDecl)
		}
	}
	if !s.critical && (n+1 > bound || s.declared+decl > room) {
		s.shed++
		s.refusals++
		if decl > 0 && s.declared+decl > room && decl > s.largeWait {
			s.largeWait = decl
		}
		return
	}
	s.admitted++
	s.served++
	if large {
		s.largeServed++
	}
	s.declared += decl
	s.declTotal += uint64(decl)
	if bigDecl {
		s.largeDecl += decl
	}
	s.alloc += uint64(heap)
	if heap > 32<<10 {
		s.large++
		s.largeB += uint64(heap)
	}
	s.heapObj += heap
	s.workHeap += heap
	j := job{end: s.now.Add(s.hold - s.slowed), heap: heap, off: off, declared: decl, large: bigDecl}
	if s.offLag > 0 && off > 0 {
		j.offAt = s.now.Add(s.offLag)
	} else {
		s.workOff += off
	}
	if k := len(s.inflight); k > 0 && j.end.Before(s.inflight[k-1].end) {
		s.ordered = false
	}
	s.inflight = append(s.inflight, j)
}

// end ends a job.
func (s *sim) end(j job) {
	s.done++
	s.workHeap -= j.heap
	if j.offAt.IsZero() {
		s.workOff -= j.off
	}
	s.declared -= j.declared
	if j.large {
		s.largeDecl -= j.declared
	}
}

// run advances the simulation by d.
func (s *sim) run(d time.Duration) {
	for end := s.now.Add(d); s.now.Before(end); {
		s.now = s.now.Add(s.step)
		s.base += int64(float64(s.leakRate) * s.step.Seconds())
		s.endDue()
		s.mapDue()
		s.arrivals()
		gml := s.limit * 9 / 10
		s.collect(gml)
		s.inFlightS += float64(len(s.inflight)) * s.step.Seconds()
		s.alloc += uint64(float64(s.leakRate) * s.step.Seconds())
		c := s.committed()
		s.peak = max(s.peak, c)
		s.peakInFlight = max(s.peakInFlight, int64(len(s.inflight)))
		usage := s.heapObj + s.offHeap() + s.runtime + int64(s.garbage*float64(c-s.base-s.offHeap()))
		s.peakUsage = max(s.peakUsage, usage)
		s.dec = s.p.OnSample(s.reading(gml, usage))
		s.largeWait = 0
	}
}

// endDue ends the work due by now. A slowdown delays all the work in
// flight alike: one shift, added to every job's end.
func (s *sim) endDue() {
	if (s.pinned || s.now.Before(s.slowUntil)) && s.pinnedSlow > 1 {
		s.slowed += time.Duration(float64(s.step) * (1 - 1/s.pinnedSlow))
	}
	if s.ordered {
		i := 0
		for ; i < len(s.inflight) && !s.now.Before(s.inflight[i].end.Add(s.slowed)); i++ {
			s.end(s.inflight[i])
		}
		s.inflight = s.inflight[i:]
	} else {
		kept := s.inflight[:0]
		for _, j := range s.inflight {
			if s.now.Before(j.end.Add(s.slowed)) {
				kept = append(kept, j)
				continue
			}
			s.end(j)
		}
		s.inflight = kept
	}
	if len(s.inflight) == 0 {
		s.ordered = true
	}
}

// mapDue maps the memory outside the Go heap of the work whose lag
// (offLag) has passed.
func (s *sim) mapDue() {
	for i := range s.inflight {
		if j := &s.inflight[i]; !j.offAt.IsZero() && !s.now.Before(j.offAt) {
			s.workOff += j.off
			j.offAt = time.Time{}
		}
	}
}

// arrivals brings the work of one step: closed-loop clients fill their
// connections, an open-loop load arrives at its rate.
func (s *sim) arrivals() {
	if s.conns > 0 {
		for len(s.inflight) < s.conns {
			before := s.served
			s.arrive()
			if s.served == before {
				break // refused: the client retries on the next step
			}
		}
		return
	}
	s.due += s.rate * s.step.Seconds()
	for ; s.due >= 1; s.due-- {
		s.arrive()
	}
}

// collect runs a GC cycle at the heap goal: GOGC=100, or what GOMEMLIMIT
// (gml) leaves the heap, but not below the live heap.
func (s *sim) collect(gml int64) {
	live := s.committed() - s.offHeap()
	if s.heapObj >= min(2*max(s.heapLive, 4<<20), gml-s.runtime) {
		s.heapLive, s.heapObj = live, live
		s.cycles++
		s.lastGC = s.now
	}
	goal := max(s.heapLive, min(2*max(s.heapLive, 4<<20), gml-s.runtime))
	s.pinned = goal <= s.heapLive+s.heapLive/128
	if s.pinned {
		s.pinnedFor += s.step
	}
}

// reading is the policy's reading of the simulated service now.
func (s *sim) reading(gml, usage int64) Reading {
	return Reading{
		Now:           s.now,
		LimitBytes:    s.limit,
		GoMemLimit:    gml,
		GCPinned:      s.pinned && !s.hidePinned,
		GoOther:       s.runtime,
		GCThrashing:   s.gcBusy || s.gcBehind,
		GCBehind:      s.gcBehind,
		Usage:         usage,
		Fresh:         true,
		OffHeap:       s.offHeap(),
		HeapLive:      s.heapLive,
		GCCycles:      s.cycles,
		Alloc:         s.alloc,
		LargeAllocs:   s.large,
		LargeBytes:    s.largeB,
		Admitted:      s.admitted,
		Done:          s.done,
		DeclaredTotal: s.declTotal,
		Declared:      s.declared,
		LargeWaiting:  s.largeWait,
		Refusals:      s.refusals,
		Critical:      float64(usage) >= 0.95*float64(s.limit),
		Runnable:      s.runnable,
	}
}

// classArrives warms a service on requests of 32 KiB at 2000 a second for
// 5 s; then a share p of the requests hold size bytes instead, for d. The
// results count from the change.
func classArrives(seed uint64, p float64, size int64, d time.Duration) *sim {
	s := newSim(256 * mib)
	s.rng = rand.New(rand.NewPCG(seed, 9))
	s.base = 8 * mib
	s.rate = 2000
	s.size = func(*rand.Rand) (int64, int64) { return 32 << 10, 0 }
	s.run(5 * time.Second)
	s.reset()
	s.size = func(r *rand.Rand) (int64, int64) {
		if r.Float64() < p {
			return size, 0
		}
		return 32 << 10, 0
	}
	s.run(d)
	return s
}

// reset clears the results, keeping the state.
func (s *sim) reset() {
	s.arrived, s.served, s.shed, s.largeArrived, s.largeServed, s.peak, s.peakInFlight, s.peakUsage = 0, 0, 0, 0, 0, 0, 0, 0
	s.pinnedFor, s.inFlightS = 0, 0
}

func (s *sim) servedShare() float64 { return float64(s.served) / math.Max(1, float64(s.arrived)) }

// heavyTailed is the benchmark's heavy-tailed mix, about: 1% of the
// requests hold 24 MiB, 4% 2 MiB, the rest 32 KiB (mean 358 KiB).
func heavyTailed(r *rand.Rand) (int64, int64) {
	switch x := r.Float64(); {
	case x < 0.01:
		return 24 * mib, 0
	case x < 0.05:
		return 2 * mib, 0
	default:
		return 32 << 10, 0
	}
}
