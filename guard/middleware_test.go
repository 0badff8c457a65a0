package guard

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMiddlewareShedsWith503(t *testing.T) {
	g := quietGuard(t, Config{RetryAfter: 1500 * time.Millisecond})
	var served int
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	g.decide(bound(0, 0, 0), LevelHigh, time.Now())

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d for a default request past its bound, want 503", rec.Code)
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
	if s := g.Snapshot(); s.Shed.Default != 1 || s.InFlight != 0 {
		t.Errorf("shed %+v, in flight %d; want one default shed and none in flight", s.Shed, s.InFlight)
	}

	// A critical request is admitted past every bound.
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	h.ServeHTTP(rec, req.WithContext(WithPriority(req.Context(), PriorityCritical)))
	if rec.Code != http.StatusOK || served != 1 {
		t.Errorf("critical request: status %d, served %d", rec.Code, served)
	}
}

// TestMiddlewareCounts: every request is counted in flight while its
// handler runs, on the fast path too.
func TestMiddlewareCounts(t *testing.T) {
	g := quietGuard(t, Config{})
	var during int64
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { during = g.Snapshot().InFlight }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if s := g.Snapshot(); during != 1 || s.InFlight != 0 || s.Admitted != 1 {
		t.Errorf("in flight %d during the handler, %d after, admitted %d; want 1, 0, 1", during, s.InFlight, s.Admitted)
	}
}

// TestMiddlewareHandlerPanics: a handler that panics still ends its work.
func TestMiddlewareHandlerPanics(t *testing.T) {
	g := quietGuard(t, Config{})
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }))
	for _, cl := range []int64{0, 10} {
		func() {
			defer func() { recover() }()
			req := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", int(cl))))
			h.ServeHTTP(httptest.NewRecorder(), req)
		}()
	}
	if s := g.Snapshot(); s.InFlight != 0 || s.Reserved != 0 {
		t.Errorf("after panics: in flight %d, declared %d; want 0 and 0", s.InFlight, s.Reserved)
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
	g.decide(bound(10, 0, 1<<30), LevelHigh, time.Now())
	for path, want := range map[string]int{"/healthz": 200, "/batch": 503} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d", path, rec.Code, want)
		}
	}
}

// TestMiddlewareDeclaredBytes: Content-Length and Config.Cost declare the
// bytes a request holds; what does not fit the room is shed.
func TestMiddlewareDeclaredBytes(t *testing.T) {
	var held int64
	g := quietGuard(t, Config{Cost: func(r *http.Request) int64 {
		if r.URL.Path == "/big" {
			return 150 << 20
		}
		return 0
	}})
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held = g.Snapshot().Reserved
		io.Copy(io.Discard, r.Body)
	}))
	g.decide(bound(100, 100, 200<<20), LevelNormal, time.Now())
	for _, tt := range []struct {
		path string
		size int64
		want int
		held int64
	}{
		{"/", 1 << 20, 200, 1 << 20},
		{"/", 300 << 20, 503, 0},
		{"/big", 10, 200, 150 << 20},
		{"/", math.MaxInt64, 503, 0},
	} {
		held = 0
		req := httptest.NewRequest("POST", tt.path, strings.NewReader(""))
		req.ContentLength = tt.size
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want || held != tt.held {
			t.Errorf("%s with Content-Length %d: status %d, %d bytes declared in the handler; want %d and %d", tt.path, tt.size, rec.Code, held, tt.want, tt.held)
		}
	}
	if s := g.Snapshot(); s.Reserved != 0 || s.InFlight != 0 {
		t.Errorf("after the requests: declared %d, in flight %d", s.Reserved, s.InFlight)
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
	g.decide(bound(0, 0, 0), LevelCritical, time.Now())
	if code, body := get(); code != 503 || !strings.Contains(body, "critical") {
		t.Fatalf("at Critical: %d %q", code, body)
	}
	g.decide(bound(100, 100, 1<<30), LevelNormal, time.Now())
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

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkMiddleware compares a trivial handler bare and behind the guard,
// in one run: the difference is the guard's overhead per admitted request.
//
// guarded-report is the same with Config.ReportLoad: the header's cost.
func BenchmarkMiddleware(b *testing.B) {
	g := quietGuard(b, Config{})
	reporting := quietGuard(b, Config{ReportLoad: true})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	req := httptest.NewRequest("GET", "/", nil)
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", handler}, {"guarded", g.Middleware(handler)}, {"guarded-report", reporting.Middleware(handler)}} {
		b.Run(bc.name, func(b *testing.B) {
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &nopWriter{h: http.Header{}}
				for pb.Next() {
					bc.h.ServeHTTP(w, req)
				}
			})
		})
	}
}

// TestMiddlewareTooLarge: a request that declares more bytes than the
// admission target gets 413 without Retry-After at every priority, is
// neither counted as shed nor left in flight, and declares nothing.
func TestMiddlewareTooLarge(t *testing.T) {
	g := quietGuard(t, Config{Classifier: func(r *http.Request) Priority {
		if r.URL.Path == "/healthz" {
			return PriorityCritical
		}
		return PriorityDefault
	}})
	d := bound(100, 100, 1<<30)
	d.Target = 2 << 30
	g.decide(d, LevelNormal, time.Now())
	var served int
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	for _, tc := range []struct {
		path string
		cl   int64
		want int
	}{
		{"/healthz", math.MaxInt64, http.StatusRequestEntityTooLarge},
		{"/", math.MaxInt64, http.StatusRequestEntityTooLarge},
		{"/healthz", 2<<30 + 1, http.StatusRequestEntityTooLarge},
		{"/healthz", 2 << 30, http.StatusOK},            // Critical: past the room, within the target
		{"/", 1<<30 + 1, http.StatusServiceUnavailable}, // past the room: not now
		{"/", 1 << 30, http.StatusOK},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		req.ContentLength = tc.cl
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s, Content-Length %d: status %d, want %d", tc.path, tc.cl, rec.Code, tc.want)
		}
		if ra := rec.Header().Get("Retry-After"); (ra != "") != (tc.want == http.StatusServiceUnavailable) {
			t.Errorf("%s, Content-Length %d: Retry-After %q", tc.path, tc.cl, ra)
		}
	}
	s := g.Snapshot()
	if s.TooLarge != 3 || s.Shed != (ShedCounts{Default: 1}) || s.InFlight != 0 || s.Reserved != 0 || served != 2 {
		t.Errorf("too large %d, shed %+v, in flight %d, declared %d, served %d; want 3, one default, 0, 0, 2", s.TooLarge, s.Shed, s.InFlight, s.Reserved, served)
	}
	if _, err := g.Reserve(WithPriority(context.Background(), PriorityCritical), 2<<30+1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Reserve past the target at Critical: %v, want ErrTooLarge", err)
	}
	if _, _, ok := g.EnterBytes(context.Background(), PriorityCritical, math.MaxInt64); ok {
		t.Error("EnterBytes(MaxInt64) admitted at Critical")
	}
	if s := g.Snapshot(); s.TooLarge != 5 || s.InFlight != 0 || s.Reserved != 0 {
		t.Errorf("too large %d, in flight %d, declared %d; want 5, 0, 0", s.TooLarge, s.InFlight, s.Reserved)
	}
}

// TestMiddlewareTooLargeOff: a guard switched off refuses nothing, however
// much a request declares, and many such requests at once do not wrap the
// declared sum around.
func TestMiddlewareTooLargeOff(t *testing.T) {
	t.Setenv(EnvSwitch, "off")
	g, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	var release []func()
	for range 64 {
		r, err := g.Reserve(context.Background(), math.MaxInt64)
		if err != nil {
			t.Fatalf("Reserve on an inert guard: %v", err)
		}
		release = append(release, r)
	}
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	req := httptest.NewRequest("GET", "/", nil)
	req.ContentLength = math.MaxInt64
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("inert guard: status %d for Content-Length MaxInt64, want 200", rec.Code)
	}
	for _, r := range release {
		r()
	}
	if s := g.Snapshot(); s.Reserved != 0 || s.TooLarge != 0 {
		t.Errorf("declared %d, too large %d after release; want 0, 0", s.Reserved, s.TooLarge)
	}
}

// FuzzMiddleware drives the middleware with arbitrary methods, headers,
// declared sizes, priorities, bounds and levels, and a handler that may
// panic: whatever comes in, the work in flight and the declared bytes
// return to zero, and the answer is the handler's, 503 or 413.
func FuzzMiddleware(f *testing.F) {
	f.Add("GET", int64(0), "Accept", "*/*", int64(0), uint8(1), uint8(0), int64(100), int64(1<<30), false)
	f.Add("POST", int64(math.MaxInt64), "Content-Length", "9223372036854775807", int64(0), uint8(2), uint8(0), int64(100), int64(1<<30), false)
	f.Add("PUT", int64(1<<20), "X", "y", int64(-5), uint8(0), uint8(2), int64(0), int64(1<<10), true)
	f.Add("BREW", int64(-1), "", "", int64(math.MaxInt64), uint8(7), uint8(3), int64(-3), int64(0), false)
	var cost atomic.Int64
	var priority atomic.Int32
	g := quietGuard(f, Config{
		Cost:       func(*http.Request) int64 { return cost.Load() },
		Classifier: func(*http.Request) Priority { return Priority(priority.Load()) },
	})
	f.Fuzz(func(t *testing.T, method string, contentLength int64, name, value string, declared int64, p, level uint8, limit, room int64, panics bool) {
		cost.Store(declared)
		priority.Store(int32(p%3) - 1)
		d := bound(limit, limit/2, room)
		d.Target = room * 2
		g.decide(d, Level(level%4), time.Now())
		h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if panics {
				panic(http.ErrAbortHandler)
			}
			w.WriteHeader(http.StatusTeapot)
		}))
		req := &http.Request{
			Method:        method,
			URL:           &url.URL{Path: "/"},
			Header:        http.Header{},
			ContentLength: contentLength,
			Body:          http.NoBody,
		}
		req = req.WithContext(context.Background())
		if name != "" {
			req.Header.Set(name, value)
		}
		rec := httptest.NewRecorder()
		func() {
			defer func() {
				if v := recover(); v != nil && v != http.ErrAbortHandler {
					t.Fatalf("panic: %v", v)
				}
			}()
			h.ServeHTTP(rec, req)
		}()
		switch rec.Code {
		case http.StatusTeapot, http.StatusServiceUnavailable, http.StatusRequestEntityTooLarge:
		case http.StatusOK: // the handler panicked before writing
			if !panics {
				t.Errorf("status 200 from a handler that writes 418")
			}
		default:
			t.Errorf("status %d", rec.Code)
		}
		if s := g.Snapshot(); s.InFlight != 0 || s.Reserved != 0 || g.largeDeclared.Load() != 0 {
			t.Fatalf("after the request: in flight %d, declared %d, large declared %d; want all 0", s.InFlight, s.Reserved, g.largeDeclared.Load())
		}
	})
}
