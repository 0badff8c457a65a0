package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/oomguard/oomguard/profile"
)

// DebugHandler serves the guard's status and heap profiles. Mount it on a
// private listener, below a prefix:
//
//	mux.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
//
// Routes below the prefix:
//
//	GET  /                                     status and profiles as an HTML page
//	GET  /status                               the Snapshot as JSON, durations in seconds
//	GET  /heap                                 the profiles as JSON, oldest first
//	GET  /heap/latest                          the newest profile
//	GET  /heap/{name}                          one profile
//	GET  /heap/diff?base={name}&target={name}  the growth from base to target
//	POST /heap                                 write a profile now (Config.DebugWrite)
//	GET  /postmortem                           how the previous run on DumpDir ended, as JSON
//
// Profiles are pprof's binary format: "go tool pprof -top URL" reads them.
// Names are looked up in the profile store's index, never used as paths.
//
// Heap profiles reveal the code's functions and lines and how much memory
// each allocation site holds, and writing one costs memory, so by default
// only loopback clients are answered: a request whose RemoteAddr is not 127.0.0.0/8 or ::1 (IPv4-mapped
// included), or cannot be read as an address (a Unix socket's), or that a
// proxy relayed (it carries Forwarded, X-Forwarded-For or X-Real-Ip), gets
// 403 Forbidden with a one-line reason. Config.DebugAuthorize, if set,
// replaces that check on every route.
func (g *Guard) DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", g.serveIndex)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		s := g.Snapshot()
		enc.Encode(newStatusJSON(&s))
	})
	mux.HandleFunc("GET /postmortem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			PreviousRun *PostMortem `json:"previous_run"`
		}{g.PostMortem()})
	})
	if g.dumper != nil {
		store := profile.Handler(g.dumper.store)
		mux.Handle("/heap", store)
		mux.Handle("/heap/", store)
		mux.HandleFunc("POST /heap", g.serveWrite)
	} else {
		off := func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "heap profiles are off: set Config.DumpDir", http.StatusNotFound)
		}
		mux.HandleFunc("/heap", off)
		mux.HandleFunc("/heap/", off)
	}
	authorize := g.cfg.DebugAuthorize
	if authorize == nil {
		authorize = loopbackOnly
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := authorize(r); err != nil {
			http.Error(w, "forbidden: "+strings.ReplaceAll(err.Error(), "\n", " "), http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// statusJSON is the Snapshot as GET /status serves it: its durations in
// seconds, as the metrics give them, rather than encoding/json's
// nanoseconds. Every other field is the Snapshot's own, so one added to
// Snapshot is served too.
type statusJSON struct {
	*Snapshot
	// Interval and TimeToLimit hide the Snapshot's nanosecond fields: a
	// shallower field of the same JSON name wins, and nil is omitted.
	Interval    *struct{} `json:",omitempty"`
	TimeToLimit *struct{} `json:",omitempty"`

	IntervalSeconds    float64 `json:"interval_seconds"`
	TimeToLimitSeconds float64 `json:"time_to_limit_seconds"` // -1 when usage is not growing
}

func newStatusJSON(s *Snapshot) statusJSON {
	j := statusJSON{Snapshot: s, IntervalSeconds: s.Interval.Seconds(), TimeToLimitSeconds: -1}
	if s.TimeToLimit >= 0 {
		j.TimeToLimitSeconds = s.TimeToLimit.Seconds()
	}
	return j
}

// loopbackOnly admits a request whose RemoteAddr is a loopback address and
// that no proxy relayed, as far as forwarding headers tell: a proxy on the
// same host makes every client it relays look local. A proxy that adds no
// such header (a service mesh's sidecar) is not caught: the debug endpoint
// belongs on a listener of its own, bound to loopback.
func loopbackOnly(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return fmt.Errorf("client address %.64q is not host:port; only loopback clients are answered unless Config.DebugAuthorize is set", r.RemoteAddr)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !addr.Unmap().IsLoopback() {
		return fmt.Errorf("client %.64q is not loopback; set Config.DebugAuthorize to answer others", host)
	}
	for _, h := range [...]string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if _, ok := r.Header[h]; ok {
			return fmt.Errorf("request relayed by a proxy (%s header), its client is unknown; set Config.DebugAuthorize to answer it", h)
		}
	}
	return nil
}

// serveWrite writes a profile on demand, at most one per DumpMinInterval.
func (g *Guard) serveWrite(w http.ResponseWriter, r *http.Request) {
	if !g.cfg.DebugWrite {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "writing profiles on demand is off: set Config.DebugWrite", http.StatusMethodNotAllowed)
		return
	}
	if !g.join() {
		http.Error(w, "the guard is stopped", http.StatusServiceUnavailable)
		return
	}
	defer g.wg.Done()
	s := g.Snapshot()
	m, err := g.dumper.write(g, profile.Meta{Reason: "requested", Level: s.Level.String(), Usage: s.Usage, Limit: s.Limit, Heap: s.HeapLive})
	switch {
	case errors.Is(err, profile.ErrTooSoon):
		w.Header().Set("Retry-After", strconv.Itoa(int((g.cfg.DumpMinInterval+time.Second-1)/time.Second)))
		http.Error(w, "a profile was written less than "+g.cfg.DumpMinInterval.String()+" ago", http.StatusTooManyRequests)
	case err != nil:
		http.Error(w, "profile not written: "+err.Error(), http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "heap/"+m.Name)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(m)
	}
}

// serveIndex writes the status page. It is built with fmt and
// html.EscapeString rather than html/template: template execution uses
// reflection that keeps every exported method in the binary, megabytes a
// service would pay for one debug page.
func (g *Guard) serveIndex(w http.ResponseWriter, r *http.Request) {
	s := g.Snapshot()
	mib := func(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" }
	pct := func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }
	e := html.EscapeString

	var b strings.Builder
	b.WriteString(`<!doctype html>
<html><head><meta charset="utf-8"><title>oomguard</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}.normal{color:#070}.elevated{color:#960}.high{color:#c50}.critical{color:#c00;font-weight:bold}</style>
</head><body>
<h1>oomguard</h1>
`)
	fmt.Fprintf(&b, "<p>Level <b class=%q>%s</b>: usage %s of %s (%s), limit from %s (%s).</p>\n<table>\n",
		s.Level, s.Level, mib(s.Usage), mib(s.Limit), pct(s.Pressure()), e(string(s.LimitSource)), e(s.LimitDetail))
	row := func(k, v string) { fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>\n", k, v) }
	row("GOMEMLIMIT", mib(s.GoMemLimit)+" ("+e(string(s.GoMemLimitSource))+")")
	row("live heap", mib(s.HeapLive)+", goal "+mib(s.HeapGoal))
	thrash := ""
	if s.GCThrashing {
		thrash = ", thrashing"
	}
	row("GC CPU", pct(s.GCCPUFraction)+thrash)
	growth := strconv.FormatFloat(s.GrowthRate, 'f', 0, 64) + " B/s"
	if s.TimeToLimit >= 0 {
		growth += ", limit in " + s.TimeToLimit.Round(time.Millisecond).String()
	}
	row("growth", growth)
	row("requests", fmt.Sprintf("%d in flight (limit %d), shed %d sheddable / %d default, %d cancelled",
		s.InFlight, s.InFlightLimit, s.Shed.Sheddable, s.Shed.Default, s.Cancelled))
	oom := "unknown"
	if s.OOMKills >= 0 {
		oom = strconv.FormatInt(s.OOMKills, 10)
	}
	row("OOM kills in this cgroup", oom)
	b.WriteString("</table>\n<h2>Heap profiles</h2>\n")

	switch {
	case g.dumper == nil:
		b.WriteString("<p>Off: set Config.DumpDir.</p>\n")
	case len(g.dumper.store.List()) == 0:
		b.WriteString("<p>None yet.</p>\n")
	default:
		b.WriteString("<table><tr><th>time</th><th>reason</th><th>level</th><th>usage</th><th>heap</th><th>size</th><th></th></tr>\n")
		for _, m := range g.dumper.store.List() {
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d B</td><td><a href=\"heap/%s\">%s</a></td></tr>\n",
				m.Time.Format("2006-01-02 15:04:05.000Z"), e(m.Reason), e(m.Level), mib(m.Usage), mib(m.Heap), m.Size, e(m.Name), e(m.Name))
		}
		b.WriteString("</table>\n<p>Read one with <code>go tool pprof -top URL</code>; the growth between two: <code>heap/diff?base=NAME&amp;target=NAME</code>.</p>\n")
	}
	b.WriteString("<p><a href=\"status\">status JSON</a> · <a href=\"heap\">profiles JSON</a></p>\n</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, b.String())
}
