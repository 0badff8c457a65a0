package recorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/oomguard/oomguard/guard/internal/humanize"
	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/profile"
)

const (
	// killSoon: a previous run whose last reading put the limit this
	// close, at its growth rate, likely died of it.
	killSoon = 10 * time.Second
	// TopGrowthN is how many functions a post-mortem names.
	TopGrowthN = 10
)

// PostMortem is what the recorder concluded at the guard's start about the
// previous run on the same directory, from the state record that run left
// (guard.PostMortem says what each field means).
type PostMortem struct {
	PID             int
	Started         time.Time
	LastSeen        time.Time
	Ended           string // "clean" or "unclean"
	LikelyOOMKilled bool
	Reason          string
	LastLevel       level.Level
	LastUsageBytes  int64
	LimitBytes      int64
	LastProfile     string
	LastProfileTime time.Time
	TopGrowth       []profile.Growth // largest first
	LeakSuspected   bool
}

// Recall reads the previous run's state record, concludes how it ended, and
// logs an unclean end that was likely an OOM kill at ERROR; nil when there
// was no record, or none that reads. oomKills is the cgroup's count now,
// -1 unknown. Call it before the first WriteState, which replaces the
// record.
func (r *Recorder) Recall(oomKills int64) *PostMortem {
	b, err := r.store.ReadRecord(StateName)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var rec State
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		r.log.Warn("state record of the previous run unreadable", slog.String("dir", r.cfg.Dir), slog.Any("error", err))
		return nil
	}
	// The record is written at most once a second: a profile the last run
	// wrote after it is newer evidence.
	if m, ok := r.store.Latest(); ok && !m.Time.Before(rec.Started) && m.Time.After(rec.LastProfileT) {
		rec.LastProfile, rec.LastProfileT = m.Name, m.Time
	}
	pm := &PostMortem{
		PID: rec.PID, Started: rec.Started, LastSeen: rec.LastSeen, Ended: "clean",
		LastLevel: rec.Level, LastUsageBytes: rec.Usage, LimitBytes: rec.Limit,
		LastProfile: rec.LastProfile, LastProfileTime: rec.LastProfileT,
		LeakSuspected: rec.Leak, TopGrowth: []profile.Growth{},
	}
	if !rec.Clean {
		// What that run left is the evidence of its end: a profile
		// written on demand must not delete it (see RequestedReason).
		for _, m := range r.store.List() {
			r.store.Keep(m.Name)
		}
		pm.Ended = "unclean"
		var why []string
		if rec.Level >= level.High {
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
		for _, m := range r.store.List() {
			if m.Kind == "" || m.Kind == profile.KindHeap {
				base = m.Name
				break
			}
		}
	}
	if target := rec.LastProfile; base != "" && target != "" && base != target {
		if top, err := r.store.Growth(base, target, TopGrowthN); err == nil {
			pm.TopGrowth = append(pm.TopGrowth, top...)
		} else {
			r.log.Warn("top growth of the previous run unavailable", slog.String("base", base), slog.String("target", target), slog.Any("error", err))
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
		r.log.Error(fmt.Sprintf("previous run (pid %d) likely OOM-killed at about %s, at %s of %s; last profile %s; top growth: %s",
			rec.PID, rec.LastSeen.UTC().Format(time.RFC3339), humanize.Bytes(rec.Usage), humanize.Bytes(rec.Limit), last, top),
			slog.String("reason", pm.Reason), slog.Bool("leak_suspected", rec.Leak))
	}
	return pm
}

// ClimbGrowth names what grew most in the climb in progress, from its
// first profile to the newest, as "function +size", or says there is
// nothing to tell yet. It parses two profiles: call it off the sampler's
// goroutine.
func (r *Recorder) ClimbGrowth() string {
	base := r.ClimbFirst()
	if last, ok := r.store.Latest(); ok && base != "" && base != last.Name {
		if grown, err := r.store.Growth(base, last.Name, 1); err == nil && len(grown) > 0 {
			return fmt.Sprintf("%s +%s", grown[0].Function, humanize.Bytes(grown[0].Bytes))
		}
	}
	return "no profiles of the climb yet"
}
