package statuspage

import (
	"math"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/profile"
)

// newPage makes the page of a guard with the default thresholds, started
// now, drawing h; profiles may be nil, as with heap profiles off.
func newPage(h *History, profiles Profiles) *Page {
	return New(Config{Thresholds: Thresholds{Elevated: 0.70, High: 0.85, Critical: 0.95}, Switch: "OOMGUARD",
		Started: time.Now(), History: h, Profiles: profiles})
}

// status is a guard's state at usage of a 256 MiB limit, at Normal.
func status(usage int64) *Status {
	const limit = 256 << 20
	return &Status{Time: time.Now(), Level: level.Normal, Usage: usage, Limit: limit, Pressure: float64(usage) / limit,
		GoMemLimit: math.MaxInt64, GoMemLimitSource: "unchanged", TimeToLimit: -1, InFlightLimit: math.MaxInt32, OOMKills: -1}
}

// getPage serves p with s and climb, and returns the page.
func getPage(t *testing.T, p *Page, s *Status, climb string) string {
	t.Helper()
	w := httptest.NewRecorder()
	p.Serve(w, s, nil, climb)
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

// climbHistory adds n points a second apart to h, climbing from 40 to 90%
// of a 256 MiB limit, with 3 requests shed a second.
func climbHistory(h *History, n int) {
	t0 := time.Now().Add(time.Second)
	var shed int64
	for i := range n {
		f := 0.4 + 0.5*float64(i)/float64(n-1)
		lvl := level.Normal
		if f >= 0.85 {
			lvl = level.High
		} else if f >= 0.7 {
			lvl = level.Elevated
		}
		shed += 3
		at := t0.Add(time.Duration(i) * time.Second)
		h.Add(at, Point{T: at.UnixNano(), Level: lvl,
			Usage: int64(f * (256 << 20)), Committed: int64(f * (200 << 20)), Heap: int64(f * (150 << 20)),
			GoMemLimit: 230 << 20, Limit: 256 << 20}, shed)
	}
}

// TestStatusPageCharts: after a minute of history, the page reloads
// itself and draws it: a point per reading in the memory and request
// charts, the limit, GOMEMLIMIT and thresholds labelled in MiB, the levels
// as a strip, the time axis in time ago; and no external asset.
func TestStatusPageCharts(t *testing.T) {
	var h History
	climbHistory(&h, 60)
	page := getPage(t, newPage(&h, nil), status(100<<20), "")

	if !strings.Contains(page, `<meta http-equiv="refresh" content="5">`) {
		t.Error("the page does not reload itself")
	}
	held := len(h.Points(nil)) // the readings above
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
	var h History
	t0 := time.Now().Add(time.Second)
	for i := range 10 {
		at := t0.Add(time.Duration(i) * time.Second)
		h.Add(at, Point{T: at.UnixNano(), Usage: int64(10+i) << 20, Limit: 64 << 30, GoMemLimit: 1<<63 - 1}, 0)
	}
	page := getPage(t, newPage(&h, nil), status(10<<20), "")
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
	s := status(100 << 20)
	s.GrowthRate, s.TimeToLimit = -237557, -1
	p := newPage(&History{}, nil)
	page := getPage(t, p, s, "")
	for _, want := range []string{"100.0 MiB of 256.0 MiB (39.1%)", "<th>growth</th><td>not growing</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "B/s") || strings.Contains(page, "-237557") {
		t.Error("the page shows a negative rate")
	}
	s.GrowthRate, s.TimeToLimit = 160, 251*time.Hour+35*time.Minute
	if page := getPage(t, p, s, ""); !strings.Contains(page, "<td>growing 160 B/s</td>") || strings.Contains(page, "251") {
		t.Error("a slow growth shows a time to the limit hours away")
	}
	s.GrowthRate, s.TimeToLimit = 1.25*(1<<20), 3200*time.Millisecond
	if page := getPage(t, p, s, ""); !strings.Contains(page, "<td>growing 1.2 MiB/s, limit in 3.2 s</td>") {
		t.Error("a fast growth does not show the time to the limit")
	}

}

// TestStatusPageRecommendation: the recommended limit in MiB, marked when
// it is above the limit, and each reason for none in words.
func TestStatusPageRecommendation(t *testing.T) {
	p := newPage(&History{}, nil)
	for _, tt := range []struct {
		limit  int64
		reason string
		want   string
	}{
		{384 << 20, "", `<th>recommended limit</th><td><b class="high">384.0 MiB</b>, to serve the load offered over the last 5 minutes without shedding</td>`},
		{200 << 20, "", `<th>recommended limit</th><td>200.0 MiB, to serve the load offered over the last 5 minutes without shedding</td>`},
		{0, "not shedding", `<th>recommended limit</th><td>none: nothing shed for memory in the last 5 minutes</td>`},
		{0, "leak", `<th>recommended limit</th><td>none: memory grows independent of load, likely a leak; more memory would only put the kill off</td>`},
		{0, "time", `<th>recommended limit</th><td>none: the time bound refuses most of the work shed; the CPUs, not memory, are short</td>`},
	} {
		s := status(200 << 20)
		s.RecommendedLimit, s.RecommendedLimitReason, s.RecommendWindow = tt.limit, tt.reason, 5*time.Minute
		if page := getPage(t, p, s, ""); !strings.Contains(page, tt.want) {
			t.Errorf("recommended %d bytes, reason %q: the page lacks %s", tt.limit, tt.reason, tt.want)
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
	store, err := profile.Open(profile.Options{Dir: t.TempDir(), MinInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	defer func() { statusPageSink = nil }()
	p := newPage(&History{}, store)
	s := status(100 << 20)
	if page := getPage(t, p, s, ""); !strings.Contains(page, "No climb") {
		t.Error("before a climb, the page does not say there is none")
	}
	write := func(l level.Level) profile.Meta {
		t.Helper()
		runtime.GC() // a heap profile shows the heap as of the last GC cycle
		m, err := store.Write(profile.Meta{Reason: "level " + l.String(), Level: l.String(), Force: true})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := write(level.Elevated)
	climb := first.Name // the guard's recorder names the climb's first profile
	if page := getPage(t, p, s, climb); !strings.Contains(page, "One profile of this climb so far") {
		t.Error("with one profile of the climb, the page does not say so")
	}
	growForStatusPage()
	second := write(level.High)

	page := getPage(t, p, s, climb)
	table := regexp.MustCompile(`(?s)<table id="top-growth".*?</table>`).FindString(page)
	row := regexp.MustCompile(`<tr><td><code>([^<]*)</code></td><td class="n">\+([0-9.]+) MiB</td>`).FindStringSubmatch(table)
	if row == nil || !strings.HasSuffix(row[1], ".growForStatusPage") || mibOf(row[2]) < 16 {
		t.Fatalf("top growth %q, want statuspage.growForStatusPage first with 16 MiB or more", table)
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
	getPage(t, p, s, climb)
	if &p.top[0] != cached {
		t.Error("the growth was computed again for the same newest profile")
	}
	third := write(level.High)
	page = getPage(t, p, s, climb)
	if p.target != third.Name || !strings.Contains(page, `target=`+third.Name) {
		t.Errorf("after a new profile, the growth is still to %s", p.target)
	}

	// Back to Normal: the climb is over, its growth stays readable.
	if page := getPage(t, p, s, ""); !strings.Contains(page, "the last climb, now over") || !strings.Contains(page, `id="top-growth"`) {
		t.Error("after the climb, the page drops its growth")
	}
}
