package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// A phase is a stretch of constant arrival rate (open loop), or of a fixed
// number of clients that each send a request as soon as the last one is
// answered (closed loop).
type phase struct {
	Name     string
	Rate     float64 // requests per second, open loop
	Conns    int     // clients, closed loop; 0: open loop
	Duration time.Duration
}

// String is the phase in words: "spike 12s at 825 rps".
func (p phase) String() string {
	switch {
	case p.Conns > 0:
		return fmt.Sprintf("%s %v, %d connections closed loop", p.Name, p.Duration, p.Conns)
	case p.Rate == 0:
		return fmt.Sprintf("%s %v", p.Name, p.Duration)
	}
	return fmt.Sprintf("%s %v at %.0f rps", p.Name, p.Duration, p.Rate)
}

// String is the schedule in words, its phases in order.
func (s schedule) String() string {
	var out []string
	for _, p := range s {
		out = append(out, p.String())
	}
	return strings.Join(out, ", then ")
}

// A schedule is a sequence of phases. Its open-loop phases make a
// vegeta.Pacer: vegeta sends the requests at the schedule's rate whatever
// the responses do, starting more workers when responses are slow.
type schedule []phase

var _ vegeta.Pacer = schedule(nil)

// Pace implements vegeta.Pacer: wait until the hit that follows the hits
// already sent is due.
func (s schedule) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	var start time.Duration
	due := 0.0 // hits due by the start of the current phase
	for _, p := range s {
		end := start + p.Duration
		if elapsed < end {
			if p.Rate <= 0 {
				return end - elapsed, false
			}
			if float64(hits) < due+p.Rate*(elapsed-start).Seconds() {
				return 0, false
			}
			next := start + time.Duration((float64(hits)+1-due)/p.Rate*float64(time.Second))
			return min(next, end) - elapsed, false
		}
		due += p.Rate * p.Duration.Seconds()
		start = end
	}
	return 0, true
}

// Rate implements vegeta.Pacer.
func (s schedule) Rate(elapsed time.Duration) float64 {
	if p, _, ok := s.at(elapsed); ok {
		return p.Rate
	}
	return 0
}

// at returns the phase in force at elapsed and when it started.
func (s schedule) at(elapsed time.Duration) (phase, time.Duration, bool) {
	var start time.Duration
	for _, p := range s {
		if elapsed < start+p.Duration {
			return p, start, true
		}
		start += p.Duration
	}
	return phase{}, 0, false
}

// window returns when the named phase starts and ends.
func (s schedule) window(name string) (from, to time.Duration, ok bool) {
	var start time.Duration
	for _, p := range s {
		if p.Name == name {
			return start, start + p.Duration, true
		}
		start += p.Duration
	}
	return 0, 0, false
}

// segments splits the schedule where the loop kind changes: each segment is
// either open-loop phases in a row or a single closed-loop phase.
func (s schedule) segments() []schedule {
	var out []schedule
	for i := 0; i < len(s); {
		j := i + 1
		if s[i].Conns == 0 {
			for j < len(s) && s[j].Conns == 0 {
				j++
			}
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// peakRate is the highest open-loop rate of the schedule.
func (s schedule) peakRate() float64 {
	var r float64
	for _, p := range s {
		r = max(r, p.Rate)
	}
	return r
}

// Duration is the length of the whole schedule.
func (s schedule) Duration() time.Duration {
	var d time.Duration
	for _, p := range s {
		d += p.Duration
	}
	return d
}

// A hit is one request's outcome, with times relative to the load's start.
type hit struct {
	At      time.Duration // when it was sent
	Latency time.Duration
	Code    int   // HTTP status; 0 when the request failed
	Err     bool  // no response: refused, reset or timed out
	Bytes   int64 // the size it asked for (bytes=N, or a picture's pixelBytes); 0: the service's default
}

// ok reports a successful response.
func (h hit) ok() bool { return h.Code == http.StatusOK && !h.Err }

// served reports a successful response within deadline; with none (0),
// any successful response.
func (h hit) served(deadline time.Duration) bool {
	return h.ok() && (deadline <= 0 || h.Latency <= deadline)
}

// loadOptions bound the generator.
type loadOptions struct {
	Timeout    time.Duration // per request
	MaxWorkers uint64        // concurrent requests in flight, at most
}

// attack sends gen's requests at the open-loop schedule's rates with vegeta
// and returns every outcome, in the order they completed, timed from start
// (at or before the call). It returns early, with what it has, when ctx is
// done. Requests still in flight at the end of the schedule finish or time
// out before it returns.
func attack(ctx context.Context, start time.Time, gen *requestGen, s schedule, o loadOptions) []hit {
	a := vegeta.NewAttacker(
		vegeta.Timeout(o.Timeout),
		vegeta.MaxWorkers(o.MaxWorkers),
		vegeta.Workers(64),
		vegeta.KeepAlive(true),
		vegeta.Connections(int(o.MaxWorkers)),
		vegeta.MaxBody(512),
		vegeta.Redirects(vegeta.NoFollow),
	)
	targeter := vegeta.Targeter(func(t *vegeta.Target) error {
		r := gen.next()
		t.Method, t.URL, t.Body = r.Method, r.URL, r.Body
		return nil
	})
	stop := context.AfterFunc(ctx, func() { a.Stop() })
	defer stop()

	var hits []hit
	for r := range a.Attack(targeter, s, s.Duration(), "survival") {
		hits = append(hits, hit{
			At:      r.Timestamp.Sub(start),
			Latency: r.Latency,
			Code:    int(r.Code),
			Err:     r.Error != "" && r.Code == 0,
			Bytes:   gen.bytesOf(r.URL),
		})
	}
	return hits
}
