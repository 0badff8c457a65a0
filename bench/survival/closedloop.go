package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxClosedLoopHits bounds the requests of one closed-loop phase: clients
// that are refused at once would otherwise send without end.
const maxClosedLoopHits = 1_000_000

// closedLoop runs conns clients that each send a request as soon as their
// last one is answered, with no think time, as an ordinary HTTP load tool
// does. A client stops when now() reaches until, when ctx is done, or when
// maxHits requests were sent by all of them. send makes one request; the
// hit it returns gets At from now() just before. closedLoop returns every
// outcome once all clients have stopped.
func closedLoop(ctx context.Context, conns int, until time.Duration, maxHits int64,
	now func() time.Duration, send func(context.Context) hit) []hit {
	var sent atomic.Int64
	per := make([][]hit, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				at := now()
				if at >= until || sent.Add(1) > maxHits {
					return
				}
				h := send(ctx)
				h.At = at
				per[i] = append(per[i], h)
			}
		}()
	}
	wg.Wait()
	var all []hit
	for _, hs := range per {
		all = append(all, hs...)
	}
	return all
}

// httpSender returns a send function for closedLoop: gen's next request,
// over client, the response body read and dropped.
func httpSender(client *http.Client, gen *requestGen) func(context.Context) hit {
	return func(ctx context.Context) hit {
		r := gen.next()
		var body io.Reader
		if len(r.Body) > 0 {
			body = bytes.NewReader(r.Body)
		}
		h := hit{Bytes: r.Bytes}
		req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
		if err != nil {
			h.Err = true
			return h
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			h.Code = resp.StatusCode
		}
		h.Latency = time.Since(t0)
		h.Err = err != nil && h.Code == 0
		return h
	}
}

// closedLoopClient is an HTTP client with a connection for each of conns
// clients, which waits timeout for an answer.
func closedLoopClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			MaxConnsPerHost:     conns,
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
