package admission

import (
	"math"
	"time"
)

// reserveHold is how long a refused large declared request keeps room
// reserved.
const reserveHold = time.Second

// largeReserve is the room kept for large declared requests refused, in
// bytes: what was refused over about reserveHold, decaying, and at least
// the largest of it, since under steady overload several large requests
// wait at once. It is at most half the room the target leaves; requests of
// half the largest or more may use it (Decision.LargeSize). See design.md,
// "Large declared requests".
func (p *Policy) largeReserve(o *observation, b *budget) float64 {
	r := o.r
	if o.dt > 0 {
		p.reserve *= math.Exp(-o.dt.Seconds() / reserveHold.Seconds())
	}
	if r.LargeWaiting > 0 {
		p.reserve += float64(r.LargeWaiting)
		p.largest, p.reserveAt = max(p.largest, r.LargeWaiting), r.Now
	} else if r.Now.Sub(p.reserveAt) >= reserveHold {
		p.reserve, p.largest = 0, 0
	}
	roomBytes := math.Max(0, b.targetBytes()-b.baseBytes)
	return math.Min(math.Max(p.reserve, float64(p.largest)), roomBytes/2)
}
