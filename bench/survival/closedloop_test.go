package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// tickClock is a fake clock that advances by step at each reading.
type tickClock struct {
	n    atomic.Int64
	step time.Duration
}

func (c *tickClock) now() time.Duration { return time.Duration(c.n.Add(1)-1) * c.step }

func ok200(context.Context) hit { return hit{Code: 200, Latency: time.Millisecond} }

func TestClosedLoopCountBound(t *testing.T) {
	stopped := &tickClock{} // time never passes: only the count stops it
	hits := closedLoop(context.Background(), 50, time.Second, 1000, stopped.now, ok200)
	if len(hits) != 1000 {
		t.Errorf("%d hits, want the bound, 1000", len(hits))
	}
}

func TestClosedLoopTimeBound(t *testing.T) {
	// Every reading of the clock moves it 1ms on: exactly the readings
	// before 250ms start a request, whichever client makes them.
	clock := &tickClock{step: time.Millisecond}
	hits := closedLoop(context.Background(), 40, 250*time.Millisecond, 1<<30, clock.now, ok200)
	if len(hits) != 250 {
		t.Errorf("%d hits, want 250", len(hits))
	}
	seen := map[time.Duration]bool{}
	for _, h := range hits {
		if h.At >= 250*time.Millisecond || seen[h.At] || h.Code != 200 {
			t.Fatalf("hit %+v: sent at or after the end, twice, or not as sent", h)
		}
		seen[h.At] = true
	}
}

func TestClosedLoopCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if hits := closedLoop(ctx, 10, time.Hour, 1<<30, (&tickClock{}).now, ok200); len(hits) != 0 {
		t.Errorf("%d hits after cancel, want 0", len(hits))
	}
	// Cancelled while running: each client stops after its request. Every
	// request from the 100th on cancels before it returns, so that a client
	// may start at most one after the cancel whatever the scheduler does;
	// another may be in flight when it comes.
	ctx, cancel = context.WithCancel(context.Background())
	var n atomic.Int64
	hits := closedLoop(ctx, 10, time.Hour, 1<<30, (&tickClock{}).now, func(context.Context) hit {
		if n.Add(1) >= 100 {
			cancel()
		}
		return hit{Code: 200}
	})
	if len(hits) < 100 || len(hits) > 100+2*10 {
		t.Errorf("%d hits, want 100 plus at most two per client", len(hits))
	}
}

func TestHTTPSender(t *testing.T) {
	var gotBytes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotBytes.Store(r.ContentLength)
		if r.URL.Query().Get("bytes") == "" {
			http.Error(w, "no size", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	client := closedLoopClient(2, requestTimeout)
	defer client.CloseIdleConnections()

	up := httpSender(client, newRequestGen(srv.URL+"/work", uploadMix, true, sizeSeed))(context.Background())
	if up.Code != 200 || up.Err || up.Bytes <= 0 || gotBytes.Load() != up.Bytes {
		t.Errorf("upload = %+v, server read a body of %d", up, gotBytes.Load())
	}
	plain := httpSender(client, newRequestGen(srv.URL+"/work", nil, false, sizeSeed))(context.Background())
	if plain.Code != 503 || plain.Err || plain.Bytes != 0 {
		t.Errorf("plain GET = %+v, want 503 with no size", plain)
	}
	srv.Close()
	if down := httpSender(client, newRequestGen(srv.URL+"/work", nil, false, sizeSeed))(context.Background()); !down.Err {
		t.Errorf("to a closed server = %+v, want Err", down)
	}
}
