package guard

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// quietGuard starts a guard and stops its sampler goroutine, so that the
// test drives the admission state alone through setPressure.
func quietGuard(t testing.TB, cfg Config) *Guard {
	t.Helper()
	if cfg.Limit == 0 {
		cfg.Limit = 1 << 40
	}
	if cfg.MemoryLimitRatio == 0 {
		cfg.MemoryLimitRatio = -1
	}
	g, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.gcWatch.stop()
	close(g.done)
	g.wg.Wait()
	g.done = make(chan struct{})
	t.Cleanup(func() { g.Stop() })
	// Forget the first sample's admission state: it saw the real container.
	g.sampler.shed = shedder{}
	g.admission.Store(0)
	return g
}

// setPressure publishes a reading at pressure p and level l, taken right
// after a GC cycle, and runs the admission policy on it as the sampler would.
func (g *Guard) setPressure(p float64, l Level, now time.Time) {
	s := *g.snap.Load()
	s.Usage = int64(p * float64(s.Limit))
	s.Committed = s.Usage
	s.Level = l
	s.Time = now
	g.snap.Store(&s)
	g.level.Store(int32(l))
	// Each reading follows a GC cycle of its own, so that the limit may grow.
	g.sampler.gcCycles++
	g.sampler.shed.step(g, &s, gcClock{cycles: g.sampler.gcCycles, lastGC: now, burstTTL: -1}, now)
}

func shedShare(g *Guard, p Priority) float64 {
	const n = 20000
	shed := 0
	for i := 0; i < n; i++ {
		if !g.Admit(p) {
			shed++
		}
	}
	return float64(shed) / n
}

func TestAdmitByLevelAndPriority(t *testing.T) {
	tests := []struct {
		name                       string
		pressure                   float64
		level                      Level
		sheddable, deflt, critical float64 // expected shed share
	}{
		{"normal", 0.50, LevelNormal, 0, 0, 0},
		{"elevated", 0.75, LevelElevated, 1.0 / 3, 0, 0},
		{"elevated, near high", 0.82, LevelElevated, 0.8, 0, 0},
		{"high", 0.85, LevelHigh, 1, 0, 0},
		{"high, mid default band", 0.90, LevelHigh, 1, 0.5, 0},
		{"critical", 0.95, LevelCritical, 1, 1, 0},
		{"past the limit", 1.2, LevelCritical, 1, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := quietGuard(t, Config{})
			g.setPressure(tt.pressure, tt.level, time.Now())
			for _, c := range []struct {
				p    Priority
				want float64
			}{{PrioritySheddable, tt.sheddable}, {PriorityDefault, tt.deflt}, {PriorityCritical, tt.critical}} {
				got := shedShare(g, c.p)
				if got < c.want-0.03 || got > c.want+0.03 {
					t.Errorf("%v at pressure %.2f: shed %.3f, want %.2f", c.p, tt.pressure, got, c.want)
				}
			}
		})
	}
}

func TestShedShareHysteresis(t *testing.T) {
	g := quietGuard(t, Config{})
	now := time.Now()
	g.setPressure(0.805, LevelElevated, now) // sheddable share 0.7
	// Pressure dips a little: within the hysteresis, the share holds.
	for i := 0; i < 10; i++ {
		now = now.Add(100 * time.Millisecond)
		g.setPressure(0.775, LevelElevated, now)
	}
	if got := shedShare(g, PrioritySheddable); got < 0.67 {
		t.Errorf("share fell to %.2f on a dip inside the hysteresis, want 0.7 held", got)
	}
	// Pressure drops well below: the share falls at most shareDecay per
	// second, not at once.
	now = now.Add(100 * time.Millisecond)
	g.setPressure(0.40, LevelElevated, now)
	if got := shedShare(g, PrioritySheddable); got < 0.55 {
		t.Errorf("share fell to %.2f within 100ms, want a gradual fall", got)
	}
	for i := 0; i < 10; i++ {
		now = now.Add(100 * time.Millisecond)
		g.setPressure(0.40, LevelNormal, now)
	}
	if got := shedShare(g, PrioritySheddable); got != 0 {
		t.Errorf("share %.2f a second after pressure fell, want 0", got)
	}
}

func TestInFlightLimit(t *testing.T) {
	g := quietGuard(t, Config{})
	now := time.Now()
	var tickets []Ticket
	// At Normal nothing is counted in flight: the hot path stays write-free.
	_, tk, _ := g.Enter(context.Background(), PriorityDefault)
	if n := g.Snapshot().InFlight; n != 0 {
		t.Errorf("in flight at Normal = %d, want 0 (not counted)", n)
	}
	tk.Done()
	g.setPressure(0.3, LevelElevated, now)
	for i := 0; i < 40; i++ {
		_, tk, ok := g.Enter(context.Background(), PriorityDefault)
		if !ok {
			t.Fatalf("request %d shed at Elevated", i)
		}
		tickets = append(tickets, tk)
	}
	if n := g.Snapshot().InFlight; n != 40 {
		t.Fatalf("in flight at Elevated = %d, want 40", n)
	}
	// Critical halves what is in flight.
	now = now.Add(time.Second)
	g.setPressure(0.955, LevelCritical, now)
	if lim := g.Snapshot().InFlightLimit; lim != 20 {
		t.Fatalf("in-flight limit at Critical with 40 in flight = %d, want 20", lim)
	}
	for _, tk := range tickets[:25] {
		tk.Done()
	}
	tickets = tickets[25:] // 15 in flight, limit 20
	admitted := 0
	for i := 0; i < 100; i++ {
		if _, tk, ok := g.Enter(context.Background(), PriorityCritical); ok {
			tickets = append(tickets, tk)
			admitted++
		}
	}
	if admitted != 100 {
		t.Errorf("critical requests admitted past the limit: %d of 100, want all", admitted)
	}
	for _, tk := range tickets {
		tk.Done()
	}
	tickets = nil
	// Pressure below the target raises the limit, to at most twice what is
	// in flight.
	for i := 0; i < 20; i++ {
		_, tk, _ := g.Enter(context.Background(), PriorityCritical)
		tickets = append(tickets, tk)
	}
	now = now.Add(time.Second)
	g.setPressure(0.5, LevelElevated, now)
	lim := g.Snapshot().InFlightLimit
	if lim <= 20 || lim > 40 {
		t.Errorf("limit %d after one step below the target, want above 20 and at most 40", lim)
	}
	// Pressure above the target cuts it in proportion, by at most 30%.
	now = now.Add(time.Second)
	g.setPressure(0.9, LevelHigh, now)
	if got, want := g.Snapshot().InFlightLimit, int64(math.Round(float64(lim)*(1+(0.7-0.9)/0.7))); got != want {
		t.Errorf("limit %d after one step at 0.9, want %d", got, want)
	}
	// Low pressure and little in flight for Dwell drops the limit.
	for _, tk := range tickets {
		tk.Done()
	}
	for i := 0; i < 3; i++ {
		now = now.Add(time.Second)
		g.setPressure(0.3, LevelNormal, now)
	}
	if lim := g.Snapshot().InFlightLimit; lim != 0 {
		t.Errorf("limit %d after Dwell at low pressure, want none", lim)
	}
	if n := g.Snapshot().InFlight; n != 0 {
		t.Errorf("in flight after all done = %d", n)
	}
}

func TestMiddlewareShedsWith503(t *testing.T) {
	g := quietGuard(t, Config{RetryAfter: 1500 * time.Millisecond})
	var served int
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	g.setPressure(1.0, LevelCritical, time.Now())

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d at Critical for a default request, want 503", rec.Code)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2 (1.5s rounded up)", ra)
	}
	if body := rec.Body.String(); !strings.HasPrefix(body, "oomguard: request shed") || strings.Count(body, "\n") != 1 {
		t.Errorf("body %q, want one line", body)
	}
	if served != 0 {
		t.Error("handler ran for a shed request")
	}
	if s := g.Snapshot().Shed; s.Default != 1 {
		t.Errorf("shed counts %+v, want one default", s)
	}

	// A critical request is admitted even at Critical.
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	h.ServeHTTP(rec, req.WithContext(WithPriority(req.Context(), PriorityCritical)))
	if rec.Code != http.StatusOK || served != 1 {
		t.Errorf("critical request: status %d, served %d", rec.Code, served)
	}
}

func TestMiddlewareClassifier(t *testing.T) {
	g := quietGuard(t, Config{Classifier: func(r *http.Request) Priority {
		if r.URL.Path == "/healthz" {
			return PriorityCritical
		}
		return PrioritySheddable
	}})
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	g.setPressure(0.96, LevelCritical, time.Now())
	for path, want := range map[string]int{"/healthz": 200, "/batch": 503} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d", path, rec.Code, want)
		}
	}
}

func TestMiddlewareRefusesBodyThatDoesNotFit(t *testing.T) {
	g := quietGuard(t, Config{Limit: 1 << 30})
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	g.setPressure(0.75, LevelElevated, time.Now()) // 200 MiB below Critical
	for _, tt := range []struct {
		size int64
		want int
	}{{1 << 20, 200}, {300 << 20, 503}} {
		req := httptest.NewRequest("POST", "/", strings.NewReader(""))
		req.ContentLength = tt.size
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("Content-Length %d MiB at Elevated: status %d, want %d", tt.size>>20, rec.Code, tt.want)
		}
	}
}

func TestReserve(t *testing.T) {
	g := quietGuard(t, Config{Limit: 1000 << 20})
	g.setPressure(0.5, LevelNormal, time.Now()) // 450 MiB below Critical
	ctx := context.Background()
	r1, err := g.Reserve(ctx, 400<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Reserve(ctx, 100<<20); !errors.Is(err, ErrNoHeadroom) {
		t.Fatalf("second reservation past the headroom: %v, want ErrNoHeadroom", err)
	}
	r1()
	r1() // harmless
	if n := g.Snapshot().Reserved; n != 0 {
		t.Fatalf("reserved %d after release, want 0", n)
	}
	r2, err := g.Reserve(ctx, 100<<20)
	if err != nil {
		t.Fatalf("reservation after release: %v", err)
	}
	r2()
	if _, err := g.Reserve(ctx, -1); err == nil {
		t.Error("negative reservation accepted")
	}
}

func TestCriticalCancelsSheddableOnly(t *testing.T) {
	g := quietGuard(t, Config{})
	started := make(chan struct{}, 8)
	results := make(chan string, 8)
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			results <- PriorityFrom(r.Context()).String() + ":cancelled:" + context.Cause(r.Context()).Error()
		case <-time.After(2 * time.Second):
			results <- PriorityFrom(r.Context()).String() + ":finished"
		}
	}))
	var wg sync.WaitGroup
	// Work started above Normal is cancellable; start it at Elevated,
	// below the Sheddable band.
	g.setPressure(0.65, LevelElevated, time.Now())
	for _, p := range []Priority{PrioritySheddable, PrioritySheddable, PriorityCritical} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest("GET", "/", nil)
			h.ServeHTTP(httptest.NewRecorder(), req.WithContext(WithPriority(req.Context(), p)))
		}()
	}
	for i := 0; i < 3; i++ {
		<-started
	}
	g.setPressure(0.97, LevelCritical, time.Now())
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		counts[r]++
	}
	if counts["sheddable:cancelled:"+ErrShed.Error()] != 2 || counts["critical:finished"] != 1 {
		t.Errorf("outcomes %v, want both sheddable cancelled with ErrShed and critical finished", counts)
	}
	if n := g.Snapshot().Cancelled; n != 2 {
		t.Errorf("cancelled count %d, want 2", n)
	}
}

func TestCancelOrder(t *testing.T) {
	g := quietGuard(t, Config{})
	g.setPressure(0.65, LevelElevated, time.Now())
	var ctxs []context.Context
	var tickets []Ticket
	for i := 0; i < 3; i++ {
		ctx, tk, _ := g.Enter(context.Background(), PrioritySheddable)
		ctxs, tickets = append(ctxs, ctx), append(tickets, tk)
		time.Sleep(time.Millisecond) // distinct start times
	}
	release, err := g.Reserve(ctxs[0], 10<<20) // the oldest holds the largest reservation
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	g.cancelSheddable(1)
	if ctxs[0].Err() == nil || ctxs[1].Err() != nil || ctxs[2].Err() != nil {
		t.Fatal("first cancellation did not pick the largest reservation")
	}
	g.cancelSheddable(1)
	if ctxs[2].Err() == nil || ctxs[1].Err() != nil {
		t.Fatal("second cancellation did not pick the newest")
	}
	for _, tk := range tickets {
		tk.Done()
	}
}

func TestReadyHandler(t *testing.T) {
	g := quietGuard(t, Config{ReadyHold: 50 * time.Millisecond})
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		g.ReadyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != 200 || !strings.HasPrefix(body, "ready") {
		t.Fatalf("at Normal: %d %q", code, body)
	}
	g.setPressure(0.97, LevelCritical, time.Now())
	if code, body := get(); code != 503 || !strings.Contains(body, "critical") {
		t.Fatalf("at Critical: %d %q", code, body)
	}
	g.setPressure(0.3, LevelNormal, time.Now())
	if code, _ := get(); code != 503 {
		t.Errorf("right after Critical: %d, want 503 during the hold", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for code, _ := get(); code != 200; code, _ = get() {
		if time.Now().After(deadline) {
			t.Fatal("readiness never came back after the hold")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAdmitDoesNotAllocate(t *testing.T) {
	g := quietGuard(t, Config{})
	h := g.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(1000, func() { g.Admit(PriorityDefault) }); n != 0 {
		t.Errorf("Admit allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, req) }); n != 0 {
		t.Errorf("Middleware allocates %v times per admitted request", n)
	}
}

func BenchmarkAdmit(b *testing.B) {
	g := quietGuard(b, Config{})
	b.ReportAllocs()
	for b.Loop() {
		g.Admit(PriorityDefault)
	}
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkMiddleware compares a trivial handler bare and behind the guard,
// in one run: the difference is the guard's overhead per admitted request.
func BenchmarkMiddleware(b *testing.B) {
	g := quietGuard(b, Config{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	req := httptest.NewRequest("GET", "/", nil)
	w := &nopWriter{h: http.Header{}}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", handler}, {"guarded", g.Middleware(handler)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

func TestTicketDoneTwice(t *testing.T) {
	g := quietGuard(t, Config{})
	g.setPressure(0.75, LevelElevated, time.Now())
	_, tk, ok := g.Enter(context.Background(), PriorityDefault)
	if !ok {
		t.Fatal("shed at Elevated")
	}
	copied := tk
	tk.Done()
	tk.Done()
	copied.Done()
	if n := g.Snapshot().InFlight; n != 0 {
		t.Errorf("in flight after Done three times = %d, want 0", n)
	}
	Ticket{}.Done()
}

func TestHugeSizesDoNotOverflow(t *testing.T) {
	g := quietGuard(t, Config{Limit: 1 << 30})
	g.setPressure(0.75, LevelElevated, time.Now())
	ctx := context.Background()
	release, err := g.Reserve(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := g.Reserve(ctx, math.MaxInt64); !errors.Is(err, ErrNoHeadroom) {
		t.Fatalf("Reserve(MaxInt64) = %v, want ErrNoHeadroom", err)
	}
	h := g.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("POST", "/", strings.NewReader(""))
	req.ContentLength = math.MaxInt64
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("Content-Length MaxInt64 at Elevated: %d, want 503", rec.Code)
	}
}

func TestStopAdmitsEverything(t *testing.T) {
	g := quietGuard(t, Config{})
	g.setPressure(1.0, LevelCritical, time.Now())
	if g.Admit(PriorityDefault) {
		t.Fatal("admitted at the limit")
	}
	g.Stop()
	if !g.Admit(PriorityDefault) || !g.Admit(PrioritySheddable) || g.Level() != LevelNormal {
		t.Error("a stopped guard still sheds")
	}
	rec := httptest.NewRecorder()
	g.ReadyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 {
		t.Errorf("ReadyHandler after Stop: %d, want 200", rec.Code)
	}
}

// TestLimitHoldsAtTarget: committed memory at the target holds the limit;
// the working set at High (GOMEMLIMIT filling with garbage) does not cut it.
func TestLimitHoldsAtTarget(t *testing.T) {
	g := quietGuard(t, Config{})
	now := time.Now()
	g.setPressure(0.75, LevelElevated, now)
	var tickets []Ticket
	for i := 0; i < 100; i++ {
		_, tk, _ := g.Enter(context.Background(), PriorityDefault)
		tickets = append(tickets, tk)
	}
	for i := 0; i < 40; i++ {
		now = now.Add(50 * time.Millisecond)
		s := *g.snap.Load()
		s.Usage, s.Committed, s.Level, s.Time = int64(0.9*float64(s.Limit)), int64(math.Ceil(0.7*float64(s.Limit))), LevelHigh, now
		g.snap.Store(&s)
		g.level.Store(int32(LevelHigh))
		// No GC cycle ends: the policy sees the same count every time.
		g.sampler.shed.step(g, &s, gcClock{cycles: g.sampler.gcCycles, lastGC: now, burstTTL: -1}, now)
	}
	if lim := g.Snapshot().InFlightLimit; lim != 100 {
		t.Errorf("in-flight limit %d after 2s at the target with 100 in flight, want 100", lim)
	}
	for _, tk := range tickets {
		tk.Done()
	}
}
