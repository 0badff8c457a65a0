package guard

import (
	"net/http"
	"strconv"
	"time"
)

// Middleware sheds HTTP requests under memory pressure before next reads
// their bodies. Config.Classifier gives each request its priority (default:
// PriorityDefault, or what the request context carries). A shed request
// gets 503 Service Unavailable, a Retry-After header and a one-line plain
// text body. Under pressure (Elevated and up), a request whose
// Content-Length alone would not fit in the headroom is refused too.
//
// At Normal with nothing shed an admitted request costs two atomic loads:
// no classification, lock or allocation (see Guard.Enter for the rest).
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every request is admitted, whatever its priority: no classification.
		if g.quiet() {
			next.ServeHTTP(w, r)
			return
		}
		p := g.classify(r)
		if r.ContentLength > 0 && p < PriorityCritical && g.Level() >= LevelElevated && !g.fits(r.ContentLength) {
			g.shed[p.index()].Add(1)
			g.refuse(w, "request body does not fit in memory headroom")
			return
		}
		ctx, t, ok := g.Enter(r.Context(), p)
		if !ok {
			g.refuse(w, "memory pressure")
			return
		}
		if t.s == nil {
			// Nothing to undo: no defer on the hot path.
			next.ServeHTTP(w, r)
			return
		}
		defer t.Done()
		if t.s.e != nil {
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

func (g *Guard) classify(r *http.Request) Priority {
	if g.cfg.Classifier != nil {
		return g.cfg.Classifier(r)
	}
	return PriorityFrom(r.Context())
}

// fits reports whether n more bytes fit below the Critical threshold.
func (g *Guard) fits(n int64) bool {
	return n <= g.headroom()-g.reserved.Load() // a huge n must not overflow a sum
}

// headroom is what the last sample left below the Critical threshold, in
// bytes, before reservations.
func (g *Guard) headroom() int64 {
	s := g.snap.Load()
	return int64(float64(s.Limit)*g.cfg.Thresholds.Critical) - s.Usage
}

// RetryAfter is the delay the guard asks shed clients to wait, rounded up
// to whole seconds for the Retry-After header.
func (g *Guard) RetryAfter() time.Duration { return g.cfg.RetryAfter }

func (g *Guard) refuse(w http.ResponseWriter, why string) {
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(int((g.cfg.RetryAfter+time.Second-1)/time.Second)))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte("oomguard: request shed (" + why + ", level " + g.Level().String() + "); retry later\n"))
}

// ReadyHandler answers readiness probes: 503 while the guard is Critical
// and for Config.ReadyHold after, so that a drowning pod leaves the load
// balancer's rotation instead of being restarted; 200 otherwise. The body
// is one line that says why.
func (g *Guard) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		s := g.snap.Load()
		pct := strconv.FormatFloat(100*s.Pressure(), 'f', 1, 64) + "% of limit"
		switch {
		case g.Level() >= LevelCritical:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: memory critical, " + pct + "\n"))
		case time.Now().UnixNano() < g.readyAfter.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: recovering from critical memory pressure, " + pct + "\n"))
		default:
			w.Write([]byte("ready: memory " + g.Level().String() + ", " + pct + "\n"))
		}
	})
}
