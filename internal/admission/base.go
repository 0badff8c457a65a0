package admission

import (
	"math"
	"time"
)

// baseFallTau is how slowly the heap base may fall: it rises at once.
const baseFallTau = time.Second

// observeHeapBase reads the heap base afresh when a GC cycle ended: the live
// heap is exact then, and what the work in flight does not explain of it is
// base. The cycle marked at some moment since the previous one ended, so
// the work it surely saw is the least in flight over that span: work
// admitted after the mark has not allocated into the live heap, and
// counting it would read as room. For the same reason the base rises at
// once and falls over baseFallTau (see design.md, "The model").
func (p *Policy) observeHeapBase(o *observation) {
	r, n := o.r, o.inFlight
	if r.GCCycles != o.prev.GCCycles || r.HeapLive != o.prev.HeapLive {
		marked := min(n, p.nSinceGC)
		perUnit := math.Max(p.cost.heapMean(), p.cost.pendingHeap())
		heapBase := float64(r.HeapLive) - o.declHeapBytes - float64(marked)*perUnit
		if heapBase >= p.heapBase {
			p.heapBase = heapBase
		} else {
			fall := 1 - math.Exp(-r.Now.Sub(p.gcAt).Seconds()/baseFallTau.Seconds())
			p.heapBase += fall * (heapBase - p.heapBase)
		}
		p.gcAt, p.nSinceGC = r.Now, n
	}
	p.nSinceGC = min(p.nSinceGC, n)
}

// bases is the memory that is not the work in flight: goBaseBytes inside
// the Go runtime (the heap base and the runtime's own memory), and
// baseBytes, that and the memory outside Go that neither the work's cost
// nor its declared bytes explain. Neither part is below zero: a heap base
// that reads negative (the last cycle marked before the work in flight had
// allocated) is no room (see design.md, "The target, and the bound").
func (p *Policy) bases(o *observation) (goBaseBytes, baseBytes float64) {
	goBaseBytes = math.Max(0, p.heapBase) + float64(o.r.GoOther)
	offBase := float64(o.r.OffHeap) - float64(o.inFlight)*p.cost.offHeap() - o.declOffBytes
	return goBaseBytes, goBaseBytes + math.Max(0, offBase)
}

// refreshGC reports whether to run a GC cycle: work was refused since the
// previous reading while no cycle has ended for RefreshEvery, and refused
// work allocates nothing, so the live heap the base is read from would
// stay stale (see design.md, "When the model is wrong").
func (p *Policy) refreshGC(o *observation) bool {
	r, every := o.r, p.cfg.RefreshEvery
	if r.Refusals == o.prev.Refusals || r.Now.Sub(p.gcAt) < every || r.Now.Sub(p.lastRefresh) < every {
		return false
	}
	p.lastRefresh = r.Now
	return true
}
