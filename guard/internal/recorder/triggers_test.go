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
