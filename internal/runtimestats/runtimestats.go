// Package runtimestats reads the Go runtime's memory and GC signals through
// runtime/metrics, which does not stop the world (runtime.ReadMemStats does).
package runtimestats

import (
	"math"
	"runtime/metrics"
	"time"
)

// Stats is one reading of the runtime, in bytes unless noted.
type Stats struct {
	HeapLive     int64 // heap marked live by the last completed GC cycle
	HeapObjects  int64 // heap occupied by objects now, live or not yet swept
	HeapGoal     int64 // heap size at which the next GC cycle ends
	HeapFree     int64 // free heap the runtime holds but has not returned to the OS
	GoTotal      int64 // all memory mapped by the Go runtime
	GoReleased   int64 // part of GoTotal returned to the OS
	GoMemLimit   int64 // the runtime's memory limit (GOMEMLIMIT)
	GCCycles     uint64
	LimiterCycle uint64  // GC cycle in which the GC CPU limiter was last enabled; 0 = never
	GCCPUSeconds float64 // estimated CPU time the GC took from the program (assist, dedicated, pauses; not idle marking), cumulative
	CPUSeconds   float64 // GOMAXPROCS integrated over wall time, cumulative

	Runnable int64   // goroutines ready to run and waiting for a P, now
	Procs    int64   // GOMAXPROCS
	IdleCPU  float64 // CPU time the Ps had and no goroutine used, in seconds, cumulative

	Alloc       uint64 // heap bytes allocated, cumulative
	LargeAllocs uint64 // heap allocations over 32 KiB, cumulative
	LargeBytes  uint64 // their bytes, cumulative (estimated: Alloc less the small size classes)
}

// GoResident is what the Go runtime holds from the OS: mapped minus released.
func (s Stats) GoResident() int64 { return s.GoTotal - s.GoReleased }

// Reclaimable estimates the resident heap the GC and the scavenger can give
// back without the program freeing anything: objects allocated since the
// last GC cycle beyond the live heap it marked, and free heap not yet
// returned to the OS. It overestimates while the live heap grows between
// cycles, by at most one cycle's allocation.
func (s Stats) Reclaimable() int64 { return max(0, s.HeapObjects-s.HeapLive) + s.HeapFree }

const (
	heapLive     = "/gc/heap/live:bytes"
	heapObjects  = "/memory/classes/heap/objects:bytes"
	heapGoal     = "/gc/heap/goal:bytes"
	heapFree     = "/memory/classes/heap/free:bytes"
	goTotal      = "/memory/classes/total:bytes"
	goReleased   = "/memory/classes/heap/released:bytes"
	goMemLimit   = "/gc/gomemlimit:bytes"
	gcCycles     = "/gc/cycles/total:gc-cycles"
	limiterCycle = "/gc/limiter/last-enabled:gc-cycle"
	gcCPU        = "/cpu/classes/gc/total:cpu-seconds"
	gcIdleCPU    = "/cpu/classes/gc/mark/idle:cpu-seconds"
	totalCPU     = "/cpu/classes/total:cpu-seconds"
	allocBytes   = "/gc/heap/allocs:bytes"
	allocsBySize = "/gc/heap/allocs-by-size:bytes"
	runnable     = "/sched/goroutines/runnable:goroutines"
	procs        = "/sched/gomaxprocs:threads"
	idleCPU      = "/cpu/classes/idle:cpu-seconds"
)

// largeAlloc is where the runtime's size classes end: every allocation past
// it falls in the last bucket of allocs-by-size, whatever its size.
const largeAlloc = 32 << 10

// Reader reads Stats without allocating after the first call. It is not
// safe for concurrent use.
type Reader struct {
	samples []metrics.Sample
}

// NewReader returns a Reader of the signals above; one the runtime does not
// support reads as 0.
func NewReader() *Reader {
	names := []string{heapLive, heapObjects, heapGoal, heapFree, goTotal, goReleased, goMemLimit, gcCycles, limiterCycle, gcCPU, gcIdleCPU, totalCPU, allocBytes, allocsBySize, runnable, procs, idleCPU}
	r := &Reader{samples: make([]metrics.Sample, len(names))}
	for i, n := range names {
		r.samples[i].Name = n
	}
	return r
}

// Read takes one reading.
func (r *Reader) Read() Stats {
	metrics.Read(r.samples)
	var s Stats
	var large, small uint64
	for _, m := range r.samples {
		switch m.Name {
		case heapLive:
			s.HeapLive = u64(m.Value)
		case heapObjects:
			s.HeapObjects = u64(m.Value)
		case heapGoal:
			s.HeapGoal = u64(m.Value)
		case heapFree:
			s.HeapFree = u64(m.Value)
		case goTotal:
			s.GoTotal = u64(m.Value)
		case goReleased:
			s.GoReleased = u64(m.Value)
		case goMemLimit:
			s.GoMemLimit = u64(m.Value)
		case gcCycles:
			s.GCCycles = uint64(u64(m.Value))
		case limiterCycle:
			s.LimiterCycle = uint64(u64(m.Value))
		case gcCPU:
			s.GCCPUSeconds += f64(m.Value)
		case gcIdleCPU:
			// Idle mark workers only use CPU nothing else wanted.
			s.GCCPUSeconds -= f64(m.Value)
		case totalCPU:
			s.CPUSeconds = f64(m.Value)
		case allocBytes:
			s.Alloc = uint64(u64(m.Value))
		case allocsBySize:
			large, small = bySize(m.Value)
		case runnable:
			s.Runnable = u64(m.Value)
		case procs:
			s.Procs = u64(m.Value)
		case idleCPU:
			s.IdleCPU = f64(m.Value)
		}
	}
	if large > 0 {
		s.LargeAllocs = large
		s.LargeBytes = s.Alloc - min(small, s.Alloc)
	}
	return s
}

// bySize splits the allocs-by-size histogram into the count of large
// allocations and the bytes of the small ones, each counted at its size
// class (a bucket's upper bound).
func bySize(v metrics.Value) (large, smallBytes uint64) {
	if v.Kind() != metrics.KindFloat64Histogram {
		return 0, 0
	}
	h := v.Float64Histogram()
	for i, c := range h.Counts {
		if c == 0 || i+1 >= len(h.Buckets) {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		if lo >= largeAlloc {
			large += c
			continue
		}
		if !math.IsInf(hi, 1) {
			smallBytes += c * uint64(math.Max(1, hi-1))
		}
	}
	return large, smallBytes
}

// u64 returns a uint64 metric as int64, 0 where the runtime lacks it.
func u64(v metrics.Value) int64 {
	if v.Kind() != metrics.KindUint64 {
		return 0
	}
	x := v.Uint64()
	if x > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(x)
}

func f64(v metrics.Value) float64 {
	if v.Kind() != metrics.KindFloat64 {
		return 0
	}
	return v.Float64()
}

// GCCPU tracks the share of available CPU the GC took over a trailing
// window. The runtime updates its CPU estimates only at the end of a GC
// cycle, so the share is computed between such updates at least Window
// apart: a forced runtime.GC right after another cycle must not look like
// thrash. When no cycle ends for StaleAfter, the GC is not busy: 0.
type GCCPU struct {
	Window     time.Duration // 0 = 1s
	StaleAfter time.Duration // 0 = 2s

	baseGC, baseTotal float64
	baseAt            time.Time
	lastTotal         float64
	lastMove          time.Time
	fraction          float64
}

// Update feeds a reading taken at now and returns the GC CPU fraction, 0 to 1.
func (c *GCCPU) Update(s Stats, now time.Time) float64 {
	window, stale := c.Window, c.StaleAfter
	if window <= 0 {
		window = time.Second
	}
	if stale <= 0 {
		stale = 2 * time.Second
	}
	if c.baseAt.IsZero() {
		c.baseGC, c.baseTotal, c.baseAt = s.GCCPUSeconds, s.CPUSeconds, now
		c.lastTotal, c.lastMove = s.CPUSeconds, now
		return 0
	}
	if s.CPUSeconds != c.lastTotal {
		c.lastTotal, c.lastMove = s.CPUSeconds, now
	} else if now.Sub(c.lastMove) > stale {
		// Idle GC: start the next window here, so that it does not
		// average the quiet spell into the next burst of cycles.
		c.fraction = 0
		c.baseGC, c.baseTotal, c.baseAt = s.GCCPUSeconds, s.CPUSeconds, now
	}
	if dt := s.CPUSeconds - c.baseTotal; dt > 0 && now.Sub(c.baseAt) >= window {
		c.fraction = math.Max(0, math.Min(1, (s.GCCPUSeconds-c.baseGC)/dt))
		c.baseGC, c.baseTotal, c.baseAt = s.GCCPUSeconds, s.CPUSeconds, now
	}
	return c.fraction
}
