package admission

import "math"

// Sizing is the memory bound's terms at one reading, apart from the limit,
// so that the bound can be turned around: from the limit to the work it
// admits (the policy's job) to the limit that admits a given work
// (LimitFor). Sizes are in bytes, shares are fractions of the limit, work
// is in units. See design.md, "The limit that would have served".
type Sizing struct {
	Base            float64 // B: memory that is not the work's
	Declared        float64 // D: declared bytes of the work in flight
	InFlight        float64 // n: units of work in flight
	Unit            float64 // u: one undeclared unit, with the GC's runway on its heap
	DeclaredPerUnit float64 // d̄: the bytes a unit of work usually declares

	// Tail is the size of the largest recent single allocations, S;
	// TailFree and TailOne are the most units of work in flight for which
	// room for none and for one of them suffices (+Inf: no tail known).
	Tail, TailFree, TailOne float64
	Spread                  float64 // σ: standard deviation of the bytes one unit holds

	Critical     float64 // C: the share of the limit the working set stays below
	Penalty      float64 // P: the margin readings past a warning line taught
	SheddableGap float64 // how much earlier Sheddable work stops
}

// sizing reads the bound's terms of budget b.
func (p *Policy) sizing(b *budget) Sizing {
	return Sizing{
		Base:            b.baseBytes,
		Declared:        b.declaredBytes,
		InFlight:        b.inFlight,
		Unit:            b.unitBytes,
		DeclaredPerUnit: b.declPerUnitBytes,
		Tail:            b.tailBytes,
		TailFree:        p.cost.tailLimit(0),
		TailOne:         p.cost.tailLimit(1),
		Spread:          p.cost.spread(),
		Critical:        p.cfg.Critical,
		Penalty:         p.penalty,
		SheddableGap:    p.cfg.SheddableGap,
	}
}

// need is the memory units of work in flight take, with the base: those in
// flight as they are, and the rest at a unit's cost and the bytes a unit
// usually declares, as Policy.decide counts them.
func (s Sizing) need(units float64) float64 {
	return s.Base + s.Declared + units*s.Unit + (units-s.InFlight)*s.DeclaredPerUnit
}

// tails is how many of the largest allocations the margin keeps room for
// with units of work in flight.
func (s Sizing) tails(units float64) float64 {
	switch {
	case s.Tail <= 0 || units <= s.TailFree:
		return 0
	case units <= s.TailOne:
		return 1
	}
	return 2
}

// target is the admission target at limit bytes with units of work in
// flight, less the Sheddable gap for sheddable: the same target
// Policy.budget sets, at the tail count units need.
func (s Sizing) target(limit, units float64, sheddable bool) float64 {
	floor := math.Min(marginFloor*limit, marginRoomShare*math.Max(0, s.Critical*limit-s.Base))
	fixed := math.Max(s.tails(units)*s.Tail, tailZ*s.Spread*math.Sqrt(math.Max(0, units)))
	t := (s.Critical-s.Penalty)*limit - math.Max(fixed, floor)
	if sheddable {
		t -= s.SheddableGap * limit
	}
	return t
}

// LimitFor is the smallest memory limit, in bytes, at which the memory
// bound admits units of work in flight: the least L with
//
//	B + D + N·u + (N − n)·d̄ ≤ T(L) = (C − P)·L − max(k·S, 3·σ·√N, F(L))
//
// where N is units, k the tails N needs, and F(L) = min(0.025·L, (C·L −
// B)/4) the margin's floor. T grows with L, so the least L is the larger of
// the least that clears the fixed part of the margin and the least that
// clears the floor, each a line in L. With sheddable, it is the limit at
// which Sheddable work is admitted too, SheddableGap earlier. GOMEMLIMIT's
// budget is left out: it binds only while the GC is behind, which at a
// limit with room for the work it is not. 0 when units is not positive or
// no limit would do (the penalty and the gap take all of Critical).
func (s Sizing) LimitFor(units float64, sheddable bool) int64 {
	if !(units > 0) || math.IsInf(units, 1) {
		return 0
	}
	a := s.Critical - s.Penalty
	if sheddable {
		a -= s.SheddableGap
	}
	need := s.need(units)
	fixed := math.Max(s.tails(units)*s.Tail, tailZ*s.Spread*math.Sqrt(units))
	// The floor is the lesser of two lines in L; clearing either clears it.
	// Where Critical leaves no room above the base the floor is 0, and a
	// limit that clears the need clears Critical × L past the base too.
	floorLimit := math.Inf(1)
	if a > marginFloor {
		floorLimit = need / (a - marginFloor)
	}
	if room := a - marginRoomShare*s.Critical; room > 0 {
		floorLimit = math.Min(floorLimit, (need-marginRoomShare*s.Base)/room)
	}
	if a <= 0 || math.IsInf(floorLimit, 1) {
		return 0
	}
	l := math.Max((need+fixed)/a, floorLimit)
	return clampBytes(math.Ceil(l))
}
