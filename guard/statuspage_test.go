package guard

import (
	"context"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/profile"
)

// getPage serves GET / of p and returns the page.
func getPage(t *testing.T, p *statusPage) string {
	t.Helper()
	w := httptest.NewRecorder()
	p.serve(w, loopbackRequest("GET", "/"))
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	return w.Body.String()
}

// pathCoords returns the coordinates of the path of class class.
func pathCoords(t *testing.T, page, class string) []string {
	t.Helper()
	m := regexp.MustCompile(`<path class="` + class + `"[^>]* d="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no path %q in the page", class)
	}
	return regexp.MustCompile(`[ML]-?[0-9.]+,-?[0-9.]+`).FindAllString(m[1], -1)
}

// climbHistory adds n points a second apart to g's history, climbing from
// 40 to 90% of a 256 MiB limit, with 3 requests shed a second.
func climbHistory(g *Guard, n int) {
	// Forget Start's point: it measured this test process, whose memory
	// depends on the tests that ran before.
	g.history.mu.Lock()
	g.history.next, g.history.filled, g.history.lastAt = 0, 0, time.Time{}
	g.history.mu.Unlock()
	t0 := time.Now().Add(time.Second)
	for i := range n {
		f := 0.4 + 0.5*float64(i)/float64(n-1)
		lvl := LevelNormal
		if f >= 0.85 {
			lvl = LevelHigh
		} else if f >= 0.7 {
			lvl = LevelElevated
		}
		g.shed[0].Add(3)
		at := t0.Add(time.Duration(i) * time.Second)
		g.history.add(g, &Snapshot{Time: at, Level: lvl,
			Usage: int64(f * (256 << 20)), Committed: int64(f * (200 << 20)), HeapLive: int64(f * (150 << 20)),
			GoMemLimit: 230 << 20, Limit: 256 << 20}, at)
	}
}

// TestStatusPageCharts: after a minute of history, the page reloads
// itself and draws it: a point per reading in the memory and request
// charts, the limit, GOMEMLIMIT and thresholds labelled in MiB, the levels
// as a strip, the time axis in time ago; and no external asset.
func TestStatusPageCharts(t *testing.T) {
	g := quietGuard(t, Config{Limit: 256 << 20})
	climbHistory(g, 60)
	page := getPage(t, &statusPage{g: g})

	if !strings.Contains(page, `<meta http-equiv="refresh" content="5">`) {
		t.Error("the page does not reload itself")
	}
	held := len(g.history.points(nil)) // the readings above
	for _, class := range []string{"series ws", "series committed", "series heap", "series inflight", "series shed"} {
		if n := len(pathCoords(t, page, class)); n != held {
			t.Errorf("%s: %d points, want %d", class, n, held)
		}
	}
	for _, want := range []string{
		">limit 256.0 MiB<", ">GOMEMLIMIT 230.0 MiB<", ">critical 243.2 MiB<", ">high 217.6 MiB<", ">elevated 179.2 MiB<",
		">250 MiB<", ">0 MiB<", // the y axis
		">now<", ">30 s ago<", // the time axis
		`class="level-normal"`, `class="level-elevated"`, `class="level-high"`,
		"working set <b>230.4 MiB</b>", "shed per second <b>3.0</b>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=", "stylesheet", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q: it must load nothing", bad)
		}
	}
}

// TestStatusPageLimitFarAbove: a limit far above usage (the machine's
// memory) is named under the chart instead of flattening it.
func TestStatusPageLimitFarAbove(t *testing.T) {
	g := quietGuard(t, Config{})
	t0 := time.Now().Add(time.Second)
	for i := range 10 {
		g.history.add(g, &Snapshot{Time: t0.Add(time.Duration(i) * time.Second), Usage: int64(10+i) << 20, Limit: 64 << 30, GoMemLimit: 1<<63 - 1}, t0.Add(time.Duration(i)*time.Second))
	}
	page := getPage(t, &statusPage{g: g})
	if !strings.Contains(page, "Off the chart, far above the usage: limit 64.00 GiB, critical 60.80 GiB, high 54.40 GiB, elevated 44.80 GiB.") {
		t.Error("the page does not name the limit and thresholds above the chart")
	}
	if strings.Contains(page, `class="ref"`) || strings.Contains(page, ">GOMEMLIMIT ") {
		t.Error("the page draws a line off the chart, or GOMEMLIMIT while none is set")
	}
}

// TestStatusPageHumanUnits: the figures are in units people read, and a
// falling or slow usage says "not growing" or no time to the limit rather
// than a negative rate or hundreds of hours.
func TestStatusPageHumanUnits(t *testing.T) {
	g := quietGuard(t, Config{})
	s := *g.snap.Load()
	s.Usage, s.Limit, s.GrowthRate, s.TimeToLimit = 100<<20, 256<<20, -237557, -1
	g.snap.Store(&s)
	p := &statusPage{g: g}
	page := getPage(t, p)
	for _, want := range []string{"100.0 MiB of 256.0 MiB (39.1%)", "<th>growth</th><td>not growing</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "B/s") || strings.Contains(page, "-237557") {
		t.Error("the page shows a negative rate")
	}
	s.GrowthRate, s.TimeToLimit = 160, 251*time.Hour+35*time.Minute
	g.snap.Store(&s)
	if page := getPage(t, p); !strings.Contains(page, "<td>growing 160 B/s</td>") || strings.Contains(page, "251") {
		t.Error("a slow growth shows a time to the limit hours away")
	}
	s.GrowthRate, s.TimeToLimit = 1.25*(1<<20), 3200*time.Millisecond
	g.snap.Store(&s)
	if page := getPage(t, p); !strings.Contains(page, "<td>growing 1.2 MiB/s, limit in 3.2 s</td>") {
		t.Error("a fast growth does not show the time to the limit")
	}

	for _, tt := range []struct {
		got, want string
	}{
		{bytesHuman(0), "0 B"}, {bytesHuman(1023), "1023 B"}, {bytesHuman(1536), "1.5 KiB"},
		{bytesHuman(12_897_485), "12.3 MiB"}, {bytesHuman(3 << 30), "3.00 GiB"}, {bytesHuman(-5 << 20), "-5.0 MiB"},
		{durHuman(1500 * time.Microsecond), "1 ms"}, {durHuman(3200 * time.Millisecond), "3.2 s"},
		{durHuman(42 * time.Second), "42 s"}, {durHuman(4*time.Minute + 12*time.Second), "4 min 12 s"},
		{durHuman(251*time.Hour + 35*time.Minute), "10 d 11 h"}, {durHuman(-time.Second), "0 ms"},
		{agoLabel(0), "now"}, {agoLabel(30 * time.Second), "30 s ago"}, {agoLabel(2 * time.Minute), "2 min ago"},
		{bytesIn(50<<20, 1<<20), "50 MiB"}, {bytesIn(1<<29, 1<<30), "0.5 GiB"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	for _, tt := range []struct{ hi, unit, want float64 }{
		{280 << 20, 1 << 20, 50 << 20}, {1.05 * (1 << 20), 1 << 20, 0.2 * (1 << 20)}, {4.4, 1, 1}, {1.1, 1, 0.2}, {700 << 30, 1 << 30, 200 << 30},
	} {
		if got := niceStep(tt.hi, tt.unit); got != tt.want || tt.hi/got > 6 {
			t.Errorf("niceStep(%v, %v) = %v, want %v", tt.hi, tt.unit, got, tt.want)
		}
	}
}

func mibOf(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

var statusPageSink [][]byte

//go:noinline
func growForStatusPage() {
	for range 32 {
		statusPageSink = append(statusPageSink, make([]byte, 1<<20))
	}
}

// TestStatusPageTopGrowth: two profiles of a climb with an allocation
// between them give a top-growth table that names the function that
// allocated, with links to the diff and to both profiles. The growth is
// computed once per newest profile, and stays on the page once the climb
// is over.
func TestStatusPageTopGrowth(t *testing.T) {
	g := quietGuard(t, Config{DumpDir: t.TempDir(), DumpMinInterval: time.Hour})
	defer func() { statusPageSink = nil }()
	d := g.dumper
	p := &statusPage{g: g}
	if page := getPage(t, p); !strings.Contains(page, "No climb") {
		t.Error("before a climb, the page does not say there is none")
	}
	write := func(level Level) profile.Meta {
		t.Helper()
		runtime.GC() // a heap profile shows the heap as of the last GC cycle
		m, err := d.write(g, profile.Meta{Reason: "level " + level.String(), Level: level.String(), Force: true})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := write(LevelElevated)
	if page := getPage(t, p); !strings.Contains(page, "One profile of this climb so far") {
		t.Error("with one profile of the climb, the page does not say so")
	}
	growForStatusPage()
	second := write(LevelHigh)

	page := getPage(t, p)
	table := regexp.MustCompile(`(?s)<table id="top-growth".*?</table>`).FindString(page)
	row := regexp.MustCompile(`<tr><td><code>([^<]*)</code></td><td class="n">\+([0-9.]+) MiB</td>`).FindStringSubmatch(table)
	if row == nil || !strings.HasSuffix(row[1], ".growForStatusPage") || mibOf(row[2]) < 16 {
		t.Fatalf("top growth %q, want guard.growForStatusPage first with 16 MiB or more", table)
	}
	for _, link := range []string{
		`<a href="heap/diff?base=` + first.Name + `&amp;target=` + second.Name + `">`,
		`<a href="heap/` + first.Name + `">`, `<a href="heap/` + second.Name + `">`,
	} {
		if !strings.Contains(page, link) {
			t.Errorf("the page lacks the link %s", link)
		}
	}
	cached := &p.top[0]
	getPage(t, p)
	if &p.top[0] != cached {
		t.Error("the growth was computed again for the same newest profile")
	}
	third := write(LevelHigh)
	page = getPage(t, p)
	if p.target != third.Name || !strings.Contains(page, `target=`+third.Name) {
		t.Errorf("after a new profile, the growth is still to %s", p.target)
	}

	// Back to Normal: the climb is over, its growth stays readable.
	d.mu.Lock()
	d.climbFirst = ""
	d.mu.Unlock()
	if page := getPage(t, p); !strings.Contains(page, "the last climb, now over") || !strings.Contains(page, `id="top-growth"`) {
		t.Error("after the climb, the page drops its growth")
	}
}

// TestStatusPagePostMortem: a previous run likely OOM-killed is told at
// the top of the page, with its usage, limit, last profile and what grew;
// a clean one in a line further down.
func TestStatusPagePostMortem(t *testing.T) {
	dir := t.TempDir()
	_, last, _ := killedRun(t, dir)

	g := quietGuard(t, Config{DumpDir: dir})
	page := getPage(t, &statusPage{g: g})
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
	page = getPage(t, &statusPage{g: g})
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
	page := getPage(t, &statusPage{g: g})
	if !strings.Contains(page, "<title>oomguard · off</title>") || !strings.Contains(page, "Switched off by OOMGUARD=off") || strings.Contains(page, "<svg") {
		t.Errorf("the page of a guard that is off:\n%s", page)
	}
}
