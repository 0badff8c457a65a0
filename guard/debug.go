package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/oomguard/oomguard/guard/internal/recorder"
	"github.com/oomguard/oomguard/profile"
)

// DebugHandler serves the guard's status and heap profiles. Mount it on a
// private listener, below a prefix:
//
//	mux.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
//
// Routes below the prefix:
//
//	GET  /                                     the status page: charts of the last ten minutes, top growth, post-mortem, profiles
//	GET  /status                               the Snapshot as JSON, durations in seconds
//	GET  /heap                                 the profiles as JSON, oldest first
//	GET  /heap/latest                          the newest profile
//	GET  /heap/{name}                          one profile
//	GET  /heap/diff?base={name}&target={name}  the growth from base to target; 503 at High and above
//	POST /heap                                 write a profile now (Config.DebugWrite)
//	GET  /postmortem                           how the previous run on DumpDir ended, as JSON
//
// Profiles are pprof's binary format: "go tool pprof -top URL" reads them.
// Names are looked up in the profile store's index, never used as paths.
// A diff parses both profiles whole into memory, so at LevelHigh and above
// it gets 503 Service Unavailable with Retry-After (Config.RetryAfter).
// Every response, errors included, carries X-Content-Type-Options: nosniff.
//
// Heap profiles reveal the code's functions and lines and how much memory
// each allocation site holds, and writing one costs memory, so by default
// only loopback clients are answered: a request whose RemoteAddr is not
// 127.0.0.0/8 or ::1 (IPv4-mapped included), or cannot be read as an
// address (a Unix socket's), or that a proxy relayed (it carries
// Forwarded, X-Forwarded-For or X-Real-Ip), or whose Host is not a
// loopback IP or localhost, gets 403 Forbidden with a one-line reason. The
// Host check stops DNS rebinding: a web page whose name its owner points at
// 127.0.0.1 reaches the endpoint from a browser on this machine, or beside
// kubectl port-forward, as a loopback client, but sends its own name as
// Host. Config.DebugAuthorize, if set, replaces all of that check, the
// Host included, on every route.
//
// Whatever DebugAuthorize says, a browser's cross-origin request with a
// method other than GET, HEAD or OPTIONS, such as a form another site posts
// to POST /heap, gets 403 Forbidden, as http.CrossOriginProtection judges
// it: by Sec-Fetch-Site, or, from browsers that do not send it, by an
// Origin that does not match the Host. Requests without either header, as
// curl sends them, are served.
func (g *Guard) DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", g.statusPage())
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
	if g.rec != nil {
		store := profile.Handler(g.rec.Store())
		mux.Handle("/heap", store)
		mux.Handle("/heap/", store)
		mux.Handle("GET /heap/diff", g.belowHigh(store))
		mux.HandleFunc("POST /heap", g.serveWrite)
	} else {
		off := func(w http.ResponseWriter, r *http.Request) {
			why := "heap profiles are off: set Config.DumpDir"
			if g.cfg.DumpDir != "" && !g.off {
				why = fmt.Sprintf("heap profiles are off: DumpDir %.128q could not be used; the guard's log says why", g.cfg.DumpDir)
			}
			http.Error(w, why, http.StatusNotFound)
		}
		mux.HandleFunc("/heap", off)
		mux.HandleFunc("/heap/", off)
	}
	authorize := g.cfg.DebugAuthorize
	if authorize == nil {
		authorize = loopbackOnly
	}
	crossOrigin := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Before anything is written: a browser must not read a profile
		// or an error as HTML or script.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// Whatever DebugAuthorize admits: a page on another site makes the
		// browser send its request with the user's network reach and
		// credentials, and only the browser's headers tell it apart.
		if err := crossOrigin.Check(r); err != nil {
			http.Error(w, fmt.Sprintf("forbidden: %v (Sec-Fetch-Site %.32q, Origin %.64q, Host %.64q)",
				err, r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin"), r.Host), http.StatusForbidden)
			return
		}
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

// loopbackOnly admits a request whose RemoteAddr is a loopback address,
// that no proxy relayed, as far as forwarding headers tell, and whose Host
// names this machine (see loopbackHost). A proxy on the same host makes
// every client it relays look local. A proxy that adds no such header (a
// service mesh's sidecar) is not caught: the debug endpoint belongs on a
// listener of its own, bound to loopback.
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
	if !loopbackHost(r.Host) {
		return fmt.Errorf("host %.64q is not a loopback IP or localhost, so perhaps a DNS-rebinding page's; set Config.DebugAuthorize to answer it", r.Host)
	}
	return nil
}

// loopbackHost reports whether host, a request's Host, names this machine
// in a form no DNS answer can redirect, alone or with a decimal port: an
// IPv4 literal in 127.0.0.0/8; in brackets, ::1 or an IPv4-mapped address
// in 127.0.0.0/8, without a zone; or "localhost" in any ASCII case.
// Anything else is refused: "localhost." and names below localhost, since
// whether they stay on this machine is up to the resolver, and the empty
// Host of an HTTP/1.0 request.
func loopbackHost(host string) bool {
	name, port, bracketed := host, "", false
	if rest, ok := strings.CutPrefix(host, "["); ok {
		var found bool
		if name, port, found = strings.Cut(rest, "]"); !found {
			return false
		}
		bracketed = true
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		name, port = host[:i], host[i:]
	}
	if port != "" {
		digits, ok := strings.CutPrefix(port, ":")
		if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
			return false
		}
	}
	// Nine bytes that fold to "localhost" are ASCII: EqualFold alone also
	// matches Unicode look-alikes such as the long s, which are longer.
	if !bracketed && len(name) == len("localhost") && strings.EqualFold(name, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(name)
	return err == nil && addr.Zone() == "" && addr.Is6() == bracketed && addr.Unmap().IsLoopback()
}

// belowHigh serves h only while the level is below High, and answers 503
// with Retry-After otherwise: what h does costs memory that a service this
// close to its limit may not have to spare.
func (g *Guard) belowHigh(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l := g.Level(); l >= LevelHigh {
			w.Header().Set("Retry-After", strconv.Itoa(int((g.cfg.RetryAfter+time.Second-1)/time.Second)))
			http.Error(w, "memory level is "+l.String()+": a diff, which parses two whole profiles, is refused at high and above; retry later, or diff the profiles elsewhere with go tool pprof -diff_base", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
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
	m, err := g.rec.Write(profile.Meta{Reason: recorder.RequestedReason, OnDemand: true, Level: s.Level.String(), Usage: s.Usage, Limit: s.Limit, Heap: s.HeapLive})
	switch {
	case errors.Is(err, profile.ErrTooSoon):
		w.Header().Set("Retry-After", strconv.Itoa(int((g.cfg.DumpMinInterval+time.Second-1)/time.Second)))
		http.Error(w, "a profile was written less than "+g.cfg.DumpMinInterval.String()+" ago", http.StatusTooManyRequests)
	case errors.Is(err, profile.ErrFull):
		// Every profile left is one kept from before an unclean end.
		http.Error(w, "profile not written: "+err.Error(), http.StatusInsufficientStorage)
	case err != nil:
		http.Error(w, "profile not written: "+err.Error(), http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "heap/"+m.Name)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(m)
	}
}
