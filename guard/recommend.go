package guard

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/oomguard/oomguard/guard/internal/humanize"
	"github.com/oomguard/oomguard/internal/admission"
	"github.com/oomguard/oomguard/internal/rightsize"
)

// recommend feeds the right-sizing policy one full sample, with the memory
// policy's decision d, and puts its recommendation in snap: the memory
// limit at which the load offered over the last minutes would have been
// served without shedding (see docs/design.md, "The limit that would have
// served"). It says the recommendation, or why there is none, when the
// policy says to: at most once a minute, by the sampler's clock now.
func (s *sampler) recommend(now time.Time, snap *Snapshot, d admission.Decision) {
	g := s.g
	forTime := g.shedForTime.Load()
	rd := s.rightsize.OnSample(rightsize.Reading{
		Now:        now,
		LimitBytes: s.limit.bytes,
		InFlight:   max(0, g.inFlight()),
		Admitted:   g.admitted.Load(),
		// As the memory policy counts its refusals (see workReading).
		Shed:          uint64(max(0, g.shed[0].Load()+g.shed[1].Load()-forTime)),
		ShedForTime:   uint64(forTime + g.shedLate.Load()),
		ShedSheddable: uint64(g.shed[0].Load()),
		Leak:          d.Leak,
		Sizing:        d.Sizing,
	})
	snap.RecommendedLimit, snap.RecommendedLimitReason = rd.Limit, string(rd.Reason)
	if rd.Say {
		g.sayRecommendation(rd, snap.Limit)
	}
}

// sayRecommendation logs the recommended limit at INFO, or why more memory
// would not help.
func (g *Guard) sayRecommendation(rd rightsize.Decision, limit int64) {
	minutes := int(rightsize.Window / time.Minute)
	switch rd.Reason {
	case rightsize.Leak:
		g.log.Info("no memory limit recommended: memory grows independent of load, likely a leak; more memory would only put the kill off",
			slog.String("reason", string(rd.Reason)))
	case rightsize.Time:
		g.log.Info("no memory limit recommended: the time bound refuses most of the work shed; the CPUs, not memory, are short",
			slog.String("reason", string(rd.Reason)))
	default:
		g.log.Info(fmt.Sprintf("recommended memory limit %s (now %s) to serve the offered load of the last %d minutes without shedding: %.0f units of work in flight",
			humanize.Bytes(rd.Limit), humanize.Bytes(limit), minutes, rd.Offered),
			slog.Int64("recommended_limit_bytes", rd.Limit), slog.Int64("limit_bytes", limit), slog.Float64("offered_in_flight", rd.Offered))
	}
}
