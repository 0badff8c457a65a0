package admission

import (
	"math"
	"time"
)

const (
	// marginFloor is the least margin below Critical, as a fraction of the
	// limit: the garbage the work leaves between GC cycles.
	marginFloor = 0.025
	// marginRoomShare caps the margin's floor at this share of the room
	// the base leaves below Critical: the garbage is the work's, and the
	// work fits in that room.
	marginRoomShare = 0.25
	// tailZ is how many standard deviations of the work's sum the margin
	// holds: about one reading in a thousand passes it.
	tailZ = 3
)

// margin is the room kept below Critical for the tail of what the work
// holds, not its mean (see design.md, "The target, and the bound").
type margin struct {
	tailBytes       float64 // the size of the largest recent single allocations
	spreadBytes     float64 // the standard deviation of the bytes one unit holds
	floorBytes      float64 // the least margin, for the garbage between GC cycles
	penaltyBytes    float64 // the penalty, on top of the rest
	admissibleUnits float64 // the work the bound may let in
	tailCount       float64 // how many of the largest allocations it may hold at once
}

// margin reads the margin's terms for one reading. The floor is marginFloor
// of the limit, but no more than marginRoomShare of the room the base
// leaves below Critical: a GC whose heap sits near GOMEMLIMIT runs back to
// back and leaves the work little garbage.
func (p *Policy) margin(now time.Time, b *budget) *margin {
	p.cost.fadeTail(now)
	roomBytes := math.Max(0, b.criticalBytes-b.baseBytes)
	m := &margin{
		tailBytes:       p.cost.tail,
		spreadBytes:     p.cost.spread(),
		floorBytes:      math.Min(marginFloor*b.limitBytes, marginRoomShare*roomBytes),
		penaltyBytes:    p.penalty * b.limitBytes,
		admissibleUnits: p.cost.inFlight,
	}
	m.tailCount = p.cost.tailCount(m.admissibleUnits)
	return m
}

// bytes is the margin with room for tails of the largest allocations and
// units of work in flight: the largest of room for those allocations,
// tailZ standard deviations of the sum over the units, and the floor, with
// the penalty on top.
func (m *margin) bytes(tails, units float64) float64 {
	return math.Max(math.Max(m.tailBytes*tails, tailZ*m.spreadBytes*math.Sqrt(units)), m.floorBytes) + m.penaltyBytes
}

// fitTailCount settles how many of the largest allocations the target
// keeps room for. The count follows the bound, and the bound the count:
// room for two, where the bound lets in enough work to hold two, may leave
// a bound too low to hold two. Each count below the one the work asks for
// is tried with the work capped where that count suffices
// (costModel.tailLimit), and the largest bound wins (see design.md, "The
// target, and the bound").
func (p *Policy) fitTailCount(b *budget, m *margin) {
	b.capUnits, b.tailCount = math.Inf(1), m.tailCount
	if m.tailCount <= 0 {
		return
	}
	best := b.fits(b.critTargetBytes)
	for tails := 0.0; tails < m.tailCount; tails++ {
		capUnits := math.Floor(p.cost.tailLimit(tails))
		targetBytes := b.criticalBytes - m.bytes(tails, math.Min(m.admissibleUnits, capUnits))
		units := math.Min(b.fits(targetBytes), capUnits)
		if units > best && capUnits >= float64(p.cfg.MinInFlight) {
			best, b.critTargetBytes, b.capUnits, b.tailCount = units, targetBytes, capUnits, tails
		}
	}
}
