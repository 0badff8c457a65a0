package guard

import (
	"time"

	"github.com/oomguard/oomguard/guard/internal/recorder"
)

// PostMortem is what the guard concluded at Start about the previous run on
// the same Config.DumpDir, from the state record that run left.
type PostMortem struct {
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last_seen"`
	// Ended is "clean" when the previous run called Stop, else "unclean".
	Ended string `json:"ended"`
	// LikelyOOMKilled is the guard's conclusion for an unclean end: the
	// last level was High or above, the limit was less than 10s away at
	// the last growth rate, or the cgroup's OOM-kill counter moved since.
	// Reason says which.
	LikelyOOMKilled bool   `json:"likely_oom_killed"`
	Reason          string `json:"reason"`

	LastLevel       Level     `json:"last_level"`
	LastUsageBytes  int64     `json:"last_usage_bytes"`
	LimitBytes      int64     `json:"limit_bytes"`
	LastProfile     string    `json:"last_profile"`
	LastProfileTime time.Time `json:"last_profile_time"`
	// TopGrowth is what grew from the first heap profile of the last
	// climb (the oldest heap profile in DumpDir when the record names
	// none) to the newest, largest first: the functions that allocated
	// the memory still in use.
	TopGrowth     []FunctionGrowth `json:"top_growth"`
	LeakSuspected bool             `json:"leak_suspected"`
}

// FunctionGrowth is the growth of in-use heap attributed to one function.
type FunctionGrowth struct {
	Function string `json:"function"`
	Bytes    int64  `json:"bytes"`
}

// PostMortem returns the conclusion about the previous run on the same
// Config.DumpDir, or nil when there was none (or no DumpDir).
func (g *Guard) PostMortem() *PostMortem { return g.postmortem }

// postMortem is pm, the recorder's conclusion, as PostMortem gives it;
// nil for nil.
func postMortem(pm *recorder.PostMortem) *PostMortem {
	if pm == nil {
		return nil
	}
	p := &PostMortem{
		PID: pm.PID, Started: pm.Started, LastSeen: pm.LastSeen, Ended: pm.Ended,
		LikelyOOMKilled: pm.LikelyOOMKilled, Reason: pm.Reason, LastLevel: Level(pm.LastLevel),
		LastUsageBytes: pm.LastUsageBytes, LimitBytes: pm.LimitBytes, LastProfile: pm.LastProfile,
		LastProfileTime: pm.LastProfileTime, TopGrowth: []FunctionGrowth{}, LeakSuspected: pm.LeakSuspected,
	}
	for _, t := range pm.TopGrowth {
		p.TopGrowth = append(p.TopGrowth, FunctionGrowth{Function: t.Function, Bytes: t.Bytes})
	}
	return p
}
