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
	// Heap: bytes allocated per unit of work, over a window that closes
	// once enough work has started and ended (see observeHeap).
	accAlloc             float64 // heap bytes allocated, declared or not
	accDecl              float64 // declared bytes of the work admitted
	accLarge             float64 // bytes of the large allocations
	accSq                float64 // sum of squared sizes of the large allocations
	accStarted, accEnded float64 // units of work started and ended (see accUnits)
	accStart             time.Time
	heap                 float64 // bytes per unit; 0 = not learned yet
	heapAll              float64 // all the heap bytes a unit allocates, declared or not: what the large allocations' sizes spread around
	// declHeap is the share of declared bytes that lands on the Go heap
	// (uploads read into a buffer: 1) rather than outside it (mmap: 0); 1
	// until declared work has been seen.
	declHeap    float64
	declHeapSet bool
	heapSq      float64 // mean square of the bytes per unit, from large allocations
	heapShare   float64 // weight of the estimate learned so far, 0 to 1

	// The large allocations' part of heap (undeclared), learned as heap
	// is, and again slowly, with heapSq, over heapSlowHalfLife units (see
	// largeMean).
	largeFast, largeSlow, sqSlow float64
	slowShare                    float64
	fastUnits                    float64 // the units in the fast estimate's horizon
	inFlight                     float64 // the work the bound may let in (see largeMean)

	// Off-heap: the slope of memory outside the Go runtime (mmap, cgo,
	// other processes' pages) on the work in flight, by exponentially
	// weighted least squares over fresh cgroup readings:
	// meanN, meanOff, meanNN and meanNOff are the weighted means of the
	// units in flight n, the bytes outside Go, n² and their product.
	meanN, meanOff, meanNN, meanNOff float64
	offWeight                        float64
	off                              float64
	offFit                           bool    // the work in flight varied enough for a slope
	offN                             float64 // meanN when off was last set to the fit
	offHeld                          bool    // off follows a fall of the fit to offFall slowly
	offFall                          float64
	// Until then, all the memory outside Go above what it was while no
	// work was in flight counts as the work's: an upper bound.
	offIdle    float64
	offIdleSet bool
	offBound   float64

	// Tail: the mean size of the large allocations (over 32 KiB) in one
	// short interval, kept as a maximum that halves every tailHalfLife.
	tail   float64
	tailAt time.Time
}

const (
	// costFloor is the least a unit of work is taken to hold: a goroutine
	// stack and a request's buffers.
	costFloor = 8 << 10
	// heapWindowUnits and heapWindowTime close a heap window: enough
	// units, or enough time with some.
	heapWindowUnits = 32
	heapWindowTime  = 100 * time.Millisecond
	// heapHalfLife is how many units of work halve the weight of the old
	// heap estimate; heapMinWeight is the least weight of one window.
	heapHalfLife  = 256.0
	heapMinWeight = 0.1
	// heapRampMinWeight and heapSlowRampMinWeight are the least weights of
	// a window that saw little of its work end, before the estimates hold
	// a full weight of evidence (see costModel.windowWeights).
	heapRampMinWeight     = 1e-3
	heapSlowRampMinWeight = 1e-4
	// declHeapWeight is the weight of one window in declHeap.
	declHeapWeight = 0.25
	// heapSlowHalfLife is the half-life, in units, of the slow estimate of
	// the large allocations; largeZ is how many standard errors the fast
	// estimate is discounted by where it holds few of them (see largeMean).
	heapSlowHalfLife = 4096.0
	largeZ           = 2
	// offTau is the time constant of the off-heap regression.
	offTau = 2 * time.Second
	// offHoldTau is the time constant at which the off-heap cost follows a
	// slope that falls while the work in flight rises.
	offHoldTau = 10 * time.Second
	// offLineRunnable is the goroutines waiting for a P, per P, that make
	// a line for the CPUs, as the time bound counts one.
	offLineRunnable = 2
	// tailHalfLife is how long a large allocation keeps its weight in the
	// tail: a request size seen once keeps shaping the margin for a while.
	tailHalfLife = 10 * time.Second
	// tailOdds is the odds the tail's room may be passed at: about what
	// tailZ standard deviations leave (one reading in a thousand).
	tailOdds = 1e-3
)

// observeHeap feeds the allocation, admissions and completions since the
// previous reading. Allocation while no work is in flight or moving is not
// the work's. The bytes per unit are the allocation over the mean of the
// units started and ended, where ends count only as far as starts match
// them: in a steady state both are the work's rate; while work ramps up
// from idle, few end, so the estimate errs high, the safe side, by at most
// twice; while it ramps down, the units are the work started, whose
// allocation the window holds (see design.md, "The model").
//
// allocBytes is every heap byte allocated, declaredBytes the declared bytes
// of the work admitted: those are reserved exactly, and the rest of the
// allocation is the undeclared cost. Declared bytes may not be on the heap
// at all (mmap): the share that is, is learned here too.
func (m *costModel) observeHeap(now time.Time, allocBytes, declaredBytes, admitted, done float64, inFlight int64) {
	if inFlight <= 0 && done <= 0 && admitted <= 0 {
		return
	}
	if m.accStart.IsZero() {
		m.accStart = now
	}
	m.accAlloc += allocBytes
	m.accDecl += declaredBytes
	m.accStarted += admitted
	m.accEnded += done
	units := m.accUnits()
	if units < heapWindowUnits && (units == 0 || now.Sub(m.accStart) < heapWindowTime) {
		if units == 0 && now.Sub(m.accStart) >= heapWindowTime {
			// Only ends for a while: no new work to charge it to.
			m.resetWindow()
		}
		return
	}
	m.learnDeclHeap()
	m.closeWindow(units)
	m.resetWindow()
}

// learnDeclHeap learns from a closing window the share of the declared
// bytes that lands on the Go heap.
func (m *costModel) learnDeclHeap() {
	if m.accDecl <= 0 {
		return
	}
	share := math.Min(1, m.accAlloc/m.accDecl)
	if !m.declHeapSet {
		m.declHeap, m.declHeapSet = share, true
		// The off-heap regression read the declared bytes as on the heap
		// until now: what it learned is in other terms.
		m.resetOffHeap()
	} else {
		m.declHeap += declHeapWeight * (share - m.declHeap)
	}
}

// closeWindow moves the estimates toward what a window of units read.
// Until the windows' weights sum to 1, each counts in proportion to its
// weight, not as a step of a moving average started from the first, which
// would hold a ramp's reading. A window whose work ramped up (more started
// than ended) reads high, by up to twice if the work allocates as it
// starts: what it reads per unit started, rampFloor × its reading, is then
// the cost, and an estimate between the two stays (see ramped).
func (m *costModel) closeWindow(units float64) {
	allPerUnit, sqPerUnit := m.accAlloc/units, m.accSq/units
	declHeapBytes := m.declHeapShare() * m.accDecl
	undeclared := math.Max(0, m.accAlloc-declHeapBytes) / units
	// The declared bytes are large buffers, mostly: they come off the
	// large allocations first.
	large := math.Min(undeclared, math.Max(0, m.accLarge-declHeapBytes)/units)
	fastWeight, slowWeight := m.windowWeights(units)
	// A window closes with some work started: accStarted > 0.
	rampFloor := units / m.accStarted
	share := math.Min(1, m.heapShare+fastWeight)
	step := fastWeight / share
	m.heap += step * (ramped(m.heap, undeclared, rampFloor) - m.heap)
	m.heapAll += step * (ramped(m.heapAll, allPerUnit, rampFloor) - m.heapAll)
	m.heapSq += step * (ramped(m.heapSq, sqPerUnit, rampFloor) - m.heapSq)
	m.largeFast += step * (ramped(m.largeFast, large, rampFloor) - m.largeFast)
	m.fastUnits = (1-step)*m.fastUnits + units
	m.heapShare = share
	slowShare := math.Min(1, m.slowShare+slowWeight)
	slowStep := slowWeight / slowShare
	m.largeSlow += slowStep * (ramped(m.largeSlow, large, rampFloor) - m.largeSlow)
	m.sqSlow += slowStep * (ramped(m.sqSlow, sqPerUnit, rampFloor) - m.sqSlow)
	m.slowShare = slowShare
}

// windowWeights is the weight of a closing window of units in the fast
// and the slow estimates. Each window weighs by its units, and in the fast
// estimate at least heapMinWeight: one odd window must not hold the
// estimate for thousands of units. Until an estimate holds a full weight
// of evidence, a window weighs only for the work it saw end: from idle,
// the first windows are all ramp, and they would hold the bound low.
func (m *costModel) windowWeights(units float64) (fast, slow float64) {
	fast = math.Max(heapMinWeight, 1-math.Exp2(-units/heapHalfLife))
	slow = 1 - math.Exp2(-units/heapSlowHalfLife)
	if m.heapShare < 1 {
		fast = math.Max(heapRampMinWeight, fast*math.Min(m.accStarted, m.accEnded)/m.accStarted)
	}
	if m.slowShare < 1 {
		slow = math.Max(heapSlowRampMinWeight, slow*math.Min(m.accStarted, m.accEnded)/m.accStarted)
	}
	return fast, slow
}

// largeMean is the bytes per unit of the undeclared large allocations, and
// the mean square of all of them, as the bound uses them: the fast
// estimates (see below for the slow ones' floor under them), unless large
// allocations are rare both in the work the bound may let in and in the
// fast estimates' horizon. There one allocation makes most of the fast
// estimates, and they jump with it: an allocation that comes with almost
// no unit of work (a block rebuilt beside light requests) would read as
// the work's cost, and its square would ask room for more of it. Then the
// slow estimates hold, having seen many units between such allocations,
// unless the fast horizon holds more of them than the slow estimates make
// likely (at odds under tailOdds, as a Poisson count of allocations of the
// size they weigh most: mean square over mean). A new class of large
// requests is news at once; the fast estimates, less largeZ standard
// errors, stay a floor.
//
// Where the work in flight holds more than one of them at once, by either
// estimate, the mean must hold them, not the tail's room: the fast
// estimates count, and the slow ones are a floor, since the fast estimates
// alone swing with the few of the largest their horizon holds, and a lull
// among them would raise the bound just before the next clump. The price:
// a class that stops keeps the cost up for the slow half-life,
// heapSlowHalfLife units of work. See design.md, "The target, and the
// bound".
func (m *costModel) largeMean() (mean, sq float64) {
	if m.largeSlow <= 0 || m.sqSlow <= 0 {
		return m.largeFast, m.heapSq
	}
	// How many of them the work in flight holds at once: more than one,
	// and the mean must hold them (the tail's room holds one or two of the
	// largest only).
	fastPerUnit := 0.0
	if m.heapSq > 0 && m.largeFast > 0 {
		fastPerUnit = m.largeFast * m.largeFast / m.heapSq
	}
	if m.inFlight*math.Max(fastPerUnit, m.largeSlow*m.largeSlow/m.sqSlow) > 1 {
		return math.Max(m.largeFast, m.largeSlow), math.Max(m.heapSq, m.sqSlow)
	}
	if fastPerUnit == 0 {
		return m.largeFast, m.heapSq
	}
	fastCount := m.fastUnits * fastPerUnit
	// As a count of allocations of the size the slow estimate weighs
	// most (its mean square over its mean), what the fast horizon holds
	// against what the slow estimate expects there.
	expected := m.fastUnits * m.largeSlow * m.largeSlow / m.sqSlow
	seen := expected * m.largeFast / m.largeSlow
	if poissonAtLeast(seen, expected) < tailOdds {
		return m.largeFast, m.heapSq
	}
	lowerBound := math.Max(0, 1-largeZ/math.Sqrt(fastCount))
	return math.Max(m.largeSlow, lowerBound*m.largeFast), math.Max(m.sqSlow, lowerBound*m.heapSq)
}

// poissonAtLeast is the odds of a Poisson count of mean lambda reaching k,
// rounded to the nearest whole count.
func poissonAtLeast(k, lambda float64) float64 {
	n := int(math.Min(math.Floor(k+0.5), 1000))
	if n <= 0 {
		return 1
	}
	term := math.Exp(-lambda)
	below := term
	for i := 1; i < n; i++ {
		term *= lambda / float64(i)
		below += term
	}
	return math.Max(0, 1-below)
}

// heapMean is the undeclared heap bytes a unit of work holds.
func (m *costModel) heapMean() float64 {
	large, _ := m.largeMean()
	return math.Max(0, m.heap-m.largeFast) + large
}

// ramped is what a window that read v moves an estimate est towards, where
// f × v is the least its work may hold (see observeHeap).
func ramped(est, v, f float64) float64 {
	if est >= f*v && est <= v {
		return est
	}
	return v
}

// accUnits is the units of work of the window so far: the mean of work
// started and ended, where ends count only as far as starts match them.
// Work that ends faster than work starts allocated in earlier windows:
// counted in full, its ends would read the cost low while the work in
// flight falls, and the bound would rise on it. Over the window, not each
// reading: there a start and an end a reading apart would read as a ramp
// each way (see design.md, "When the model is wrong").
func (m *costModel) accUnits() float64 {
	return (m.accStarted + math.Min(m.accStarted, m.accEnded)) / 2
}

// resetWindow opens a new heap window.
func (m *costModel) resetWindow() {
	m.accAlloc, m.accDecl, m.accLarge, m.accSq, m.accStarted, m.accEnded, m.accStart = 0, 0, 0, 0, 0, 0, time.Time{}
}

// pendingHeap is the heap cost of the window not yet closed, so that a
// ramp of work that allocates before any of it ends is seen at once.
func (m *costModel) pendingHeap() float64 {
	undeclaredBytes := m.accAlloc - m.declHeapShare()*m.accDecl
	if undeclaredBytes <= 0 {
		return 0
	}
	return undeclaredBytes / math.Max(1, m.accUnits())
}

// declHeapShare is the share of declared bytes on the Go heap: 1 until
// learned, the safe side for GOMEMLIMIT's budget.
func (m *costModel) declHeapShare() float64 {
	if !m.declHeapSet {
		return 1
	}
	return m.declHeap
}

// observeOffHeap feeds one fresh reading of the bytes outside the Go
// runtime, sinceFresh after the previous one.
// While lined, goroutines stood in line for the CPUs lately.
func (m *costModel) observeOffHeap(sinceFresh time.Duration, inFlight int64, offBytes float64, lined bool) {
	units := float64(inFlight)
	if inFlight == 0 || offBytes < m.offIdle {
		m.offIdle, m.offIdleSet = offBytes, true
	}
	if inFlight > 0 && m.offIdleSet {
		m.offBound = math.Max(0, offBytes-m.offIdle) / units
	}
	weight := 1.0
	if m.offWeight > 0 {
		weight = 1 - math.Exp(-sinceFresh.Seconds()/offTau.Seconds())
	}
	m.meanN += weight * (units - m.meanN)
	m.meanOff += weight * (offBytes - m.meanOff)
	m.meanNN += weight * (units*units - m.meanNN)
	m.meanNOff += weight * (units*offBytes - m.meanNOff)
	m.offWeight = math.Min(1, m.offWeight+weight)
	varN := m.meanNN - m.meanN*m.meanN
	// The slope needs the work in flight to have varied: by at least one
	// unit, and by a tenth of its mean, over at least a time constant.
	if varN >= math.Max(1, 0.01*m.meanN*m.meanN) && m.offWeight >= 0.6 {
		fit := math.Max(0, (m.meanNOff-m.meanN*m.meanOff)/varN)
		if !m.offFit || fit >= m.off || m.meanN <= m.offN {
			m.off, m.offFit, m.offN, m.offHeld = fit, true, m.meanN, false
			return
		}
		// A slope that falls as the work in flight rises may be work that
		// has not yet mapped its memory (goroutines waiting for a CPU in
		// a spike), whose points lie below the line of the work before
		// it; or work that holds less. The two look alike until the first
		// maps its memory, so the fall is not followed while goroutines
		// stand in line for the CPUs, and then slowly, over offHoldTau,
		// and on while the slope can no longer be read: at once, the
		// bound would let in work whose memory comes later; never, it
		// would shed work that grew lighter.
		m.offHeld, m.offFall = true, fit
	}
	if m.offHeld && !lined {
		m.off = m.offFall + (m.off-m.offFall)*math.Exp(-sinceFresh.Seconds()/offHoldTau.Seconds())
	}
}

// resetOffHeap forgets the off-heap regression, but not the memory outside
// Go seen while no work was in flight.
func (m *costModel) resetOffHeap() {
	m.meanN, m.meanOff, m.meanNN, m.meanNOff, m.offWeight = 0, 0, 0, 0, 0
	m.off, m.offFit, m.offN, m.offHeld, m.offFall = 0, false, 0, false, 0
}

// offHeap is the bytes outside the Go heap one unit of work holds: the
// fitted slope once there is one, the upper bound until then.
func (m *costModel) offHeap() float64 {
	if m.offFit {
		return m.off
	}
	return m.offBound
}

// observeLarge feeds the large allocations of the last interval: count and
// bytes. Within one short interval they are taken as equal in size.
func (m *costModel) observeLarge(now time.Time, count, bytes float64) {
	size := bytes / count
	m.accSq += count * size * size
	m.accLarge += bytes
	m.fadeTail(now)
	m.tail = math.Max(m.tail, size)
}

// fadeTail halves the tail every tailHalfLife, whether or not large
// allocations come: faded only as they came, the tail of a load that has
// ended would hold GOMEMLIMIT down for good.
func (m *costModel) fadeTail(now time.Time) {
	if !m.tailAt.IsZero() && now.After(m.tailAt) {
		m.tail *= math.Exp2(-now.Sub(m.tailAt).Seconds() / tailHalfLife.Seconds())
	}
	m.tailAt = now
}

// spread is the standard deviation of the bytes one unit of work holds,
// from the large allocations: what makes the sum over the work in flight
// swing above its mean.
//
// The large allocations' sizes spread around the mean of all the bytes a
// unit allocates, declared or not; only the undeclared share of that spread
// is a risk, since declared bytes are reserved exactly. Measured against
// the undeclared mean alone, work that declares its bytes would read as
// spread by all of them (see design.md, "Declared bytes are counted
// once").
func (m *costModel) spread() float64 {
	heap := m.heapMean()
	all := m.heapAll - m.heap + heap
	if all <= 0 {
		return 0
	}
	_, sq := m.largeMean()
	sd := math.Sqrt(math.Max(0, sq-all*all))
	return sd * math.Min(1, heap/all)
}

// tailCount is how many of the largest allocations the margin holds room
// for, with n units of work in flight: as many as the work may hold at once
// but for odds of tailOdds, at most two. The tail is the largest size seen;
// how often the work brings it is what the work's mean square says: a
// class of size S that comes with a share p of the units adds p·S² to it,
// so n × heapSq / S² bounds the number of them in flight (Poisson). A large
// allocation that comes with almost no unit of work, such as a service
// rebuilding an index beside light requests, needs room of its own
// (GOMEMLIMIT keeps one: Decision.TailRoom), not room that shedding the
// work could make (see design.md, "The target, and the bound").
func (m *costModel) tailCount(n float64) float64 {
	switch {
	case n <= m.tailLimit(0):
		return 0
	case n <= m.tailLimit(1):
		return 1
	}
	return 2
}

// tailSq is the mean square that tells how often the tail comes. The
// window not yet closed counts as soon as it holds a large allocation: a
// size new to the work must not wait for the window to close (up to
// heapWindowTime) before room is kept for it.
func (m *costModel) tailSq() float64 {
	_, sq := m.largeMean()
	return math.Max(sq, m.accSq/math.Max(1, m.accUnits()))
}

// tailLimit is the most work in flight for which room for tails of the
// largest allocations (0 or 1) suffices: the number of them in flight,
// λ = n × tailSq / tail², is at least one at odds of about λ and at least
// two at about λ²/2, and those odds stay within tailOdds. +Inf when no
// tail is known.
func (m *costModel) tailLimit(tails float64) float64 {
	sq := m.tailSq()
	if m.tail <= 0 || sq <= 0 {
		return math.Inf(1)
	}
	lambda := tailOdds
	if tails >= 1 {
		lambda = math.Sqrt(2 * tailOdds)
	}
	return lambda * m.tail * m.tail / sq
}

// mean is the bytes one unit of work in flight holds, at least floor.
//
// The window not yet closed counts only until the first closes: from cold,
// a ramp must be seen at once; after that, a window of a unit or two is
// noise (a shed storm's own allocation over one admitted request), and a
// cost that jumps makes the bound swing and the work it lets back in
// allocate all at once.
func (m *costModel) mean(inFlight int64, floor float64) float64 {
	heap := m.heapMean()
	if m.heapShare == 0 {
		heap = m.pendingHeap()
	}
	return math.Max(floor, heap+m.offHeap())
}
