package admission

import "math"

const (
	// penaltyStep is the most a reading past a warning line raises the
	// penalty, and penaltyWorkShare the most as a share of the memory the
	// work in flight holds: the model errs in what the work holds, not in
	// the base it measures, which shedding cannot move.
	penaltyStep      = 0.02
	penaltyWorkShare = 0.1
	// penaltyMax caps the penalty, as a fraction of the limit.
	penaltyMax = 0.3
	// penaltyDecay is how fast the penalty falls while no reading is past
	// a warning line, as a fraction of the limit per second.
	penaltyDecay = 0.01
)

// warning reports the reading past a warning line: the working set
// halfway from the least margin to Critical, or, while GOMEMLIMIT binds,
// Go's own memory halfway from GOMEMLIMIT to Critical, where the GC is
// losing. The second line counts Go's memory alone, since GOMEMLIMIT does
// not bound what is outside Go, and only while the GC is behind: a GC that
// keeps up may hold a cache and its garbage past it for good (see
// design.md, "The target, and the bound").
func (b *budget) warning(r Reading, goMemLimitBinds bool, goMemLimit float64) bool {
	if r.Critical || float64(r.Usage) >= b.criticalBytes-marginFloor*b.limitBytes/2 {
		return true
	}
	return goMemLimitBinds && float64(r.Usage-r.OffHeap) >= (goMemLimit+b.criticalBytes)/2
}

// updatePenalty raises the penalty, the extra margin below Critical, as a
// reading passes a warning line: the safe point is lower than the model
// said. It decays while no reading is past one.
func (p *Policy) updatePenalty(o *observation, warn bool, limitBytes float64) {
	if warn && !p.wasWarn {
		workBytes := float64(o.inFlight)*o.costBytes + float64(o.r.Declared)
		step := math.Min(penaltyStep, penaltyWorkShare*workBytes/limitBytes)
		p.penalty = math.Min(penaltyMax, p.penalty+step)
	} else if !warn {
		p.penalty = math.Max(0, p.penalty-penaltyDecay*o.dt.Seconds())
	}
	p.wasWarn = warn
}
