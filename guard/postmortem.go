package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/oomguard/oomguard/guard/internal/humanize"
	"github.com/oomguard/oomguard/profile"
)

// stateName is the state record's file in Config.DumpDir.
const stateName = "oomguard-state.json"

const (
	// stateEvery is how often, at High and above, the sampler looks at
	// whether the state record has news (see stateRecord.news); a level
	// change writes it at once. stateMove is the change of the working
	// set, as a fraction of the limit, that is news; stateQuiet how old
	// the record may grow at High when nothing else is.
	stateEvery = time.Second
	stateMove  = 1.0 / 32
	stateQuiet = 10 * time.Second
	// killSoon: a previous run whose last reading put the limit this
	// close, at its growth rate, likely died of it.
	killSoon = 10 * time.Second
	// topGrowthN is how many functions a post-mortem names.
	topGrowthN = 10
)

// stateRecord is what the guard keeps in DumpDir about its run, so that the
// next start on the same directory can tell how it ended. It is rewritten
// atomically, and marked clean by Stop.
type stateRecord struct {
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last_seen"`
	Clean    bool      `json:"clean"`

	Level        Level     `json:"level"`
	Usage        int64     `json:"usage_bytes"`
	Limit        int64     `json:"limit_bytes"`
	GrowthRate   float64   `json:"growth_bytes_per_second"`
	TimeToLimit  float64   `json:"time_to_limit_seconds"` // -1 when not growing
	OOMKills     int64     `json:"oom_kills"`             // the cgroup's count at the last reading; -1 unknown
	InFlight     int64     `json:"in_flight"`
	Leak         bool      `json:"leak_suspected"`
	ClimbProfile string    `json:"climb_first_profile,omitempty"` // the first profile of the latest climb from Normal
	LastProfile  string    `json:"last_profile,omitempty"`
	LastProfileT time.Time `json:"last_profile_time,omitzero"`
}

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

// recall reads the previous run's state record, concludes how it ended, and
// logs an unclean end that was likely an OOM kill at ERROR. oomKills is the
// cgroup's count now, -1 unknown.
func (d *dumper) recall(g *Guard, oomKills int64) *PostMortem {
	b, err := d.store.ReadRecord(stateName)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var rec stateRecord
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		g.log.Warn("state record of the previous run unreadable", slog.String("dir", g.cfg.DumpDir), slog.Any("error", err))
		return nil
	}
	// The record is written at most once a second: a profile the last run
	// wrote after it is newer evidence.
	if m, ok := d.store.Latest(); ok && !m.Time.Before(rec.Started) && m.Time.After(rec.LastProfileT) {
		rec.LastProfile, rec.LastProfileT = m.Name, m.Time
	}
	pm := &PostMortem{
		PID: rec.PID, Started: rec.Started, LastSeen: rec.LastSeen, Ended: "clean",
		LastLevel: rec.Level, LastUsageBytes: rec.Usage, LimitBytes: rec.Limit,
		LastProfile: rec.LastProfile, LastProfileTime: rec.LastProfileT,
		LeakSuspected: rec.Leak, TopGrowth: []FunctionGrowth{},
	}
	if !rec.Clean {
		// What that run left is the evidence of its end: a profile
		// written on demand must not delete it (see requestedReason).
		for _, m := range d.store.List() {
			d.store.Keep(m.Name)
		}
		pm.Ended = "unclean"
		var why []string
		if rec.Level >= LevelHigh {
			why = append(why, "last level "+rec.Level.String())
		}
		if rec.TimeToLimit >= 0 && rec.TimeToLimit < killSoon.Seconds() {
			why = append(why, fmt.Sprintf("limit %.1fs away at its growth", rec.TimeToLimit))
		}
		if rec.OOMKills >= 0 && oomKills > rec.OOMKills {
			why = append(why, fmt.Sprintf("the cgroup's OOM kills went from %d to %d", rec.OOMKills, oomKills))
		}
		pm.LikelyOOMKilled = len(why) > 0
		pm.Reason = strings.Join(why, "; ")
		if !pm.LikelyOOMKilled {
			pm.Reason = "ended without Stop, at a low level: not memory, as far as the guard saw"
		}
	}
	base := rec.ClimbProfile
	if base == "" {
		// The oldest heap profile: a goroutine profile or a trace
		// cannot be diffed with one.
		for _, m := range d.store.List() {
			if m.Kind == "" || m.Kind == profile.KindHeap {
				base = m.Name
				break
			}
		}
	}
	if target := rec.LastProfile; base != "" && target != "" && base != target {
		if top, err := d.store.Growth(base, target, topGrowthN); err == nil {
			for _, t := range top {
				pm.TopGrowth = append(pm.TopGrowth, FunctionGrowth{Function: t.Function, Bytes: t.Bytes})
			}
		} else {
			g.log.Warn("top growth of the previous run unavailable", slog.String("base", base), slog.String("target", target), slog.Any("error", err))
		}
	}
	if pm.LikelyOOMKilled {
		top := "unknown"
		if len(pm.TopGrowth) > 0 {
			top = fmt.Sprintf("%s +%s", pm.TopGrowth[0].Function, humanize.Bytes(pm.TopGrowth[0].Bytes))
		}
		last := "none"
		if pm.LastProfile != "" {
			last = pm.LastProfile
		}
		g.log.Error(fmt.Sprintf("previous run (pid %d) likely OOM-killed at about %s, at %s of %s; last profile %s; top growth: %s",
			rec.PID, rec.LastSeen.UTC().Format(time.RFC3339), humanize.Bytes(rec.Usage), humanize.Bytes(rec.Limit), last, top),
			slog.String("reason", pm.Reason), slog.Bool("leak_suspected", rec.Leak))
	}
	return pm
}

// sayLeak logs, once per leak, that memory grows independent of load, with
// the top growth of the current climb when profiles are on; it reads the
// profiles on a goroutine of its own.
func (g *Guard) sayLeak(rate float64) {
	msg := fmt.Sprintf("memory grows %.1f MiB/s independent of load: likely a leak, which shedding cannot slow", rate/(1<<20))
	d := g.dumper
	if d == nil || !g.join() {
		g.log.Warn(msg)
		return
	}
	go func() {
		defer g.wg.Done()
		d.mu.Lock()
		base := d.climbFirst
		d.mu.Unlock()
		top := "no profiles of the climb yet"
		if last, ok := d.store.Latest(); ok && base != "" && base != last.Name {
			if grown, err := d.store.Growth(base, last.Name, 1); err == nil && len(grown) > 0 {
				top = fmt.Sprintf("%s +%s", grown[0].Function, humanize.Bytes(grown[0].Bytes))
			}
		}
		g.log.Warn(msg+"; top growth: "+top, slog.Float64("bytes_per_second", rate))
	}()
}

// writeState writes the state record: on the dumper's goroutine while the
// guard runs, from Stop at the end. A record that tells of a new level, or
// of the start or the end, reaches the disk before the next; one rewritten
// at High for its news is only renamed into place (see
// profile.Store.RefreshRecord): the kill it is for leaves the page cache
// intact, and an fsync a second cost the service its p99 near GOMEMLIMIT.
func (d *dumper) writeState(g *Guard, rec stateRecord, durable bool) {
	b, err := json.Marshal(rec)
	if err == nil {
		if durable {
			err = d.store.WriteRecord(stateName, b)
		} else {
			err = d.store.RefreshRecord(stateName, b)
		}
	}
	if err != nil {
		d.stateFailed.Add(1)
		d.stateFault.fail(g.log, time.Now(), err, "a post-mortem after a kill reads an older record until it works")
		return
	}
	d.stateFault.ok(g.log, time.Now())
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
func (last stateRecord) news(rec stateRecord) bool {
	move := int64(stateMove * float64(rec.Limit))
	return rec.Usage >= last.Usage+move || rec.Usage <= last.Usage-move ||
		rec.Leak != last.Leak || rec.OOMKills != last.OOMKills ||
		rec.LastProfile != last.LastProfile || rec.ClimbProfile != last.ClimbProfile ||
		rec.LastSeen.Sub(last.LastSeen) >= stateQuiet || rec.LastSeen.Before(last.LastSeen)
}

// record makes the state record of snapshot s.
func (g *Guard) record(s *Snapshot, clean bool) stateRecord {
	d := g.dumper
	rec := stateRecord{
		PID: os.Getpid(), Started: g.startedAt, LastSeen: s.Time, Clean: clean,
		Level: s.Level, Usage: s.Usage, Limit: s.Limit, GrowthRate: s.GrowthRate,
		TimeToLimit: -1, OOMKills: s.OOMKills, InFlight: s.InFlight, Leak: s.LeakSuspected,
	}
	if s.TimeToLimit >= 0 {
		rec.TimeToLimit = s.TimeToLimit.Seconds()
	}
	d.mu.Lock()
	rec.ClimbProfile = d.climbFirst
	d.mu.Unlock()
	if m, ok := d.store.Latest(); ok {
		rec.LastProfile, rec.LastProfileT = m.Name, m.Time
	}
	return rec
}
