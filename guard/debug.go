package guard

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strconv"
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
//	GET  /status                               the Snapshot as JSON
//	GET  /heap                                 the profiles as JSON, oldest first
//	GET  /heap/latest                          the newest profile
//	GET  /heap/{name}                          one profile
//	GET  /heap/diff?base={name}&target={name}  the growth from base to target
//	POST /heap                                 write a profile now (Config.DebugWrite)
//
// Profiles are pprof's binary format: "go tool pprof -top URL" reads them.
// Names are looked up in the profile store's index, never used as paths.
// Config.DebugAuthorize, if set, guards every route.
func (g *Guard) DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", g.serveIndex)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(g.Snapshot())
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
	if g.cfg.DebugAuthorize == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.cfg.DebugAuthorize(r); err != nil {
			http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// serveWrite writes a profile on demand, at most one per DumpMinInterval.
func (g *Guard) serveWrite(w http.ResponseWriter, r *http.Request) {
	if !g.cfg.DebugWrite {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "writing profiles on demand is off: set Config.DebugWrite", http.StatusMethodNotAllowed)
		return
	}
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

var indexPage = template.Must(template.New("index").Funcs(template.FuncMap{
	"mib": func(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" },
	"pct": func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>oomguard</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}.normal{color:#070}.elevated{color:#960}.high{color:#c50}.critical{color:#c00;font-weight:bold}</style>
</head><body>
<h1>oomguard</h1>
{{with .S}}<p>Level <b class="{{.Level}}">{{.Level}}</b>: usage {{mib .Usage}} of {{mib .Limit}} ({{pct .Pressure}}), limit from {{.LimitSource}} ({{.LimitDetail}}).</p>
<table>
<tr><th>GOMEMLIMIT</th><td>{{mib .GoMemLimit}} ({{.GoMemLimitSource}})</td></tr>
<tr><th>live heap</th><td>{{mib .HeapLive}}, goal {{mib .HeapGoal}}</td></tr>
<tr><th>GC CPU</th><td>{{pct .GCCPUFraction}}{{if .GCThrashing}}, thrashing{{end}}</td></tr>
<tr><th>growth</th><td>{{printf "%.0f" .GrowthRate}} B/s{{if ge .TimeToLimit 0}}, limit in {{.TimeToLimit}}{{end}}</td></tr>
<tr><th>requests</th><td>{{.InFlight}} in flight, shed {{.Shed.Sheddable}} sheddable / {{.Shed.Default}} default, {{.Cancelled}} cancelled</td></tr>
<tr><th>OOM kills in this cgroup</th><td>{{if lt .OOMKills 0}}unknown{{else}}{{.OOMKills}}{{end}}</td></tr>
</table>{{end}}
<h2>Heap profiles</h2>
{{if not .Enabled}}<p>Off: set Config.DumpDir.</p>{{else if not .Profiles}}<p>None yet.</p>{{else}}
<table><tr><th>time</th><th>reason</th><th>level</th><th>usage</th><th>heap</th><th>size</th><th></th></tr>
{{range .Profiles}}<tr><td>{{.Time.Format "2006-01-02 15:04:05.000Z"}}</td><td>{{.Reason}}</td><td>{{.Level}}</td><td>{{mib .Usage}}</td><td>{{mib .Heap}}</td><td>{{.Size}} B</td><td><a href="heap/{{.Name}}">{{.Name}}</a></td></tr>
{{end}}</table>
<p>Read one with <code>go tool pprof -top URL</code>; the growth between two: <code>heap/diff?base=NAME&amp;target=NAME</code>.</p>{{end}}
<p><a href="status">status JSON</a> · <a href="heap">profiles JSON</a></p>
</body></html>
`))

func (g *Guard) serveIndex(w http.ResponseWriter, r *http.Request) {
	data := struct {
		S        Snapshot
		Enabled  bool
		Profiles []profile.Meta
	}{S: g.Snapshot(), Enabled: g.dumper != nil}
	if g.dumper != nil {
		data.Profiles = g.dumper.store.List()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	indexPage.Execute(w, data)
}
