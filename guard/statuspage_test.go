package guard

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/profile"
)

// getPage serves GET / of g's DebugHandler and returns the page.
func getPage(t *testing.T, g *Guard) string {
	t.Helper()
	w := httptest.NewRecorder()
	g.DebugHandler().ServeHTTP(w, loopbackRequest("GET", "/"))
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	return w.Body.String()
}

// TestStatusPagePostMortem: a previous run likely OOM-killed is told at
// the top of the page, with its usage, limit, last profile and what grew;
// a clean one in a line further down.
func TestStatusPagePostMortem(t *testing.T) {
	dir := t.TempDir()
	_, last, _ := killedRun(t, dir)

	g := quietGuard(t, Config{DumpDir: dir})
	page := getPage(t, g)
	pm := regexp.MustCompile(`(?s)<section class="pm oom" id="postmortem">.*?</section>`).FindString(page)
	if pm == "" || strings.Index(page, pm) > strings.Index(page, "<h2>Memory</h2>") {
		t.Fatal("no post-mortem before the charts")
	}
	for _, want := range []string{"likely OOM-killed", "pid 4242", "243.0 MiB of 256.0 MiB", `<a href="heap/` + last.Name + `">`, ".growForPostmortem</code>"} {
		if !strings.Contains(pm, want) {
			t.Errorf("the post-mortem lacks %q:\n%s", want, pm)
		}
	}

	g.Stop()
	g = quietGuard(t, Config{DumpDir: dir})
	page = getPage(t, g)
	if !strings.Contains(page, `<section class="pm" id="postmortem"><h2>The previous run ended cleanly</h2>`) || strings.Index(page, "postmortem") < strings.Index(page, "<h2>Memory</h2>") {
		t.Error("a clean previous run is not told below the charts")
	}
}

// TestStatusPageOff: a guard switched off by the environment says so, and
// draws nothing it does not watch.
func TestStatusPageOff(t *testing.T) {
	withEnv(t, map[string]string{EnvSwitch: "off"})
	g, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	page := getPage(t, g)
	if !strings.Contains(page, "<title>oomguard · off</title>") || !strings.Contains(page, "Switched off by OOMGUARD=off") || strings.Contains(page, "<svg") {
		t.Errorf("the page of a guard that is off:\n%s", page)
	}
}

// TestStatusPageOfAGuard: the page shows what the guard hands it: who set
// GOMEMLIMIT, the thresholds of its Config, and the growth from the first
// profile of the climb in progress.
func TestStatusPageOfAGuard(t *testing.T) {
	g := quietGuard(t, Config{Limit: 256 << 20, DumpDir: t.TempDir(), DumpMinInterval: time.Hour,
		Thresholds: Thresholds{Critical: 0.9}, Logger: slog.New(slog.DiscardHandler)})
	g.addHistory(&Snapshot{Time: time.Now(), Usage: 100 << 20, Limit: 256 << 20}, time.Now().Add(time.Hour))
	g.addHistory(&Snapshot{Time: time.Now().Add(time.Second), Usage: 110 << 20, Limit: 256 << 20}, time.Now().Add(time.Hour+time.Second))
	for _, l := range []Level{LevelElevated, LevelHigh} {
		runtime.GC()
		if _, err := g.rec.Write(profile.Meta{Reason: "level " + l.String(), Level: l.String(), Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	page := getPage(t, g)
	for _, want := range []string{"<th>GOMEMLIMIT</th><td>", ", left as it was (Config.MemoryLimitRatio < 0)", ">critical 230.4 MiB<", "In-use heap gained in this climb, from its first profile"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
