package admission

import (
	"math"
	"time"
)

const (
	// refusalBytes is about what one refused request allocates (the HTTP
	// server's request and the 503): the low end, so that the cost of
	// admitted work errs high.
	refusalBytes = 2 << 10
	// declPerUnitWeight is the weight of one reading in declPerUnit.
	declPerUnitWeight = 0.05
)

// observation is one reading set against the previous one, once the cost
// model and the heap base have learned from it.
type observation struct {
	r, prev  Reading
	dt       time.Duration // since the previous reading; 0 where the clock went back
	inFlight int64         // units of work in flight, at least 0
	// admittedUnits and doneUnits are the units of work admitted and done
	// since the previous reading.
	admittedUnits, doneUnits float64
	// declHeapBytes and declOffBytes are the declared bytes in flight on
	// the Go heap and outside it.
	declHeapBytes, declOffBytes float64
	costBytes                   float64 // what one unit of work in flight holds
}

// observe sets r against the previous reading and feeds the cost model
// and the heap base (see design.md, "The model").
func (p *Policy) observe(r Reading) *observation {
	n := max(0, r.InFlight())
	if !p.started {
		p.started, p.prev, p.gcAt, p.peakAt = true, r, r.Now, r.Now
		p.heapBase = float64(r.HeapLive - r.Declared)
		p.nSinceGC = n
	}
	o := &observation{r: r, prev: p.prev, inFlight: n}
	p.prev = r
	// A clock that went back starts a new series, keeping what was learned.
	o.dt = max(0, r.Now.Sub(o.prev.Now))
	o.doneUnits = float64(sub(r.Done, o.prev.Done))
	o.admittedUnits = float64(sub(r.Admitted, o.prev.Admitted))
	p.observeHeapCost(o)
	p.observeOffHeapCost(o)
	p.observeDeclared(o)
	// The large allocations count in the mean as the work the bound may
	// let in holds them (see costModel.largeMean).
	p.cost.inFlight = float64(max(n, p.lastBound))
	o.costBytes = p.cost.mean(n, costFloor)
	p.observeHeapBase(o)
	return o
}

// observeHeapCost feeds the cost model the heap allocation since the
// previous reading. Declared work allocates what it declared, about as it
// starts, so the rest is the cost of the undeclared work. Refusals allocate
// a little each: a shed storm must not read as costly work. Large
// allocations while no work is in flight or moving are not the work's (a
// cache or an index loaded before the first request), so they set neither
// the margin nor GOMEMLIMIT (see design.md, "GOMEMLIMIT and the tail").
func (p *Policy) observeHeapCost(o *observation) {
	r, prev := o.r, o.prev
	refused := float64(sub(r.Refusals, prev.Refusals))
	allocBytes := float64(sub(r.Alloc, prev.Alloc)) - refusalBytes*refused
	moving := o.inFlight > 0 || o.admittedUnits > 0 || o.doneUnits > 0
	if large := sub(r.LargeAllocs, prev.LargeAllocs); large > 0 && moving {
		p.cost.observeLarge(r.Now, float64(large), float64(sub(r.LargeBytes, prev.LargeBytes)))
	}
	declaredBytes := float64(sub(r.DeclaredTotal, prev.DeclaredTotal))
	p.cost.observeHeap(r.Now, math.Max(0, allocBytes), declaredBytes, o.admittedUnits, o.doneUnits, o.inFlight)
}

// observeOffHeapCost splits the declared bytes in flight between the Go
// heap and the memory outside it, and feeds the off-heap regression a fresh
// reading of the kernel, less the declared bytes outside the heap (see
// design.md, "Declared bytes are counted once"). The regression weighs by
// the time since the previous fresh reading, not the previous reading. A
// line of goroutines waiting for the CPUs within offTau is news to it (see
// costModel.observeOffHeap).
func (p *Policy) observeOffHeapCost(o *observation) {
	r := o.r
	if r.Runnable >= offLineRunnable {
		p.lineAt = r.Now
	}
	o.declHeapBytes = p.cost.declHeapShare() * float64(r.Declared)
	o.declOffBytes = float64(r.Declared) - o.declHeapBytes
	if !r.Fresh {
		return
	}
	offBytes := r.OffHeapNow
	if offBytes == 0 {
		offBytes = r.OffHeap
	}
	offBytes -= int64(o.declOffBytes)
	var sinceFresh time.Duration
	if !p.freshAt.IsZero() {
		sinceFresh = max(0, r.Now.Sub(p.freshAt))
	}
	p.freshAt = r.Now
	p.cost.observeOffHeap(sinceFresh, o.inFlight, float64(offBytes), !p.lineAt.IsZero() && r.Now.Sub(p.lineAt) < offTau)
}

// observeDeclared learns the bytes a unit of work admitted usually
// declares, for the bound on units (see Policy.unitsBound).
func (p *Policy) observeDeclared(o *observation) {
	if o.admittedUnits <= 0 {
		return
	}
	perUnit := float64(sub(o.r.DeclaredTotal, o.prev.DeclaredTotal)) / o.admittedUnits
	if p.declPerUnit == 0 {
		p.declPerUnit = perUnit
	} else {
		p.declPerUnit += declPerUnitWeight * (perUnit - p.declPerUnit)
	}
}
