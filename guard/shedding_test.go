package guard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

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
	// Work started above Normal is cancellable.
	g.decide(bound(100, 100, 1<<30), LevelElevated, time.Now())
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
	g.decide(bound(100, 100, 1<<30), LevelCritical, time.Now())
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
	g.decide(bound(100, 100, 1<<30), LevelElevated, time.Now())
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
