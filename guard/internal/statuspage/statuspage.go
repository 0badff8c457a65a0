// Package statuspage renders the guard's status page, GET / of its
// DebugHandler: the guard's state, its last ten minutes as charts, what
// grew in the current climb, the previous run's post-mortem and the
// profiles. It takes plain values, which the guard fills: a Status, the
// recorder's post-mortem, the profile store and the History.
//
// The page is built with strings and html.EscapeString rather than
// html/template: template execution uses reflection that keeps every
// exported method in the binary, megabytes a service would pay for one
// debug page.
package statuspage

import (
	"fmt"
	"html"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oomguard/oomguard/guard/internal/humanize"
	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/guard/internal/recorder"
	"github.com/oomguard/oomguard/profile"
)

// statusRefresh is how often the status page reloads itself.
const statusRefresh = 5 * time.Second

// Config is what the page knows of its guard for the guard's life.
type Config struct {
	// Thresholds are the levels' entry points, as fractions of the limit.
	Thresholds Thresholds
	// Switch is the environment variable that switches the guard off.
	Switch string
	// Started is when the guard started: profiles from before it are
	// another run's.
	Started time.Time
	// History is the guard's last ten minutes.
	History *History
	// Profiles is the profile store; nil when heap profiles are off.
	Profiles Profiles
}

// Thresholds are the levels' entry points, as fractions of the limit.
type Thresholds struct {
	Elevated, High, Critical float64
}

// Profiles is what the page reads of the profile store (profile.Store).
type Profiles interface {
	List() []profile.Meta
	Latest() (profile.Meta, bool)
	Growth(base, target string, n int) ([]profile.Growth, error)
}

// Status is the guard's state the page shows, as of one request: the
// guard's Snapshot, in its units (sizes in bytes). The sources are the
// strings of the guard's LimitSource, UsageSource and GoMemLimitSource.
type Status struct {
	Time               time.Time
	Off                bool
	Level              level.Level
	Usage, Limit       int64
	Committed          int64
	Pressure           float64 // Usage as a fraction of Limit
	CommittedPressure  float64 // Committed as a fraction of Limit
	LimitSource        string
	LimitDetail        string
	UsageSource        string
	GoMemLimit         int64
	GoMemLimitSource   string // "guard", "env" or "unchanged"
	HeapLive, HeapGoal int64
	GCCPUFraction      float64
	GCThrashing        bool
	GrowthRate         float64 // bytes per second
	TimeToLimit        time.Duration
	LeakSuspected      bool
	Interval           time.Duration
	OOMKills           int64 // -1 unknown
	ReadErrors         int64

	InFlight, InFlightLimit, Admitted int64
	Shed                              ShedCounts
	Cancelled                         int64
	WorkCost, AdmissionTarget         int64
	// RecommendedLimit is the limit that would have served the load
	// offered over the last RecommendWindow, 0 for none; then
	// RecommendedLimitReason is the guard's word for why: "not shedding",
	// "leak" or "time".
	RecommendedLimit       int64
	RecommendedLimitReason string
	RecommendWindow        time.Duration

	ProfilesWritten, ProfileErrors, ProfileDiskBytes int64
}

// ShedCounts counts refused requests by priority.
type ShedCounts struct {
	Sheddable, Default, Critical int64
}

// Page serves the status page of one guard. Its methods are safe for
// concurrent use.
type Page struct {
	cfg Config

	// The top growth of the latest climb, computed once per newest
	// profile: a diff parses two profiles (about 2 ms and 1.4 MB), too
	// much for a page that reloads every few seconds.
	mu     sync.Mutex
	base   string // the climb's first profile
	target string // the newest profile when computed
	top    []profile.Growth
	err    error
	pts    []Point // reused between requests, under mu
}

// New returns the page of a guard described by cfg.
func New(cfg Config) *Page { return &Page{cfg: cfg} }

// Serve writes the page: s is the guard's state now, pm the previous run's
// post-mortem (nil without one), and climb the first profile of the climb
// in progress ("" when none).
func (p *Page) Serve(w http.ResponseWriter, s *Status, pm *recorder.PostMortem, climb string) {
	var b strings.Builder
	b.Grow(64 << 10)
	title := s.Level.String() + " · " + pct(s.Pressure)
	if s.Off {
		title = "off"
	}
	fmt.Fprintf(&b, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="%d">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>oomguard · %s</title>
<style>%s</style>
</head><body>
`, int(statusRefresh/time.Second), title, pageStyle)
	defer func() {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, b.String())
	}()

	if s.Off {
		fmt.Fprintf(&b, "<header><h1>oomguard</h1><span class=\"badge\" style=\"background:%s\">off</span></header>\n<p>Switched off by %s=off: it watches nothing, sheds nothing, writes nothing and leaves GOMEMLIMIT alone.</p>\n</body></html>\n",
			levelColor(-1), p.cfg.Switch)
		return
	}
	fmt.Fprintf(&b, `<header><h1>oomguard</h1><span class="badge" style="background:%s">%s</span>
<span class="headline">%s of %s (%s)</span>
<span class="asof">as of %s · reloads every %d s</span></header>
`, levelColor(s.Level), s.Level, humanize.Bytes(s.Usage), humanize.Bytes(s.Limit), pct(s.Pressure),
		s.Time.UTC().Format("15:04:05 UTC"), int(statusRefresh/time.Second))

	if pm != nil && pm.LikelyOOMKilled {
		p.writePostMortem(&b, pm, s.Time)
	}
	if s.LeakSuspected {
		b.WriteString(`<p class="alert">Memory grows while the work in flight does not: likely a leak, which shedding cannot slow. See the top growth below.</p>` + "\n")
	}
	p.mu.Lock()
	p.pts = p.cfg.History.Points(p.pts[:0])
	pts := p.pts
	b.WriteString("<h2>Memory</h2>\n")
	if len(pts) < 2 {
		b.WriteString("<p>Collecting: the charts fill in at a point a second.</p>\n")
	} else {
		off := writeMemoryChart(&b, pts, p.cfg.Thresholds)
		writeLevelStrip(&b, pts)
		newest := &pts[len(pts)-1]
		b.WriteString(`<p class="legend">`)
		legend(&b, colWorkingSet, "working set", humanize.Bytes(newest.Usage))
		legend(&b, colCommitted, "committed", humanize.Bytes(newest.Committed))
		legend(&b, colHeap, "Go heap (live)", humanize.Bytes(newest.Heap))
		b.WriteString(`<span class="levels">level: `)
		for l := level.Normal; l <= level.Critical; l++ {
			fmt.Fprintf(&b, `<span class="sw box" style="background:%s"></span>%s `, levelColor(l), l)
		}
		b.WriteString("</span></p>\n")
		if off != "" {
			b.WriteString(`<p class="note">` + html.EscapeString(off) + "</p>\n")
		}
		fmt.Fprintf(&b, "<p class=\"note\">The last %s, a point a second (%d points).</p>\n", humanize.Duration(time.Duration(newest.T-pts[0].T)), len(pts))
		b.WriteString("<h2>Requests</h2>\n")
		writeRequestsChart(&b, pts)
		b.WriteString(`<p class="legend">`)
		legend(&b, colInFlight, "in flight", strconv.Itoa(int(newest.InFlight)))
		legend(&b, colShed, "shed per second", strconv.FormatFloat(float64(newest.shedRate), 'f', 1, 32))
		b.WriteString("</p>\n")
	}
	p.writeGrowth(&b, climb)
	p.mu.Unlock()

	b.WriteString("<h2>Details</h2>\n")
	writeSummary(&b, s, p.cfg.Profiles != nil)

	if pm != nil && !pm.LikelyOOMKilled {
		p.writePostMortem(&b, pm, s.Time)
	}
	p.writeProfiles(&b, s.Time)
	b.WriteString(`<footer><a href="status">status JSON</a> · <a href="heap">profiles JSON</a> · <a href="postmortem">post-mortem JSON</a></footer>` + "\n</body></html>\n")
}

const pageStyle = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1.5em;color:#111827;background:#fff}
header{display:flex;align-items:baseline;gap:.8em;flex-wrap:wrap;border-bottom:1px solid #e5e7eb;padding-bottom:.6em}
h1{font-size:22px;margin:0}h2{font-size:16px;margin:1.6em 0 .4em}
.badge{color:#fff;font-weight:600;padding:2px 10px;border-radius:10px;text-transform:uppercase;font-size:12px;letter-spacing:.04em}
.headline{font-size:18px;font-weight:600}.asof{color:#6b7280;margin-left:auto;font-size:12px}
table{border-collapse:collapse}td,th{padding:3px 12px 3px 0;text-align:left;vertical-align:top;border-bottom:1px solid #f3f4f6}
th{font-weight:500;color:#4b5563;white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.summary th{width:11em}
svg.chart{display:block;width:100%;height:auto}svg text{font-size:11px;fill:#4b5563}
.grid{stroke:#eef0f3;stroke-width:1}.axis{stroke:#9ca3af;stroke-width:1}
.legend{margin:.3em 0 .2em 5.8%;color:#374151}.legend>span{margin-right:1.4em;white-space:nowrap}
.sw{display:inline-block;width:18px;height:0;border-top:3px solid;vertical-align:middle;margin-right:5px}
.sw.box{width:10px;height:10px;border:0;border-radius:2px;margin:0 3px 0 6px}
.note{color:#6b7280;font-size:12px;margin:.2em 0 0 5.8%}
.alert{border-left:4px solid #dc2626;background:#fef2f2;padding:.6em 1em}
.pm{border:1px solid #e5e7eb;border-left:4px solid #9ca3af;padding:.4em 1em .8em;margin:1.2em 0;background:#f9fafb}
.pm.oom{border-color:#fca5a5;border-left-color:#dc2626;background:#fef2f2}.pm.oom h2{color:#b91c1c}
.pm.unclean{border-left-color:#ca8a04;background:#fefce8}
.pm h2{margin-top:.4em}
.bar{display:inline-block;height:10px;background:#93c5fd;border-radius:2px;vertical-align:middle}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
a{color:#1d4ed8}footer{margin:2em 0 1em;color:#6b7280;font-size:12px}
.normal{color:#15803d}.elevated{color:#a16207}.high{color:#c2410c}.critical{color:#b91c1c;font-weight:600}`

// legend writes one entry of a chart's legend.
func legend(b *strings.Builder, color, name, value string) {
	fmt.Fprintf(b, `<span><span class="sw" style="border-color:%s"></span>%s <b>%s</b></span>`, color, name, value)
}

// writeSummary writes the guard's figures, in units people read; profiles
// says whether heap profiles are on.
func writeSummary(b *strings.Builder, s *Status, profiles bool) {
	e := html.EscapeString
	b.WriteString("<table class=\"summary\">\n")
	row := func(k, v string) { b.WriteString("<tr><th>" + k + "</th><td>" + v + "</td></tr>\n") }
	row("working set", fmt.Sprintf("%s of %s (%s); limit from %s (%s), usage from %s",
		humanize.Bytes(s.Usage), humanize.Bytes(s.Limit), pct(s.Pressure), e(s.LimitSource), e(s.LimitDetail), e(s.UsageSource)))
	row("committed", fmt.Sprintf("%s (%s): what the work holds, which admission judges", humanize.Bytes(s.Committed), pct(s.CommittedPressure)))
	gml := "none"
	if s.GoMemLimit < math.MaxInt64/2 {
		gml = humanize.Bytes(s.GoMemLimit)
	}
	switch s.GoMemLimitSource {
	case "guard":
		gml += ", set by the guard"
	case "env":
		gml += ", from the GOMEMLIMIT environment variable"
	case "unchanged":
		gml += ", left as it was (Config.MemoryLimitRatio < 0)"
	}
	row("GOMEMLIMIT", gml)
	row("Go heap", humanize.Bytes(s.HeapLive)+" live, next GC at "+humanize.Bytes(s.HeapGoal))
	thrash := ""
	if s.GCThrashing {
		thrash = ", <b class=\"critical\">thrashing</b>"
	}
	row("GC CPU", pct(s.GCCPUFraction)+thrash)
	row("growth", growthText(s))
	bound := "no bound"
	if s.InFlightLimit < math.MaxInt32 {
		bound = "bound " + strconv.FormatInt(s.InFlightLimit, 10)
	}
	row("requests", fmt.Sprintf("%d in flight (%s), %d admitted; shed %d sheddable, %d default, %d critical; %d cancelled",
		s.InFlight, bound, s.Admitted, s.Shed.Sheddable, s.Shed.Default, s.Shed.Critical, s.Cancelled))
	row("admission", humanize.Bytes(s.WorkCost)+" per unit of work, target "+humanize.Bytes(s.AdmissionTarget)+" committed")
	row("recommended limit", recommendText(s))
	row("sampling", "every "+humanize.Duration(s.Interval))
	oom := "unknown"
	if s.OOMKills >= 0 {
		oom = strconv.FormatInt(s.OOMKills, 10)
	}
	row("OOM kills in this cgroup", oom)
	if s.ReadErrors > 0 {
		row("cgroup readings failed", fmt.Sprintf("%d since start (usage falls back to the process's own, the limit keeps its last value)", s.ReadErrors))
	}
	if profiles {
		row("heap profiles", fmt.Sprintf("%d written, %d failed, %s on disk", s.ProfilesWritten, s.ProfileErrors, humanize.Bytes(s.ProfileDiskBytes)))
	}
	b.WriteString("</table>\n")
}

// recommendText says the recommended limit, or why there is none.
func recommendText(s *Status) string {
	minutes := int(s.RecommendWindow.Round(time.Minute) / time.Minute)
	if s.RecommendedLimit > 0 {
		t := fmt.Sprintf("%s, to serve the load offered over the last %d minutes without shedding", humanize.Bytes(s.RecommendedLimit), minutes)
		if s.RecommendedLimit > s.Limit {
			t = "<b class=\"high\">" + humanize.Bytes(s.RecommendedLimit) + "</b>" + strings.TrimPrefix(t, humanize.Bytes(s.RecommendedLimit))
		}
		return t
	}
	switch s.RecommendedLimitReason {
	case "leak":
		return "none: memory grows independent of load, likely a leak; more memory would only put the kill off"
	case "time":
		return "none: the time bound refuses most of the work shed; the CPUs, not memory, are short"
	case "not shedding":
		return fmt.Sprintf("none: nothing shed for memory in the last %d minutes", minutes)
	}
	return "none"
}

// growthText says how usage moves: "not growing" rather than a negative
// rate, and the time to the limit only when it is near enough to matter.
func growthText(s *Status) string {
	if s.GrowthRate <= 0 || math.IsNaN(s.GrowthRate) {
		return "not growing"
	}
	t := "growing " + humanize.Bytes(int64(s.GrowthRate)) + "/s"
	switch {
	case s.Usage >= s.Limit:
		t += ", past the limit"
	case s.TimeToLimit >= 0 && s.TimeToLimit < time.Hour:
		t += ", limit in " + humanize.Duration(s.TimeToLimit)
	}
	return t
}

// writeGrowth writes the top growth from climb, the first profile of the
// latest climb, to the newest profile. Called under p.mu.
func (p *Page) writeGrowth(b *strings.Builder, climb string) {
	b.WriteString("<h2>Top growth</h2>\n")
	st := p.cfg.Profiles
	if st == nil {
		b.WriteString("<p>Heap profiles are off: set Config.DumpDir.</p>\n")
		return
	}
	newest, ok := st.Latest()
	ended := false
	switch {
	case climb == "" && p.target != "" && stored(st, p.base) && stored(st, p.target):
		ended = true // the climb is over: its growth stays worth reading
	case climb == "":
		b.WriteString("<p>No climb: profiles and their growth come when pressure rises past Normal.</p>\n")
		return
	case !ok || newest.Name == climb:
		b.WriteString("<p>One profile of this climb so far: its growth shows from the next.</p>\n")
		return
	case climb != p.base || newest.Name != p.target:
		p.base, p.target = climb, newest.Name
		p.top, p.err = st.Growth(climb, newest.Name, recorder.TopGrowthN)
	}
	e := html.EscapeString
	diff := "heap/diff?base=" + url.QueryEscape(p.base) + "&target=" + url.QueryEscape(p.target)
	when := "this climb"
	if ended {
		when = "the last climb, now over"
	}
	fmt.Fprintf(b, "<p>In-use heap gained in %s, from its first profile <a href=\"heap/%s\">%s</a> to <a href=\"heap/%s\">%s</a>: <a href=\"%s\">the diff</a> (<code>go tool pprof -top URL</code>).</p>\n",
		when, e(url.PathEscape(p.base)), e(p.base), e(url.PathEscape(p.target)), e(p.target), e(diff))
	if p.err != nil {
		b.WriteString("<p class=\"alert\">" + e(p.err.Error()) + "</p>\n")
		return
	}
	writeGrowthTable(b, "top-growth", p.top)
}

// writeGrowthTable writes functions and the bytes they gained, largest
// first, with a bar for each against the largest.
func writeGrowthTable(b *strings.Builder, id string, top []profile.Growth) {
	if len(top) == 0 {
		b.WriteString("<p>Nothing grew.</p>\n")
		return
	}
	b.WriteString(`<table id="` + id + `" class="growth"><tr><th>function</th><th>gained</th><th></th></tr>` + "\n")
	for _, t := range top {
		w := 200 * float64(t.Bytes) / float64(max(top[0].Bytes, 1))
		fmt.Fprintf(b, "<tr><td><code>%s</code></td><td class=\"n\">+%s</td><td><span class=\"bar\" style=\"width:%.0fpx\"></span></td></tr>\n",
			html.EscapeString(t.Function), humanize.Bytes(t.Bytes), max(w, 1))
	}
	b.WriteString("</table>\n")
}

// writePostMortem writes how the previous run on DumpDir ended: a red box
// at the top of the page when it was likely OOM-killed.
func (p *Page) writePostMortem(b *strings.Builder, pm *recorder.PostMortem, now time.Time) {
	e := html.EscapeString
	class, title := "pm", "The previous run ended cleanly"
	switch {
	case pm.LikelyOOMKilled:
		class, title = "pm oom", "The previous run was likely OOM-killed"
	case pm.Ended != "clean":
		class, title = "pm unclean", "The previous run ended without Stop"
	}
	fmt.Fprintf(b, "<section class=\"%s\" id=\"postmortem\"><h2>%s</h2>\n<p>pid %d, started %s, last seen %s (%s ago) at level <b class=\"%s\">%s</b>, %s of %s",
		class, title, pm.PID, pm.Started.UTC().Format(time.DateTime+" UTC"), pm.LastSeen.UTC().Format(time.DateTime+" UTC"),
		humanize.Duration(now.Sub(pm.LastSeen)), pm.LastLevel, pm.LastLevel, humanize.Bytes(pm.LastUsageBytes), humanize.Bytes(pm.LimitBytes))
	if pm.LimitBytes > 0 {
		b.WriteString(" (" + pct(float64(pm.LastUsageBytes)/float64(pm.LimitBytes)) + ")")
	}
	b.WriteString(".")
	if pm.Reason != "" {
		b.WriteString(" Why: " + e(pm.Reason) + ".")
	}
	if pm.LeakSuspected {
		b.WriteString(" <b>A leak was suspected</b>: memory grew while the work in flight did not.")
	}
	b.WriteString("</p>\n")
	if pm.Ended == "clean" {
		b.WriteString("</section>\n")
		return
	}
	switch {
	case pm.LastProfile == "":
		b.WriteString("<p>It left no profile.</p>\n")
	case p.cfg.Profiles != nil && stored(p.cfg.Profiles, pm.LastProfile):
		fmt.Fprintf(b, "<p>Its last profile: <a href=\"heap/%s\">%s</a>, %s before it was last seen.</p>\n",
			e(url.PathEscape(pm.LastProfile)), e(pm.LastProfile), humanize.Duration(pm.LastSeen.Sub(pm.LastProfileTime)))
	default:
		fmt.Fprintf(b, "<p>Its last profile, %s, is no longer kept.</p>\n", e(pm.LastProfile))
	}
	if len(pm.TopGrowth) > 0 {
		b.WriteString("<p>What grew in its last climb:</p>\n")
		writeGrowthTable(b, "postmortem-growth", pm.TopGrowth)
	}
	b.WriteString("</section>\n")
}

// writeProfiles lists the stored profiles, newest first, each with a link
// to its growth since the one before it of the same run.
func (p *Page) writeProfiles(b *strings.Builder, now time.Time) {
	b.WriteString("<h2>Heap profiles</h2>\n")
	if p.cfg.Profiles == nil {
		b.WriteString("<p>Off: set Config.DumpDir.</p>\n")
		return
	}
	list := p.cfg.Profiles.List()
	if len(list) == 0 {
		b.WriteString("<p>None yet: the guard writes them as pressure rises.</p>\n")
		return
	}
	e := html.EscapeString
	b.WriteString("<table id=\"profiles\"><tr><th>written</th><th>reason</th><th>level</th><th>usage</th><th>live heap</th><th>size</th><th>profile</th><th></th></tr>\n")
	for i := len(list) - 1; i >= 0; i-- {
		m := list[i]
		name := e(url.PathEscape(m.Name))
		fmt.Fprintf(b, "<tr><td title=\"%s\">%s ago</td><td>%s</td><td class=\"%s\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td><a href=\"heap/%s\">%s</a></td><td>",
			m.Time.UTC().Format("2006-01-02 15:04:05.000 UTC"), humanize.Duration(now.Sub(m.Time)), e(m.Reason), e(m.Level), e(m.Level),
			humanize.Bytes(m.Usage), humanize.Bytes(m.Heap), humanize.Bytes(m.Size), name, e(m.Name))
		if i > 0 && list[i-1].Time.Before(p.cfg.Started) == m.Time.Before(p.cfg.Started) {
			fmt.Fprintf(b, "<a href=\"%s\">growth since the one before</a>", e("heap/diff?base="+url.QueryEscape(list[i-1].Name)+"&target="+url.QueryEscape(m.Name)))
		}
		b.WriteString("</td></tr>\n")
	}
	b.WriteString("</table>\n<p class=\"note\">Read one with <code>go tool pprof -top URL</code>.</p>\n")
}

// stored reports whether the store still holds the profile called name.
func stored(s Profiles, name string) bool {
	for _, m := range s.List() {
		if m.Name == name {
			return true
		}
	}
	return false
}

// pct formats a fraction as a percentage.
func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }
