package admission

import (
	"math"
	"time"
)

// costModel learns the memory one unit of undeclared work holds while it
// runs: its mean, from the bytes the Go heap allocates per unit of work done
// and from the memory outside the Go heap that moves with the work in
// flight, and its tail, from the size of the largest single allocations.
type costModel struct {
	// Heap: bytes allocated per unit of work done, over a window that
	// closes once enough work is done. While work ramps up, fewer units are
	// done than are allocating, so the estimate errs high, the safe side.
	accAlloc  float64
	accSq     float64 // sum of squared sizes of the large allocations
	accDone   float64
	accStart  time.Time
	heap      float64 // bytes per unit; 0 = not learned yet
	heapSq    float64 // mean square of the bytes per unit, from large allocations
	heapShare float64 // weight of the estimate learned so far, 0 to 1

	// Off-heap: the slope of memory outside the Go runtime (mmap, cgo,
	// other processes' pages) on the work in flight, by exponentially
	// weighted least squares over fresh cgroup readings.
	mn, mo, mnn, mno float64
	offWeight        float64
	off              float64

	// Tail: the mean size of the large allocations (over 32 KiB) in one
	// short interval, kept as a maximum that halves every tailHalfLife.
	tail   float64
	tailAt time.Time
}

const (
	// heapWindowDone and heapWindowTime close a heap window: enough units
	// done, or enough time with some done.
	heapWindowDone = 32
	heapWindowTime = 100 * time.Millisecond
	// heapHalfLife is how many units of work halve the weight of the old
	// heap estimate.
	heapHalfLife = 256.0
	// offTau is the time constant of the off-heap regression.
	offTau = 2 * time.Second
	// tailHalfLife is how long a large allocation keeps its weight in the
	// tail: a request size seen once keeps shaping the margin for a while.
	tailHalfLife = 10 * time.Second
)

// observeHeap feeds the allocation and completions since the previous
// reading. Allocation while no work is in flight or done is not the work's.
func (m *costModel) observeHeap(now time.Time, alloc, done float64, inFlight int64) {
	if inFlight <= 0 && done <= 0 {
		return
	}
	if m.accStart.IsZero() {
		m.accStart = now
	}
	m.accAlloc += alloc
	m.accDone += done
	if m.accDone < heapWindowDone && (m.accDone == 0 || now.Sub(m.accStart) < heapWindowTime) {
		return
	}
	sample, sq := m.accAlloc/m.accDone, m.accSq/m.accDone
	w := 1 - math.Exp2(-m.accDone/heapHalfLife)
	if m.heapShare == 0 {
		m.heap, m.heapSq = sample, sq
	} else {
		m.heap += w * (sample - m.heap)
		m.heapSq += w * (sq - m.heapSq)
	}
	m.heapShare = math.Min(1, m.heapShare+w)
	m.accAlloc, m.accSq, m.accDone, m.accStart = 0, 0, 0, time.Time{}
}

// pendingHeap is the heap cost of the window not yet closed, so that a
// ramp of work that allocates before any of it is done is seen at once: all
// it allocated, per unit in flight.
func (m *costModel) pendingHeap(inFlight int64) float64 {
	if m.accAlloc <= 0 {
		return 0
	}
	return m.accAlloc / math.Max(1, m.accDone+float64(inFlight))
}

// observeOffHeap feeds one fresh reading of memory outside the Go runtime.
func (m *costModel) observeOffHeap(dt time.Duration, inFlight int64, offHeap float64) {
	n := float64(inFlight)
	a := 1.0
	if m.offWeight > 0 {
		a = 1 - math.Exp(-dt.Seconds()/offTau.Seconds())
	}
	m.mn += a * (n - m.mn)
	m.mo += a * (offHeap - m.mo)
	m.mnn += a * (n*n - m.mnn)
	m.mno += a * (n*offHeap - m.mno)
	m.offWeight = math.Min(1, m.offWeight+a)
	vn := m.mnn - m.mn*m.mn
	// The slope needs the work in flight to have varied: by at least one
	// unit, and by a tenth of its mean.
	if vn < math.Max(1, 0.01*m.mn*m.mn) {
		return
	}
	m.off = math.Max(0, (m.mno-m.mn*m.mo)/vn)
}

// observeLarge feeds the large allocations of the last interval: count and
// bytes. Within one short interval they are taken as equal in size.
func (m *costModel) observeLarge(now time.Time, count, bytes float64) {
	size := bytes / count
	m.accSq += count * size * size
	if !m.tailAt.IsZero() {
		m.tail *= math.Exp2(-now.Sub(m.tailAt).Seconds() / tailHalfLife.Seconds())
	}
	m.tailAt = now
	m.tail = math.Max(m.tail, size)
}

// spread is the standard deviation of the bytes one unit of work holds,
// from the large allocations: what makes the sum over the work in flight
// swing above its mean.
func (m *costModel) spread() float64 {
	return math.Sqrt(math.Max(0, m.heapSq-m.heap*m.heap))
}

// mean is the bytes one unit of work in flight holds, at least floor.
func (m *costModel) mean(inFlight int64, floor float64) float64 {
	return math.Max(floor, math.Max(m.heap, m.pendingHeap(inFlight))+m.off)
}
