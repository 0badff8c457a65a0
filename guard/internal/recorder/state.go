package recorder

import (
	"encoding/json"
	"os"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
)

// StateName is the state record's file in the directory.
const StateName = "oomguard-state.json"

const (
	// stateEvery is how often, at High and above, the sampler looks at
	// whether the state record has news (see State.news); a level change
	// writes it at once. stateMove is the change of the working set, as a
	// fraction of the limit, that is news; stateQuiet how old the record
	// may grow at High when nothing else is.
	stateEvery = time.Second
	stateMove  = 1.0 / 32
	stateQuiet = 10 * time.Second
)

// State is the state record: what the guard keeps in its directory about
// its run, so that the next start on the same directory can tell how it
// ended. It is rewritten atomically, and marked clean by the guard's Stop.
type State struct {
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last_seen"`
	Clean    bool      `json:"clean"`

	Level        level.Level `json:"level"`
	Usage        int64       `json:"usage_bytes"`
	Limit        int64       `json:"limit_bytes"`
	GrowthRate   float64     `json:"growth_bytes_per_second"`
	TimeToLimit  float64     `json:"time_to_limit_seconds"` // -1 when not growing
	OOMKills     int64       `json:"oom_kills"`             // the cgroup's count at the last reading; -1 unknown
	InFlight     int64       `json:"in_flight"`
	Leak         bool        `json:"leak_suspected"`
	ClimbProfile string      `json:"climb_first_profile,omitempty"` // the first profile of the latest climb from Normal
	LastProfile  string      `json:"last_profile,omitempty"`
	LastProfileT time.Time   `json:"last_profile_time,omitzero"`
}

// WriteState writes the state record of rd to the disk, from the calling
// goroutine: at the guard's start, and at its Stop, clean, once the writer
// has stopped.
func (r *Recorder) WriteState(rd *Reading, clean bool) {
	r.writeState(r.record(rd, clean), true)
}

// writeState writes the state record: on the writer's goroutine while the
// guard runs, from WriteState at the start and the end. A record that
// tells of a new level, or of the start or the end, reaches the disk
// before the next; one rewritten at High for its news is only renamed into
// place (see profile.Store.RefreshRecord): the kill it is for leaves the
// page cache intact, and an fsync a second cost the service its p99 near
// GOMEMLIMIT.
func (r *Recorder) writeState(rec State, durable bool) {
	b, err := json.Marshal(rec)
	if err == nil {
		if durable {
			err = r.store.WriteRecord(StateName, b)
		} else {
			err = r.store.RefreshRecord(StateName, b)
		}
	}
	if err != nil {
		r.stateFailed.Add(1)
		r.stateFault.Fail(r.log, time.Now(), err, "a post-mortem after a kill reads an older record until it works")
		return
	}
	r.stateFault.OK(r.log, time.Now())
}

// news reports whether rec tells a post-mortem something that last, the
// record written before it, does not: the working set moved by stateMove of
// the limit, a leak, an OOM kill or a profile, or stateQuiet passed. A
// service that holds a cache at High for hours has its record rewritten
// every stateQuiet, not every second. Beside a cache at 0.78 of the limit
// near GOMEMLIMIT, at 3000 requests a second, the rounds whose p99 passed
// 50 ms: 4 of 5 with a record synced to disk every second, 3 of 6 with one
// renamed into place every second (0 of 6 without DumpDir, side by side),
// 1 of 6 with one on level changes only, 1 of 6 on news.
func (last State) news(rec State) bool {
	move := int64(stateMove * float64(rec.Limit))
	return rec.Usage >= last.Usage+move || rec.Usage <= last.Usage-move ||
		rec.Leak != last.Leak || rec.OOMKills != last.OOMKills ||
		rec.LastProfile != last.LastProfile || rec.ClimbProfile != last.ClimbProfile ||
		rec.LastSeen.Sub(last.LastSeen) >= stateQuiet || rec.LastSeen.Before(last.LastSeen)
}

// record makes the state record of reading rd.
func (r *Recorder) record(rd *Reading, clean bool) State {
	rec := State{
		PID: os.Getpid(), Started: r.cfg.Started, LastSeen: rd.Time, Clean: clean,
		Level: rd.Level, Usage: rd.Usage, Limit: rd.Limit, GrowthRate: rd.GrowthRate,
		TimeToLimit: -1, OOMKills: rd.OOMKills, InFlight: rd.InFlight, Leak: rd.Leak,
	}
	if rd.TimeToLimit >= 0 {
		rec.TimeToLimit = rd.TimeToLimit.Seconds()
	}
	r.mu.Lock()
	rec.ClimbProfile = r.climbFirst
	r.mu.Unlock()
	if m, ok := r.store.Latest(); ok {
		rec.LastProfile, rec.LastProfileT = m.Name, m.Time
	}
	return rec
}
