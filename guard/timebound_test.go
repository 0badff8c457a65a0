package guard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/latency"
)

// decideTime publishes a memory bound of mem and the time decision t.
func (g *Guard) decideTime(mem int64, t latency.Decision) {
	g.publishBounds(bound(mem, mem, 1<<40), t)
}

// TestTimeBoundIsTheTighter: the time bound caps the work in flight below
// the memory bound, at Default and Sheddable priority, never at Critical,
// and its refusals say so and are counted apart.
func TestTimeBoundIsTheTighter(t *testing.T) {
	g := quietGuard(t, Config{})
	g.decideTime(100, latency.Decision{Limit: 3})
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	var tickets []Ticket
	for range 3 {
		_, tk, ok := g.Enter(context.Background(), PriorityDefault)
		if !ok {
			t.Fatal("shed within the time bound")
		}
		tickets = append(tickets, tk)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "CPU queueing") {
		t.Errorf("past the time bound: %d %q, want 503 for CPU queueing", rec.Code, rec.Body.String())
	}
	if _, tk, ok := g.Enter(context.Background(), PriorityCritical); !ok {
		t.Error("Critical work shed by the time bound")
	} else {
		tk.Done()
	}
	for _, tk := range tickets {
		tk.Done()
	}
	if s := g.Snapshot(); s.Shed.Default != 1 || s.ShedForTime != 1 || s.InFlight != 0 {
		t.Errorf("shed %+v, for time %d, in flight %d; want 1 default, 1 for time, 0", s.Shed, s.ShedForTime, s.InFlight)
	}
	// With the memory bound the tighter, refusals are memory's.
	g.decideTime(2, latency.Decision{Limit: 3})
	for range 3 {
		if _, tk, ok := g.Enter(context.Background(), PriorityDefault); ok {
			defer tk.Done()
		}
	}
	if s := g.Snapshot(); s.ShedForTime != 1 || s.Shed.Default != 2 {
		t.Errorf("memory the tighter: shed %+v, for time %d; want 2 default, 1 for time", s.Shed, s.ShedForTime)
	}
}

// TestDeadlines: while the time bound is in force, work whose deadline is
// nearer than the shortest recent time in flight is refused at once,
// whether the deadline comes from the context, from Config.DeadlineHeader
// (milliseconds or a Go duration), or both (the nearer counts); Critical
// work, work without a deadline and a header that does not parse are
// admitted. Without the time bound no deadline is looked at.
func TestDeadlines(t *testing.T) {
	g := quietGuard(t, Config{DeadlineHeader: "X-Timeout"})
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	g.decideTime(100, latency.Decision{Limit: 50, Shortest: 200 * time.Millisecond})
	ctxWithin := func(d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		header string
		p      Priority
		want   int
	}{
		{"no deadline", context.Background(), "", PriorityDefault, http.StatusOK},
		{"context 50ms", ctxWithin(50 * time.Millisecond), "", PriorityDefault, http.StatusServiceUnavailable},
		{"context 10s", ctxWithin(10 * time.Second), "", PriorityDefault, http.StatusOK},
		{"header 50 ms", context.Background(), "50", PriorityDefault, http.StatusServiceUnavailable},
		{"header 0.05s", context.Background(), "0.05s", PriorityDefault, http.StatusServiceUnavailable},
		{"header 5000 ms", context.Background(), "5000", PriorityDefault, http.StatusOK},
		{"header garbage", context.Background(), "soon", PriorityDefault, http.StatusOK},
		{"header negative", context.Background(), "-5", PriorityDefault, http.StatusOK},
		{"header far, context near", ctxWithin(50 * time.Millisecond), "5000", PriorityDefault, http.StatusServiceUnavailable},
		{"header near, context far", ctxWithin(10 * time.Second), "50", PriorityDefault, http.StatusServiceUnavailable},
		{"critical, context 50ms", ctxWithin(50 * time.Millisecond), "", PriorityCritical, http.StatusOK},
	} {
		req := httptest.NewRequest("GET", "/", nil).WithContext(WithPriority(tc.ctx, tc.p))
		if tc.header != "" {
			req.Header.Set("X-Timeout", tc.header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, rec.Code, tc.want)
		}
	}
	if _, _, ok := g.Enter(ctxWithin(50*time.Millisecond), PriorityDefault); ok {
		t.Error("Enter admitted work with a deadline nearer than the shortest time in flight")
	}
	if s := g.Snapshot(); s.ShedLate != 6 || s.Shed != (ShedCounts{}) || s.InFlight != 0 {
		t.Errorf("late %d, shed %+v, in flight %d; want 6, none, 0", s.ShedLate, s.Shed, s.InFlight)
	}
	// No time bound: deadlines are not looked at.
	g.decideTime(100, latency.Decision{Shortest: 200 * time.Millisecond})
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctxWithin(50 * time.Millisecond))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("no time bound: status %d for a near deadline, want 200", rec.Code)
	}
}

// TestTimesInFlightReachTheSampler: while the time bound is in force, the
// middleware and Ticket.Done record times in flight, and the sampler
// drains each once, at most tookSlots of them.
func TestTimesInFlightReachTheSampler(t *testing.T) {
	g := quietGuard(t, Config{})
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if n := len(g.tookRing.drain()); n != 0 {
		t.Errorf("%d times recorded without the time bound, want 0", n)
	}
	g.decideTime(100, latency.Decision{Limit: 50})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	_, tk, _ := g.Enter(context.Background(), PriorityDefault)
	tk.Done()
	tk.Done()
	if n := len(g.tookRing.drain()); n != 2 {
		t.Errorf("%d times drained, want 2", n)
	}
	if n := len(g.tookRing.drain()); n != 0 {
		t.Errorf("%d times drained again, want 0", n)
	}
	for range tookSlots + 10 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	if n := len(g.tookRing.drain()); n != tookSlots {
		t.Errorf("%d times drained after %d, want %d", n, tookSlots+10, tookSlots)
	}
}

// TestStartsOfWorkInFlight: while the time bound is in force, the work
// admitted is kept in the start table until it is done, once, whatever
// the goroutines that end it; without the bound nothing is kept, and a
// full table keeps no more rather than overwrite.
func TestStartsOfWorkInFlight(t *testing.T) {
	g := quietGuard(t, Config{})
	_, tk, _ := g.Enter(context.Background(), PriorityDefault)
	if n := len(g.starts.ages(time.Now())); n != 0 {
		t.Errorf("%d starts kept without the time bound, want 0", n)
	}
	tk.Done()
	g.decideTime(100, latency.Decision{Limit: 50})
	before := time.Now()
	_, tk, _ = g.Enter(context.Background(), PriorityDefault)
	_, crit, _ := g.Enter(context.Background(), PriorityCritical)
	later := time.Now().Add(time.Second)
	if a := g.starts.ages(later); len(a) != 1 || a[0] < time.Second || a[0] > later.Sub(before) {
		t.Errorf("ages %v a second on, want one of about a second (Critical work is not timed)", a)
	}
	tk.Done()
	tk.Done()
	crit.Done()
	if n := len(g.starts.ages(time.Now())); n != 0 {
		t.Errorf("%d starts kept after Done, want 0", n)
	}
	// The middleware's request, while its handler runs and once it is done.
	in, out := make(chan struct{}), make(chan struct{})
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in <- struct{}{}
		<-out
	}))
	served := make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		close(served)
	}()
	<-in
	if n := len(g.starts.ages(time.Now())); n != 1 {
		t.Errorf("%d starts kept while the middleware's handler runs, want 1", n)
	}
	out <- struct{}{}
	<-served
	if n := len(g.starts.ages(time.Now())); n != 0 {
		t.Errorf("%d starts kept after the middleware's request, want 0", n)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if _, tk, ok := g.Enter(context.Background(), PriorityDefault); ok {
					tk.Done()
				}
			}
		})
	}
	wg.Wait()
	if n := len(g.starts.ages(time.Now())); n != 0 {
		t.Errorf("%d starts kept after 8000 entered and done at once, want 0", n)
	}
	var st startTable
	st.base = time.Now()
	for range startSlots {
		if slot := st.put(time.Now()); slot == 0 {
			t.Fatal("no slot free in a table not yet full")
		}
	}
	if slot := st.put(time.Now()); slot != 0 {
		t.Errorf("a full table gave slot %d, want none", slot)
	}
	if slot := st.put(st.base.Add(-time.Hour)); slot != 0 {
		t.Errorf("a start before the table's base took slot %d, want none", slot)
	}
}

// TestTimeBoundOff: Config.DisableTimeBound and OOMGUARD_TIME_BOUND=off
// leave the guard without a time policy; a bad value is refused by name.
func TestTimeBoundOff(t *testing.T) {
	g := quietGuard(t, Config{DisableTimeBound: true})
	if g.sampler.shed.time != nil {
		t.Error("Config.DisableTimeBound: the time policy runs")
	}
	withEnv(t, map[string]string{EnvTimeBound: "off"})
	g = quietGuard(t, Config{})
	if g.sampler.shed.time != nil {
		t.Errorf("%s=off: the time policy runs", EnvTimeBound)
	}
	withEnv(t, map[string]string{EnvTimeBound: "of"})
	if _, err := Start(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), EnvTimeBound) {
		t.Errorf("%s=of: %v, want an error naming it", EnvTimeBound, err)
	}
}
