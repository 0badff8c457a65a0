package admission

import (
	"math"
	"time"
)

const (
	// gcThrashRunway is the share of the work's heap kept for the garbage
	// it makes during a GC cycle while the GC is behind, when the work
	// must also fit under GOMEMLIMIT.
	gcThrashRunway = 0.3
	// thrashHold keeps GOMEMLIMIT's budget in force after the GC caught
	// up: being behind toggles from cycle to cycle, and each toggle would
	// move the bound.
	thrashHold = 2 * time.Second
)

// budget is the room one reading leaves the work: below Critical, less the
// margin, and, while the GC is behind, below GOMEMLIMIT (see design.md,
// "The target, and the bound"). Sizes are in bytes, counts in units of
// work.
type budget struct {
	limitBytes      float64 // the effective memory limit
	criticalBytes   float64 // Critical × limit
	warn            bool    // the reading is past a warning line
	goBaseBytes     float64 // the base inside the Go runtime
	baseBytes       float64 // all the base
	critTargetBytes float64 // what the work may take the memory to: Critical less the margin
	// goTargetBytes is what the work may take Go's memory to: GOMEMLIMIT
	// less the penalty while the GC is behind, +Inf otherwise; goRunway is
	// the work's heap and its runway as a multiple of that heap there.
	goTargetBytes float64
	goRunway      float64

	inFlight         float64 // units of work in flight
	declaredBytes    float64 // declared bytes in flight
	heapCostBytes    float64 // the cost of a unit on the Go heap
	unitBytes        float64 // the cost of a unit, with the runway on its heap
	declPerUnitBytes float64 // the bytes a unit of work usually declares
	capUnits         float64 // the most work the tail count kept holds; +Inf
	tailBytes        float64 // the size of the largest recent single allocations
	tailCount        float64 // how many of them the margin keeps room for
}

// budget sets the budgets for one reading: whether the GC is behind, the
// warning lines and the penalty, the base, the margin and the runway, and
// how many of the largest allocations the target keeps room for.
func (p *Policy) budget(o *observation) *budget {
	limitBytes := float64(o.r.LimitBytes)
	b := &budget{
		limitBytes:       limitBytes,
		criticalBytes:    p.cfg.Critical * limitBytes,
		inFlight:         float64(o.inFlight),
		declaredBytes:    float64(o.r.Declared),
		declPerUnitBytes: p.declPerUnit,
	}
	behind := p.gcBehind(o.r)
	// GOMEMLIMIT binds while the GC is behind, where one is set below
	// Critical.
	goMemLimit := float64(o.r.GoMemLimit)
	goMemLimitBinds := behind && goMemLimit > 0 && goMemLimit < b.criticalBytes
	b.warn = b.warning(o.r, goMemLimitBinds, goMemLimit)
	p.updatePenalty(o, b.warn, limitBytes)
	b.goBaseBytes, b.baseBytes = p.bases(o)
	m := p.margin(o.r.Now, b)
	b.critTargetBytes = b.criticalBytes - m.bytes(m.tailCount, m.admissibleUnits)
	b.goTargetBytes, b.goRunway = math.Inf(1), 1.0
	if goMemLimitBinds {
		b.goTargetBytes, b.goRunway = goMemLimit-p.penalty*limitBytes, 1+gcThrashRunway
	}
	// GOMEMLIMIT bounds the Go runtime's memory alone: its budget holds the
	// base and the work's heap, not what either holds outside Go. The
	// work's heap is also what the GC's runway is a share of.
	b.heapCostBytes = math.Max(costFloor, o.costBytes-p.cost.offHeap())
	runway := p.runwayFor(o, b.heapCostBytes, b.baseBytes, behind)
	b.unitBytes = o.costBytes + runway*b.heapCostBytes
	b.tailBytes = m.tailBytes
	p.fitTailCount(b, m)
	return b
}

// gcBehind reports GOMEMLIMIT's budget in force: the GC behind, or the work
// in a spiral with the GC thrashing, or either within thrashHold. A spiral
// with the goal pinned alone only cuts the window (see Policy.spiral): the
// work then fits the room the goal leaves as soon as it flows again, and
// a GC that keeps up holds Go's memory at GOMEMLIMIT by itself (see
// design.md, "The target, and the bound").
func (p *Policy) gcBehind(r Reading) bool {
	if r.GCBehind || r.GCThrashing && p.spiraling(r) {
		p.thrashAt = r.Now
	}
	return !p.thrashAt.IsZero() && r.Now.Sub(p.thrashAt) < thrashHold
}

// targetBytes is what committed memory is steered below: the tighter of
// the two budgets.
func (b *budget) targetBytes() float64 { return math.Min(b.critTargetBytes, b.goTargetBytes) }

// fits is the units of work that fit below targetBytes: those in flight,
// and as many more as the room left holds, each at the cost of a unit and
// the bytes a unit usually declares. Counted at the cost alone, declared
// bytes a little past the target would take the bound to its floor (see
// design.md, "Declared bytes are counted once").
func (b *budget) fits(targetBytes float64) float64 {
	left := targetBytes - b.baseBytes - b.declaredBytes - b.inFlight*b.unitBytes
	return b.inFlight + left/(b.unitBytes+b.declPerUnitBytes)
}
