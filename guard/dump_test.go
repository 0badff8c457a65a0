package guard

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/guard/internal/recorder"
	"github.com/oomguard/oomguard/profile"
)

// TestProfileWriteFailureIsCounted removes the profile directory under a
// running guard: the write fails, is counted and logged, and the guard goes on.
func TestProfileWriteFailureIsCounted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profiles")
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DumpDir: dir, DebugWrite: true})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	base := debugServer(t, g).URL + "/debug/guard"
	if resp, _ := do(t, "POST", base+"/heap"); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("POST /heap into a removed directory: %s, want 500", resp.Status)
	}
	if s := g.Snapshot(); s.ProfileErrors != 1 || s.ProfilesWritten != 0 {
		t.Errorf("%d errors, %d written; want 1 error", s.ProfileErrors, s.ProfilesWritten)
	}
	if resp, _ := do(t, "GET", base+"/status"); resp.StatusCode != 200 {
		t.Errorf("guard not serving after a failed write: %s", resp.Status)
	}
}

// TestRetentionThroughTheGuard: with DumpMaxCount 3, ten triggered
// profiles leave the three newest, no temporary file, and a guard started
// again on the directory lists them.
func TestRetentionThroughTheGuard(t *testing.T) {
	dir := t.TempDir()
	g := quietGuard(t, Config{DumpDir: dir, DumpMaxCount: 3})
	var names []string
	for i := 0; i < 10; i++ {
		m, err := g.rec.Write(profile.Meta{Reason: "level critical", Force: true})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m.Name)
	}
	list := g.rec.Store().List()
	if len(list) != 3 || list[0].Name != names[7] || list[2].Name != names[9] {
		t.Fatalf("kept %v, want the three newest of %v", list, names)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	g.Stop()

	g2 := quietGuard(t, Config{DumpDir: dir, DumpMaxCount: 3})
	if got := g2.rec.Store().List(); len(got) != 3 || got[2].Name != names[9] {
		t.Errorf("after a restart the guard lists %v", got)
	}
	if s := g2.Snapshot(); s.ProfileDiskBytes <= 0 {
		t.Errorf("disk bytes after restart = %d", s.ProfileDiskBytes)
	}
}

// TestDumpDirUnsafeTurnsProfilesOff: a DumpDir that others may write in
// leaves the guard running without profiles, writing nothing there, and
// says so at ERROR.
func TestDumpDirUnsafeTurnsProfilesOff(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits do not say who may write in a directory on Windows")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DumpDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if g.rec != nil {
		t.Error("profiles are on in a DumpDir of mode 0777")
	}
	if out := logs.String(); !strings.Contains(out, `level=ERROR msg="heap profiles are off: Config.DumpDir is unsafe`) || !strings.Contains(out, dir) {
		t.Errorf("no ERROR naming %s saying profiles are off:\n%s", dir, out)
	}
	if out := logs.String(); !strings.Contains(out, "; profiles off ("+dir+" refused);") {
		t.Errorf("the start line does not say profiles are off:\n%s", out)
	}
	g.Stop()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the guard wrote %v in the unsafe directory", entries)
	}
}

// TestDumpDirInUseTurnsProfilesOff: a second guard on the DumpDir of a
// running one starts with profiles off and a WARN saying why, so that the
// two never delete each other's files; once the first stops, a guard
// started on the directory has its profiles.
func TestDumpDirInUseTurnsProfilesOff(t *testing.T) {
	dir := t.TempDir()
	first := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DumpDir: dir})
	if first.rec == nil {
		t.Fatal("the first guard on the directory has profiles off")
	}
	var logs syncBuffer
	second := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DumpDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if second.rec != nil {
		t.Error("a second guard on the same DumpDir has profiles on")
	}
	if out := logs.String(); !strings.Contains(out, `level=WARN msg="heap profiles are off: Config.DumpDir is in use by another guard`) || !strings.Contains(out, dir) {
		t.Errorf("no WARN naming %s saying it is in use:\n%s", dir, out)
	}
	second.Stop()
	first.Stop()
	third := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DumpDir: dir})
	if third.rec == nil {
		t.Error("a guard started after the others stopped has profiles off")
	}
}

// TestOnDemandWriteSparesProfilesFromBeforeAKill: after a run that ended
// without Stop, profiles written on demand (POST /heap), and their pairs,
// make room by deleting each other, never the profiles that run left.
func TestOnDemandWriteSparesProfilesFromBeforeAKill(t *testing.T) {
	dir := t.TempDir()
	first, last, _ := killedRun(t, dir)
	g := quietGuard(t, Config{DumpDir: dir, DumpMaxCount: 3, DumpMinInterval: time.Nanosecond, DebugWrite: true, Logger: slog.New(slog.DiscardHandler)})
	base := debugServer(t, g).URL + "/debug/guard"
	for range 3 {
		if resp, body := do(t, "POST", base+"/heap"); resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /heap: %s %s", resp.Status, body)
		}
	}
	// The pair of the last, at the next GC cycle, is on demand too: one
	// more profile, written by the recorder's writer.
	d := g.rec
	snap := *g.snap.Load()
	d.Triggers(level.Level(snap.Level), reading(&snap), time.Now(), true)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		d.Run(g.done)
	}()
	waitFor(t, g, "the pair written", func(s Snapshot) bool { return s.ProfilesWritten == 4 })
	list := d.Store().List()
	var got []string
	for _, m := range list {
		got = append(got, m.Reason)
	}
	if len(list) != 3 || list[0].Name != first.Name || list[1].Name != last.Name || !list[0].Kept || !list[1].Kept || list[2].Reason != recorder.PairReason {
		t.Errorf("the store holds %q, want the two kept from before the kill, then the pair", got)
	}
}
