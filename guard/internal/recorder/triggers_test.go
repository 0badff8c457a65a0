package recorder

import (
	"bytes"
	"log/slog"
	"os/exec"
	"path/filepath"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/profile"
)

// drain writes what the triggers queued, as the writer would, and returns
// it.
func drain(r *Recorder) []profile.Meta {
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	for _, m := range pending {
		r.Write(m)
	}
	return pending
}

// TestTriggersWriteAPairPerLevel drives the dump triggers with synthetic
// readings: each upward level crossing writes a profile, and the next GC
// cycle writes its pair.
func TestTriggersWriteAPairPerLevel(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	r := open(t, Config{Dir: dir, MinInterval: time.Hour, BeforeLimit: 10 * time.Second,
		Flight: &trace.FlightRecorderConfig{MinAge: time.Second, MaxBytes: 16 << 20}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if r.flight == nil {
		t.Fatal("the flight recorder did not start")
	}
	now := time.Now()
	const limit = 1 << 40
	reading := func(p float64, l level.Level) *Reading {
		return &Reading{Time: now, Level: l, Usage: int64(p * limit), Limit: limit, Pressure: p, TimeToLimit: -1, OOMKills: -1}
	}
	prev := level.Normal
	for _, st := range []struct {
		p  float64
		l  level.Level
		gc bool
	}{{0.5, level.Normal, false}, {0.72, level.Elevated, false}, {0.73, level.Elevated, true}, {0.86, level.High, false}, {0.87, level.High, true}, {0.96, level.Critical, false}} {
		now = now.Add(10 * time.Millisecond)
		r.Triggers(prev, reading(st.p, st.l), now, st.gc)
		prev = st.l
		// Let the writer finish before the next reading, as a real GC cycle would.
		drain(r)
	}
	// Each file's log line says what it holds.
	for _, what := range []string{"heap profile written (level critical)", "goroutine profile written (level critical)", "execution trace written (level critical)"} {
		if !strings.Contains(logs.String(), what) {
			t.Errorf("no %q in the logs:\n%s", what, logs.String())
		}
	}
	var reasons []string
	var trace string
	for _, m := range r.store.List() {
		reason := m.Reason
		if m.Kind != "" {
			reason += " (" + m.Kind + ")"
		}
		if m.Kind == "trace" {
			trace = filepath.Join(dir, m.Name)
		}
		reasons = append(reasons, reason)
	}
	want := "level elevated,next GC cycle,level high,next GC cycle,level critical,level critical (goroutine),level critical (trace)"
	if got := strings.Join(reasons, ","); got != want {
		t.Errorf("profiles %q, want %q", got, want)
	}
	// The trace snapshot opens with go tool trace, where there is a Go
	// toolchain (a VM guest has none).
	gobin, err := exec.LookPath("go")
	if err != nil || trace == "" {
		t.Logf("go tool trace not run: %v", err)
		return
	}
	out, err := exec.Command(gobin, "tool", "trace", "-d=parsed", trace).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "GoStart") && !strings.Contains(string(out), "Go") {
		t.Errorf("go tool trace -d=parsed %s: %v\n%.2000s", trace, err, out)
	}
}

// TestPairOfOnDemandIsOnDemand: the pair of a profile written on demand,
// queued at the next GC cycle, is on demand too, so that it never deletes
// the profiles kept from before an unclean end; the pair of a triggered
// profile is not.
func TestPairOfOnDemandIsOnDemand(t *testing.T) {
	r := open(t, Config{MinInterval: time.Nanosecond, BeforeLimit: 10 * time.Second})
	rd := &Reading{Time: time.Now(), Level: level.Normal, Usage: 1 << 20, Limit: 1 << 40, TimeToLimit: -1, OOMKills: -1}
	for _, onDemand := range []bool{true, false} {
		reason := "level elevated"
		if onDemand {
			reason = RequestedReason
		}
		if _, err := r.Write(profile.Meta{Reason: reason, OnDemand: onDemand, Force: true}); err != nil {
			t.Fatal(err)
		}
		r.Triggers(rd.Level, rd, time.Now(), true)
		pending := drain(r)
		if len(pending) != 1 || pending[0].Reason != PairReason || pending[0].OnDemand != onDemand {
			t.Errorf("queued after a GC cycle, after a profile on demand %v: %+v, want the pair, on demand %v", onDemand, pending, onDemand)
		}
	}
}

// TestLastMomentsStepTowardsTheLimit: as the limit nears at High, a
// last-moments profile is written at each step of lastMomentsTTL, once per
// climb, steps passed at once giving one; a return to Normal starts again.
func TestLastMomentsStepTowardsTheLimit(t *testing.T) {
	r := open(t, Config{Dir: t.TempDir(), MinInterval: time.Hour, BeforeLimit: time.Nanosecond, Log: slog.New(slog.DiscardHandler)})
	now := time.Now()
	const limit = 1 << 30
	var reasons []string
	climb := func(ttls ...time.Duration) {
		prev := level.Normal
		r.Triggers(prev, &Reading{Time: now, Level: level.Normal, Usage: limit / 2, Limit: limit, Pressure: 0.5, TimeToLimit: -1, OOMKills: -1}, now, false)
		for _, ttl := range ttls {
			now = now.Add(50 * time.Millisecond)
			rd := &Reading{Time: now, Level: level.High, Usage: limit * 9 / 10, Limit: limit, Pressure: 0.9, TimeToLimit: ttl, OOMKills: -1}
			r.Triggers(prev, rd, now, false)
			prev = level.High
			for _, m := range drain(r) {
				if strings.HasPrefix(m.Reason, "last moments") {
					reasons = append(reasons, m.Reason)
				}
			}
		}
	}
	climb(3*time.Second, 2500*time.Millisecond, 1900*time.Millisecond, 1800*time.Millisecond, 1100*time.Millisecond, 900*time.Millisecond,
		500*time.Millisecond, 300*time.Millisecond, 100*time.Millisecond)
	climb(3*time.Second, 400*time.Millisecond, 200*time.Millisecond)
	want := "last moments: limit in 1.9s,last moments: limit in 1.1s,last moments: limit in 0.5s,last moments: limit in 0.4s"
	if got := strings.Join(reasons, ","); got != want {
		t.Errorf("profiles %q, want %q", got, want)
	}
}

// TestStillCriticalCountsFromTheLastProfile: at Critical a profile is
// written every MinInterval after the last one asked for there, the
// last-moments profiles and their pairs included, and none is refused as
// too soon; so when the climb stalls past the last step of the ladder, the
// newest profile is never much older than MinInterval.
func TestStillCriticalCountsFromTheLastProfile(t *testing.T) {
	const interval = time.Second
	r := open(t, Config{Dir: t.TempDir(), MinInterval: interval, BeforeLimit: time.Nanosecond, Log: slog.New(slog.DiscardHandler)})
	start := time.Now()
	now := start
	const limit = 1 << 30
	type write struct {
		at     time.Duration
		reason string
	}
	var writes []write
	prev := level.Normal
	r.Triggers(prev, &Reading{Time: now, Level: level.Normal, Usage: limit / 2, Limit: limit, Pressure: 0.5, TimeToLimit: -1, OOMKills: -1}, now, false)
	// Critical from the start; the ladder's steps at 0.5 s, 1.3 s and 1.9 s,
	// a GC cycle ending 20 ms after each, and then a stall 0.5 s from the
	// limit, as when the kernel reclaims before it kills.
	ttl := func(at time.Duration) time.Duration {
		switch {
		case at < 500*time.Millisecond:
			return 3 * time.Second
		case at < 1300*time.Millisecond:
			return 1900 * time.Millisecond
		case at < 1900*time.Millisecond:
			return 1100 * time.Millisecond
		default:
			return 500 * time.Millisecond
		}
	}
	var lastWrite time.Duration
	for at := time.Duration(0); at <= 6*time.Second; at += 10 * time.Millisecond {
		now = start.Add(at)
		rd := &Reading{Time: now, Level: level.Critical, Usage: limit * 96 / 100, Limit: limit, Pressure: 0.96, TimeToLimit: ttl(at), OOMKills: -1}
		r.Triggers(prev, rd, now, at > 0 && (at-lastWrite) == 20*time.Millisecond)
		prev = level.Critical
		r.mu.Lock()
		pending := r.pending
		r.pending = nil
		r.mu.Unlock()
		for _, m := range pending {
			if _, err := r.Write(m); err == nil && m.Kind == "" {
				writes = append(writes, write{at, m.Reason})
				lastWrite = at
			}
		}
	}
	if n := r.store.Stats().TooSoon; n != 0 {
		t.Errorf("%d profiles refused as too soon", n)
	}
	var still int
	for i, w := range writes {
		if w.reason == "still critical" {
			still++
			if gap := w.at - writes[i-1].at; gap < interval || gap > interval+10*time.Millisecond {
				t.Errorf("%q at %v, %v after the one before (%q), want %v", w.reason, w.at, gap, writes[i-1].reason, interval)
			}
		}
	}
	if still == 0 {
		t.Errorf("no still-critical profile while the climb stalled: %v", writes)
	}
	if last := writes[len(writes)-1]; 6*time.Second-last.at > interval+30*time.Millisecond {
		t.Errorf("the newest profile (%q at %v) is %v old at the end, want about %v at most", last.reason, last.at, 6*time.Second-last.at, interval)
	}
}
