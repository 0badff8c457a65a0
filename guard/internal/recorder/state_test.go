package recorder

import (
	"log/slog"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
)

// open opens a recorder on a new directory, with cfg's other fields, and
// closes it when the test ends.
func open(t testing.TB, cfg Config) *Recorder {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Now()
	}
	r, err := Open(cfg)
	if err != nil || r == nil {
		t.Fatalf("Open: %v, %v", r, err)
	}
	t.Cleanup(r.Close)
	return r
}

// BenchmarkStateRecord is one write of the state record as the guard makes
// it at a level change, and at most once a second at High and above: the
// record marshalled, written to a temporary file, synced, renamed over the
// old one and the directory synced.
func BenchmarkStateRecord(b *testing.B) {
	r := open(b, Config{MinInterval: time.Second, BeforeLimit: 10 * time.Second})
	rd := &Reading{Time: time.Now(), Level: level.Normal, Usage: 100 << 20, Limit: 1 << 40, TimeToLimit: -1, OOMKills: -1}
	b.ReportAllocs()
	for b.Loop() {
		r.writeState(r.record(rd, false), true)
	}
	if n := r.stateFailed.Load(); n > 0 {
		b.Fatalf("%d state records not written", n)
	}
}

// TestStateRecordNews: at a steady High the state record is rewritten for
// its news, not every second: a move of the working set by stateMove of the
// limit, a leak, an OOM kill, a profile, or stateQuiet of age.
func TestStateRecordNews(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	last := State{LastSeen: t0, Usage: 200 << 20, Limit: 256 << 20, OOMKills: 0, LastProfile: "heap-1.pb.gz"}
	move := int64(stateMove * float64(last.Limit))
	for _, tt := range []struct {
		name string
		edit func(r *State)
		news bool
	}{
		{"a second later, the same", func(r *State) { r.LastSeen = t0.Add(time.Second) }, false},
		{"usage up by less than stateMove", func(r *State) { r.Usage += move - 1 }, false},
		{"usage up by stateMove", func(r *State) { r.Usage += move }, true},
		{"usage down by stateMove", func(r *State) { r.Usage -= move }, true},
		{"a leak", func(r *State) { r.Leak = true }, true},
		{"an OOM kill", func(r *State) { r.OOMKills = 1 }, true},
		{"a new profile", func(r *State) { r.LastProfile = "heap-2.pb.gz" }, true},
		{"stateQuiet later", func(r *State) { r.LastSeen = t0.Add(stateQuiet) }, true},
		{"the clock went back", func(r *State) { r.LastSeen = t0.Add(-time.Second) }, true},
	} {
		rec := last
		rec.LastSeen = t0.Add(time.Second)
		tt.edit(&rec)
		if got := last.news(rec); got != tt.news {
			t.Errorf("%s: news %v, want %v", tt.name, got, tt.news)
		}
	}
}
