package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func serve(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestWorkHandler(t *testing.T) {
	for _, offHeap := range []bool{false, true} {
		h := workHandler(workConfig{bytes: 1000, maxBytes: 1 << 20, hold: time.Millisecond, offHeap: offHeap})
		for _, tc := range []struct {
			method, target, body string
			code                 int
			want                 string
		}{
			{"GET", "/work", "", 200, "ok 1000 bytes"},
			{"GET", "/work?bytes=70000", "", 200, "ok 70000 bytes"},
			{"GET", "/work?bytes=0", "", 200, "ok 0 bytes"},
			{"GET", "/work?bytes=2000000", "", 400, "want an integer"},
			{"GET", "/work?bytes=-1", "", 400, "want an integer"},
			{"POST", "/work", strings.Repeat("x", 5000), 200, "ok 5000 bytes"},
			{"POST", "/work", strings.Repeat("x", 2<<20), 413, "too large"},
		} {
			w := serve(h, tc.method, tc.target, tc.body)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("offheap=%v %s %s: %d %q, want %d %q", offHeap, tc.method, tc.target, w.Code, w.Body, tc.code, tc.want)
			}
		}
	}
}

func TestWorkHandlerChunkedUpload(t *testing.T) {
	h := workHandler(workConfig{maxBytes: 1 << 20, hold: time.Millisecond})
	r := httptest.NewRequest("POST", "/work", strings.NewReader(strings.Repeat("y", 3000)))
	r.ContentLength = -1 // unknown: read with io.ReadAll
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "ok 3000 bytes") {
		t.Errorf("chunked upload: %d %q", w.Code, w.Body)
	}
}

func TestWorkHandlerCancelled(t *testing.T) {
	h := workHandler(workConfig{bytes: 10, maxBytes: 10, hold: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/work", nil).WithContext(ctx))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("cancelled: %d, want 503", w.Code)
	}
}

func TestDeclaredCost(t *testing.T) {
	cost := declaredCost(1 << 20)
	for _, tc := range []struct {
		method, target, body string
		want                 int64
	}{
		{"GET", "/work", "", 1 << 20},
		{"GET", "/work?bytes=4096", "", 4096},
		{"POST", "/work?bytes=4096", "12345", 5},
		{"GET", "/work?bytes=junk", "", 1 << 20},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		if tc.body != "" {
			r = httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		}
		if got := cost(r); got != tc.want {
			t.Errorf("%s %s: cost %d, want %d", tc.method, tc.target, got, tc.want)
		}
	}
}

func TestCapInFlight(t *testing.T) {
	release := make(chan struct{})
	var entered sync.WaitGroup
	entered.Add(2)
	h := capInFlight(2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Done()
		<-release
	}))
	var done sync.WaitGroup
	for range 2 {
		done.Add(1)
		go func() { defer done.Done(); serve(h, "GET", "/work", "") }()
	}
	entered.Wait()
	w := serve(h, "GET", "/work", "")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Errorf("third request at cap 2: %d, Retry-After %q; want 503, 1", w.Code, w.Header().Get("Retry-After"))
	}
	close(release)
	done.Wait()
	entered.Add(1)
	if w := serve(h, "GET", "/work", ""); w.Code != 200 {
		t.Errorf("after the others ended: %d, want 200", w.Code)
	}
	if capInFlight(0, h) == nil {
		t.Error("capInFlight(0) returned nil")
	}
}

func TestFill(t *testing.T) {
	b := fill(3*chunk + 5)
	var n int
	for _, c := range b {
		n += len(c)
	}
	if len(b) != 4 || n != 3*chunk+5 {
		t.Errorf("fill: %d chunks, %d bytes", len(b), n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	leak(ctx, 1<<20) // returns when ctx is done
	leak(context.Background(), 0)
}

func TestRebuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rebuild(ctx, 3*chunk, 10*time.Millisecond) // returns when ctx is done
	if len(rebuilt) != 3*chunk {
		t.Errorf("rebuilt block of %d bytes, want %d", len(rebuilt), 3*chunk)
	}
	rebuild(context.Background(), 0, time.Second)
}
