package admission

import "math"

// declHeapShareFloor keeps the room GOMEMLIMIT's budget leaves declared
// bytes finite where almost none of them land on the Go heap.
const declHeapShareFloor = 1e-3

// decide bounds the work that fits both budgets, in units and in declared
// bytes: Default work below them, Sheddable work SheddableGap of the limit
// earlier. Default work always has MinInFlight, so that a service whose
// memory is full of other things still answers, and during a leak what it
// usually had in flight; Sheddable work has no floor at Critical. The
// floors hold for declared work too, at the bytes a unit usually declares.
// See design.md, "The target, and the bound".
func (p *Policy) decide(o *observation, b *budget, reserveBytes float64) Decision {
	leak, leakRate, floor := p.leakFloor(o, b.baseBytes, b.limitBytes)
	gapBytes := p.cfg.SheddableGap * b.limitBytes
	shedFloor := p.cfg.MinInFlight
	if o.r.Critical {
		shedFloor = 0
	}
	return Decision{
		Limit:          p.unitsBound(o, b, 0, floor),
		SheddableLimit: p.unitsBound(o, b, gapBytes, shedFloor),
		Room:           max(p.roomBound(o, b, 0), int64(float64(floor)*p.declPerUnit)),
		SheddableRoom:  max(p.roomBound(o, b, gapBytes), int64(float64(shedFloor)*p.declPerUnit)),
		LargeReserve:   int64(reserveBytes),
		LargeSize:      p.largest / 2,
		Cost:           int64(o.costBytes),
		Tail:           int64(b.tailBytes),
		TailRoom:       int64(b.tailBytes * math.Max(1, b.tailCount)),
		Target:         int64(b.targetBytes()),
		Base:           max(0, int64(b.baseBytes)),
		Window:         p.window,
		Leak:           leak,
		LeakRate:       leakRate,
		Sizing:         p.sizing(b),
	}
}

// unitsBound is the units of work that fit both budgets, less gapBytes,
// within the window and the tail count's cap, and at least floorUnits. The
// reserve for large declared requests is kept in the room, not here: taken
// at the cost of a unit, its bytes would cut the bound on units by far
// more than the work they are for (see design.md, "Declared bytes are
// counted once").
func (p *Policy) unitsBound(o *observation, b *budget, gapBytes float64, floorUnits int64) int64 {
	crit := b.fits(b.critTargetBytes - gapBytes)
	soft := (b.goTargetBytes - gapBytes - b.goBaseBytes - b.goRunway*o.declHeapBytes) / (b.goRunway * b.heapCostBytes)
	fit := math.Floor(math.Min(math.Min(crit, soft), b.capUnits))
	return clamp(min(int64(fit), p.window), floorUnits, math.MaxInt32)
}

// roomBound is the declared bytes that fit both budgets, less gapBytes,
// beside the work in flight. GOMEMLIMIT's budget holds the declared bytes
// that land on the Go heap.
func (p *Policy) roomBound(o *observation, b *budget, gapBytes float64) int64 {
	crit := b.critTargetBytes - gapBytes - b.baseBytes - b.inFlight*b.unitBytes
	soft := ((b.goTargetBytes-gapBytes-b.goBaseBytes)/b.goRunway - b.inFlight*b.heapCostBytes) /
		math.Max(p.cost.declHeapShare(), declHeapShareFloor)
	return clampBytes(math.Min(crit, soft))
}
