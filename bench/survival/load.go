package main

import (
	"context"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// A phase is a stretch of constant arrival rate.
type phase struct {
	Name     string
	Rate     float64 // requests per second
	Duration time.Duration
}

// A schedule is a sequence of phases. It is a vegeta.Pacer: vegeta sends
// the requests at the schedule's rate whatever the responses do (open
// loop), starting more workers when responses are slow.
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

// Duration is the length of the whole schedule.
func (s schedule) Duration() time.Duration {
	var d time.Duration
	for _, p := range s {
		d += p.Duration
	}
	return d
}

// A hit is one request's outcome, with times relative to the attack's start.
type hit struct {
	At      time.Duration // when it was sent
	Latency time.Duration
	Code    int  // HTTP status; 0 when the request failed
	Err     bool // no response: refused, reset or timed out
}

// ok reports a successful response.
func (h hit) ok() bool { return h.Code == http.StatusOK && !h.Err }

// loadOptions bound the generator.
type loadOptions struct {
	Timeout    time.Duration // per request
	MaxWorkers uint64        // concurrent requests in flight, at most
}

// attack sends GET url at the schedule's rates with vegeta and returns
// every outcome, in the order they completed, timed from start (just before
// the call). It returns early, with what it has, when ctx is done. Requests
// still in flight at the end of the schedule finish or time out before it
// returns.
func attack(ctx context.Context, start time.Time, url string, s schedule, o loadOptions) []hit {
	a := vegeta.NewAttacker(
		vegeta.Timeout(o.Timeout),
		vegeta.MaxWorkers(o.MaxWorkers),
		vegeta.Workers(64),
		vegeta.KeepAlive(true),
		vegeta.Connections(int(o.MaxWorkers)),
		vegeta.MaxBody(512),
		vegeta.Redirects(vegeta.NoFollow),
	)
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: url})
	stop := context.AfterFunc(ctx, func() { a.Stop() })
	defer stop()

	var hits []hit
	for r := range a.Attack(targeter, s, s.Duration(), "survival") {
		hits = append(hits, hit{
			At:      r.Timestamp.Sub(start),
			Latency: r.Latency,
			Code:    int(r.Code),
			Err:     r.Error != "" && r.Code == 0,
		})
	}
	return hits
}
