package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// load is an open-loop load that swings, every period, through four
// phases of a quarter each: calm; busy, near what the limit holds; an
// overload of three times that, which the guard must shed to survive; and
// calm again, when a ballast process in the cgroup takes the service to
// Critical for a moment (see ballast), and lets the level fall back to
// Normal.
type load struct {
	addr     string
	period   time.Duration
	capacity float64 // requests a second that the limit holds, at 1 MiB for 300ms each
	client   *http.Client

	sent, ok, shed, failed atomic.Int64
}

// holdSeconds is how long the example service holds each request's
// memory by default (its -work-hold).
const holdSeconds = 0.3

func newLoad(addr string, limit int64, period time.Duration) *load {
	return &load{
		addr:     addr,
		period:   period,
		capacity: float64(limit) / (1 << 20) / holdSeconds * 0.6,
		client:   &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}},
	}
}

// phase returns the request rate at elapsed.
func (l *load) phase(elapsed time.Duration) float64 {
	switch q := 4 * (elapsed % l.period) / l.period; q {
	case 0:
		return 20
	case 1:
		return 0.8 * l.capacity
	case 2:
		return 3 * l.capacity
	default:
		return 5
	}
}

// run sends requests until d has passed or ctx ends, and waits for them.
func (l *load) run(ctx context.Context, d time.Duration) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 2048) // the client's own bound
	start := time.Now()
	next := start
	for {
		elapsed := time.Since(start)
		if elapsed >= d || ctx.Err() != nil {
			return
		}
		rate := l.phase(elapsed)
		next = next.Add(time.Duration(float64(time.Second) / rate))
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		} else if wait < -time.Second {
			next = time.Now() // fell behind: no catch-up burst
		}
		select {
		case sem <- struct{}{}:
		default:
			l.failed.Add(1) // the client's bound: counted, not sent
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.one(ctx, 1<<20)
		}()
	}
}

func (l *load) one(ctx context.Context, bytes int) {
	l.sent.Add(1)
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/work?bytes=%d", l.addr, bytes), nil)
	if err != nil {
		l.failed.Add(1)
		return
	}
	resp, err := l.client.Do(req)
	if err != nil {
		l.failed.Add(1)
		return
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		l.ok.Add(1)
	case http.StatusServiceUnavailable:
		l.shed.Add(1)
	default:
		l.failed.Add(1)
	}
}

type loadCounts struct{ sent, ok, shed, failed int64 }

func (l *load) counts() loadCounts {
	return loadCounts{l.sent.Load(), l.ok.Load(), l.shed.Load(), l.failed.Load()}
}
