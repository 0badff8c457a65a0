package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/guard/internal/recorder"
	"github.com/oomguard/oomguard/profile"
)

var postmortemSink [][]byte

//go:noinline
func growForPostmortem() {
	for range 32 {
		postmortemSink = append(postmortemSink, make([]byte, 1<<20))
	}
}

// killedRun leaves in dir what a run likely OOM-killed leaves: two heap
// profiles of its climb, with growForPostmortem's 32 MiB between them, and
// a state record that ended at High without Stop, a minute ago, as pid
// 4242 at 243 of 256 MiB. It returns the two profiles and the record's
// last sighting.
func killedRun(t *testing.T, dir string) (first, last profile.Meta, seen time.Time) {
	t.Helper()
	s, err := profile.Open(profile.Options{Dir: dir, MinInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() // the run is over: its guard released the directory
	runtime.GC()
	if first, err = s.Write(profile.Meta{Reason: "level elevated", Level: "elevated"}); err != nil {
		t.Fatal(err)
	}
	growForPostmortem()
	t.Cleanup(func() { postmortemSink = nil })
	runtime.GC()
	if last, err = s.Write(profile.Meta{Reason: "level high", Level: "high"}); err != nil {
		t.Fatal(err)
	}
	seen = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	rec, _ := json.Marshal(recorder.State{PID: 4242, Started: seen.Add(-time.Hour), LastSeen: seen, Level: level.High,
		Usage: 243 << 20, Limit: 256 << 20, TimeToLimit: 1.5, OOMKills: -1, ClimbProfile: first.Name, LastProfile: last.Name, LastProfileT: last.Time})
	if err := s.WriteRecord(recorder.StateName, rec); err != nil {
		t.Fatal(err)
	}
	return first, last, seen
}

// TestPostMortemOfAnUncleanRun: a state record left by a run that ended
// without Stop at High, with two profiles of its climb, gives an ERROR line
// at start that names the function that grew, and /postmortem says the same.
func TestPostMortemOfAnUncleanRun(t *testing.T) {
	dir := t.TempDir()
	_, last, seen := killedRun(t, dir)

	var logs bytes.Buffer
	g, err := Start(context.Background(), Config{DumpDir: dir, Limit: 1 << 40, MemoryLimitRatio: -1,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	pm := g.PostMortem()
	if pm == nil || !pm.LikelyOOMKilled || pm.Ended != "unclean" || pm.PID != 4242 {
		t.Fatalf("post-mortem %+v, want pid 4242 unclean and likely OOM-killed", pm)
	}
	if len(pm.TopGrowth) == 0 || !strings.HasSuffix(pm.TopGrowth[0].Function, "growForPostmortem") || pm.TopGrowth[0].Bytes < 16<<20 {
		t.Errorf("top growth %+v, want guard.growForPostmortem first with about 32 MiB", pm.TopGrowth)
	}
	var errLines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 || !strings.Contains(errLines[0], "previous run (pid 4242) likely OOM-killed at about "+seen.Format(time.RFC3339)) ||
		!strings.Contains(errLines[0], "243.0 MiB of 256.0 MiB") || !strings.Contains(errLines[0], "growForPostmortem +") || !strings.Contains(errLines[0], last.Name) {
		t.Errorf("ERROR lines %q, want one naming pid, time, usage, the last profile and the top growth", errLines)
	}
	if !g.Snapshot().PreviousRunOOMKilled {
		t.Error("Snapshot.PreviousRunOOMKilled false")
	}

	rr := httptest.NewRecorder()
	g.DebugHandler().ServeHTTP(rr, loopbackRequest("GET", "/postmortem"))
	var body struct {
		PreviousRun map[string]any `json:"previous_run"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &body); err != nil || body.PreviousRun == nil {
		t.Fatalf("/postmortem: %d %s", rr.Code, rr.Body)
	}
	for _, k := range []string{"pid", "started", "last_seen", "ended", "likely_oom_killed", "reason", "last_level", "last_usage_bytes", "limit_bytes", "last_profile", "last_profile_time", "top_growth", "leak_suspected"} {
		if _, ok := body.PreviousRun[k]; !ok {
			t.Errorf("/postmortem lacks %q: %s", k, rr.Body)
		}
	}
	if body.PreviousRun["last_level"] != "high" {
		t.Errorf("last_level %v, want high", body.PreviousRun["last_level"])
	}
}

// TestPostMortemBaseIsAHeapProfile: with no first profile of the climb in
// the state record, the post-mortem diffs from the oldest heap profile,
// passing over a goroutine profile written before it.
func TestPostMortemBaseIsAHeapProfile(t *testing.T) {
	dir := t.TempDir()
	s, err := profile.Open(profile.Options{Dir: dir, MinInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.WriteFrom(profile.Meta{Kind: profile.KindGoroutine, Reason: "level critical"}, func(w io.Writer) error {
		return pprof.Lookup("goroutine").WriteTo(w, 0)
	}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if _, err := s.Write(profile.Meta{Reason: "level elevated", Level: "elevated"}); err != nil {
		t.Fatal(err)
	}
	growForPostmortem()
	t.Cleanup(func() { postmortemSink = nil })
	runtime.GC()
	last, err := s.Write(profile.Meta{Reason: "level high", Level: "high"})
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Now().Add(-time.Minute)
	rec, _ := json.Marshal(recorder.State{PID: 4242, Started: seen.Add(-time.Hour), LastSeen: seen, Level: level.High,
		Usage: 243 << 20, Limit: 256 << 20, TimeToLimit: -1, OOMKills: -1, LastProfile: last.Name, LastProfileT: last.Time})
	if err := s.WriteRecord(recorder.StateName, rec); err != nil {
		t.Fatal(err)
	}
	s.Close()

	var logs syncBuffer
	g := startGuard(t, Config{DumpDir: dir, Limit: 1 << 40, MemoryLimitRatio: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	pm := g.PostMortem()
	if pm == nil || len(pm.TopGrowth) == 0 || !strings.HasSuffix(pm.TopGrowth[0].Function, "growForPostmortem") {
		t.Errorf("post-mortem %+v, want guard.growForPostmortem first in its top growth; the log:\n%s", pm, logs.String())
	}
}

// TestPostMortemOfACleanRun: Stop marks the record clean; the next start
// says so, logs no ERROR, and /postmortem answers null with no record.
func TestPostMortemOfACleanRun(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	cfg := Config{DumpDir: dir, Limit: 1 << 40, MemoryLimitRatio: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	g, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rr := httptest.NewRecorder()
	g.DebugHandler().ServeHTTP(rr, loopbackRequest("GET", "/postmortem"))
	if got := strings.TrimSpace(rr.Body.String()); got != `{
  "previous_run": null
}` {
		t.Errorf("/postmortem with no previous run: %s", got)
	}
	g.Stop()
	g, err = Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	pm := g.PostMortem()
	if pm == nil || pm.Ended != "clean" || pm.LikelyOOMKilled {
		t.Errorf("post-mortem %+v, want a clean end", pm)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("ERROR logged after a clean Stop:\n%s", logs.String())
	}
}
