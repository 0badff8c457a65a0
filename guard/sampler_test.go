package guard

import (
	"context"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/runtimestats"
)

func TestIntervalShrinksWithHeadroom(t *testing.T) {
	cfg, _ := Config{}.withDefaults()
	s := &sampler{g: &Guard{cfg: cfg}}
	prev := s.nextInterval(0.3, -1)
	if prev != cfg.Interval {
		t.Fatalf("interval at low pressure = %v, want the base %v", prev, cfg.Interval)
	}
	for _, p := range []float64{0.4, 0.5, 0.55} {
		iv := s.nextInterval(p, -1)
		if iv >= prev {
			t.Errorf("interval at %.2f = %v, not below %v", p, iv, prev)
		}
		prev = iv
	}
	// Memory that sits still is sampled every stillEvery near the limit;
	// a climb, faster, down to MinInterval.
	for _, p := range []float64{0.76, 0.9, 1} {
		if iv := s.nextInterval(p, -1); iv != stillEvery {
			t.Errorf("interval at %.2f, still = %v, want %v", p, iv, stillEvery)
		}
	}
	if iv := s.nextInterval(0.9, 100*time.Millisecond); iv != 10*time.Millisecond {
		t.Errorf("interval at 0.9 with 100ms to the limit = %v, want 10ms", iv)
	}
	if iv := s.nextInterval(0.9, time.Millisecond); iv != cfg.MinInterval {
		t.Errorf("interval at 0.9 with 1ms to the limit = %v, want MinInterval %v", iv, cfg.MinInterval)
	}
	if iv := s.nextInterval(0.2, time.Second); iv != 100*time.Millisecond {
		t.Errorf("interval with 1s to the limit = %v, want 100ms", iv)
	}
}

func TestLimiterSignal(t *testing.T) {
	s := &sampler{}
	s.gcCPU.StaleAfter = 2 * time.Second
	now := time.Unix(1000, 0)
	for _, tt := range []struct {
		cycles, limiter uint64
		after           time.Duration
		want            bool
	}{
		{10, 0, 0, false}, // never engaged
		{10, 11, 0, true}, // engaged in the cycle in progress (numgc+1)
		{11, 11, 100 * time.Millisecond, true},
		{12, 11, 100 * time.Millisecond, true}, // the previous cycle
		{13, 11, 100 * time.Millisecond, false},
		{13, 14, 0, true},                // engaged again
		{13, 14, 3 * time.Second, false}, // no cycle since for longer than StaleAfter
	} {
		now = now.Add(tt.after)
		if got := s.limiterEngaged(runtimestats.Stats{GCCycles: tt.cycles, LimiterCycle: tt.limiter}, now); got != tt.want {
			t.Errorf("cycles %d, limiter %d, +%v: engaged %v, want %v", tt.cycles, tt.limiter, tt.after, got, tt.want)
		}
	}
}

// BenchmarkSample is one full sample of every signal: the cgroup (or RSS),
// runtime/metrics, levels and the Snapshot.
func BenchmarkSample(b *testing.B) {
	g, err := Start(context.Background(), Config{Limit: 1 << 40, MemoryLimitRatio: -1, Interval: time.Hour, MinInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Stop()
	// Stop the sampler goroutine so the benchmark owns the sampler.
	g.gcWatch.stop()
	close(g.done)
	g.wg.Wait()
	g.done = make(chan struct{})
	b.ReportAllocs()
	now := time.Now()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		g.sampler.sample(now, false)
	}
}

// TestClockSteps drives the sampler with a clock that steps back an hour and
// then forward two: the limit is read again, the level comes down after
// its dwell and goes up again, and the history goes on, each within
// seconds of the clock's time and not an hour.
func TestClockSteps(t *testing.T) {
	g := quietGuard(t, Config{Dwell: time.Second, Interval: 100 * time.Millisecond, MinInterval: 10 * time.Millisecond})
	s := &g.sampler
	rss := g.Snapshot().Usage
	now := time.Now().Round(0) // no monotonic reading: it may step
	run := func(d time.Duration) {
		for end := now.Add(d); now.Before(end); now = now.Add(50 * time.Millisecond) {
			s.sample(now, false)
		}
	}
	points := func() int { return len(g.history.Points(nil)) }

	g.cfg.Limit = int64(float64(rss) / 0.9) // High, or Critical if the process grew
	run(time.Second)
	if l := g.Level(); l < LevelHigh {
		sn := g.Snapshot()
		t.Fatalf("level %v at 0.9 of the limit, want high or above (usage %d %s, limit %d %s)", l, sn.Usage, sn.UsageSource, sn.Limit, sn.LimitSource)
	}

	now = now.Add(-time.Hour)
	g.cfg.Limit = 100 * rss
	before := points()
	run(4 * time.Second)
	if snap := g.Snapshot(); snap.Limit != 100*rss || g.Level() != LevelNormal {
		t.Errorf("4s after the clock stepped back an hour: limit %d, level %v; want %d, normal", snap.Limit, g.Level(), 100*rss)
	}
	if snap := g.Snapshot(); !snap.Time.Equal(now.Add(-50 * time.Millisecond)) {
		t.Errorf("Snapshot.Time %v, want the clock's own %v", snap.Time, now.Add(-50*time.Millisecond))
	}
	if n := points() - before; n < 3 {
		t.Errorf("%d history points in the 4s after the step back, want 3 or more", n)
	}

	now = now.Add(2 * time.Hour)
	// From the usage now: the runtime may have given memory back since
	// the start (CI once read 0.84 of a limit set from the first figure).
	g.cfg.Limit = int64(float64(g.Snapshot().Usage) / 0.9)
	run(time.Second)
	if snap := g.Snapshot(); g.Level() < LevelHigh || snap.Interval < g.cfg.MinInterval || snap.Interval > g.cfg.Interval {
		t.Errorf("after the step forward: level %v, interval %v; want high or above, within [%v, %v]", g.Level(), snap.Interval, g.cfg.MinInterval, g.cfg.Interval)
	}
}

// TestSteadyClock: a step back becomes an offset, and the clock goes on
// from where it was at the pace of the clock it reads.
func TestSteadyClock(t *testing.T) {
	var c steadyClock
	t0 := time.Unix(1_700_000_000, 0)
	if got := c.at(t0); !got.Equal(t0) {
		t.Fatalf("first reading %v, want %v", got, t0)
	}
	if got := c.at(t0.Add(-time.Hour)); !got.Equal(t0) {
		t.Errorf("a step back of an hour reads %v, want %v", got, t0)
	}
	if got := c.at(t0.Add(-time.Hour + time.Second)); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("a second later reads %v, want %v", got, t0.Add(time.Second))
	}
	if got := c.at(t0.Add(time.Hour)); !got.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("a step forward reads %v, want %v (forward steps pass)", got, t0.Add(2*time.Hour))
	}
}

// TestSampleCountsTheWorkInFlight: the reading the sampler hands to the
// state record, the events and the history counts the work in flight at
// the reading, as Snapshot counts it at the call.
func TestSampleCountsTheWorkInFlight(t *testing.T) {
	g := quietGuard(t, Config{})
	var tickets []Ticket
	for range 2 {
		_, tk, ok := g.Enter(context.Background(), PriorityDefault)
		if !ok {
			t.Fatal("Enter refused on an idle guard")
		}
		tickets = append(tickets, tk)
	}
	g.sampler.sample(time.Now(), false)
	if n := g.snap.Load().InFlight; n != 2 {
		t.Errorf("the sampled reading counts %d in flight, want 2", n)
	}
	if n := reading(g.snap.Load()).InFlight; n != 2 {
		t.Errorf("the state record's reading counts %d in flight, want 2", n)
	}
	for _, tk := range tickets {
		tk.Done()
	}
}
