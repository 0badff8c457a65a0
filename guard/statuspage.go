package guard

import (
	"net/http"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/guard/internal/statuspage"
	"github.com/oomguard/oomguard/internal/rightsize"
)

// statusPage serves GET / of DebugHandler: package statuspage draws what
// the guard hands it.
func (g *Guard) statusPage() http.HandlerFunc {
	cfg := statuspage.Config{Thresholds: statuspage.Thresholds(g.cfg.Thresholds), Switch: EnvSwitch, Started: g.startedAt, History: &g.history}
	if g.rec != nil {
		cfg.Profiles = g.rec.Store()
	}
	page := statuspage.New(cfg)
	return func(w http.ResponseWriter, r *http.Request) {
		s := g.Snapshot()
		st := statuspage.Status{
			Time: s.Time, Off: s.Off, Level: level.Level(s.Level), Usage: s.Usage, Limit: s.Limit, Committed: s.Committed,
			Pressure: s.Pressure(), CommittedPressure: s.CommittedPressure(),
			LimitSource: string(s.LimitSource), LimitDetail: s.LimitDetail, UsageSource: string(s.UsageSource),
			GoMemLimit: s.GoMemLimit, GoMemLimitSource: string(s.GoMemLimitSource), HeapLive: s.HeapLive, HeapGoal: s.HeapGoal,
			GCCPUFraction: s.GCCPUFraction, GCThrashing: s.GCThrashing, GrowthRate: s.GrowthRate, TimeToLimit: s.TimeToLimit,
			LeakSuspected: s.LeakSuspected, Interval: s.Interval, OOMKills: s.OOMKills, ReadErrors: s.ReadErrors,
			InFlight: s.InFlight, InFlightLimit: s.InFlightLimit, Admitted: s.Admitted, Shed: statuspage.ShedCounts(s.Shed),
			Cancelled: s.Cancelled, WorkCost: s.WorkCost, AdmissionTarget: s.AdmissionTarget,
			RecommendedLimit: s.RecommendedLimit, RecommendedLimitReason: s.RecommendedLimitReason, RecommendWindow: rightsize.Window,
			ProfilesWritten: s.ProfilesWritten, ProfileErrors: s.ProfileErrors, ProfileDiskBytes: s.ProfileDiskBytes,
		}
		var climb string
		if rec := g.rec; rec != nil {
			climb = rec.ClimbFirst()
		}
		page.Serve(w, &st, g.recalled, climb)
	}
}

// addHistory adds reading s to the status page's history, with the request
// counters as of now (the sampler's Snapshot leaves them zero), at most
// once a second.
//
// now is the sampler's steady clock, which spaces the points.
func (g *Guard) addHistory(s *Snapshot, now time.Time) {
	if !g.history.Due(now) {
		return
	}
	g.history.Add(now, statuspage.Point{
		T: s.Time.UnixNano(), Usage: s.Usage, Committed: s.Committed, Heap: s.HeapLive,
		GoMemLimit: s.GoMemLimit, Limit: s.Limit,
		InFlight: int32(min(max(0, g.inFlight()), 1<<31-1)), Level: level.Level(s.Level),
	}, g.shed[0].Load()+g.shed[1].Load()+g.shed[2].Load())
}
