package guard

import (
	"context"
	"os"
	"runtime/debug"
	"testing"

	"github.com/oomguard/oomguard/internal/runtimestats"
	"time"
)

// startGuard starts a guard that the test stops, asserting GOMEMLIMIT is
// restored.
func startGuard(t *testing.T, cfg Config) *Guard {
	t.Helper()
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT is set in the environment")
	}
	before := debug.SetMemoryLimit(-1)
	g, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Stop()
		if after := debug.SetMemoryLimit(-1); after != before {
			t.Errorf("GOMEMLIMIT after Stop = %d, want %d as before Start", after, before)
		}
	})
	return g
}

func TestStartOwnsGoMemLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(3 << 30)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	g := startGuard(t, Config{Limit: 1 << 30})
	s := g.Snapshot()
	if s.Limit != 1<<30 || s.LimitSource != LimitFromConfig {
		t.Errorf("limit = %d from %q, want %d from config", s.Limit, s.LimitSource, 1<<30)
	}
	want := int64(1<<30) * 9 / 10
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Errorf("GOMEMLIMIT = %d, want 0.9 × limit = %d", got, want)
	}
	if s.GoMemLimit != want || s.GoMemLimitSource != "guard" {
		t.Errorf("snapshot GOMEMLIMIT = %d (%s), want %d (guard)", s.GoMemLimit, s.GoMemLimitSource, want)
	}
	g.Stop()
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Errorf("GOMEMLIMIT after Stop = %d, want the previous %d", got, int64(3<<30))
	}
	g.Stop() // idempotent
}

func TestNegativeRatioLeavesGoMemLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(5 << 30)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	g := startGuard(t, Config{Limit: 1 << 30, MemoryLimitRatio: -1})
	if got := debug.SetMemoryLimit(-1); got != 5<<30 {
		t.Errorf("GOMEMLIMIT = %d, want it left at %d", got, int64(5<<30))
	}
	if s := g.Snapshot().GoMemLimitSource; s != "unchanged" {
		t.Errorf("GoMemLimitSource = %q, want unchanged", s)
	}
}

func TestOneOwnerOfGoMemLimit(t *testing.T) {
	startGuard(t, Config{Limit: 1 << 30})
	if g2, err := Start(context.Background(), Config{Limit: 1 << 30}); err == nil {
		g2.Stop()
		t.Fatal("a second guard took GOMEMLIMIT while the first owns it")
	}
	g3, err := Start(context.Background(), Config{Limit: 1 << 30, MemoryLimitRatio: -1})
	if err != nil {
		t.Fatalf("a second guard that leaves GOMEMLIMIT alone: %v", err)
	}
	g3.Stop()
}

func TestContextEndsGuard(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g, err := Start(ctx, Config{Limit: 1 << 30, MemoryLimitRatio: -1})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		t.Fatal("guard still running 10s after its context ended")
	}
	g.Stop()
}

func TestStartWithDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g, err := Start(ctx, Config{Limit: 1 << 30, MemoryLimitRatio: -1})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		t.Fatal("guard started with a done context still running after 10s")
	}
	g.Stop()
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

func TestSnapshotSignals(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	s := g.Snapshot()
	if s.Usage <= 0 || s.UsageSource == "" {
		t.Errorf("usage %d from %q", s.Usage, s.UsageSource)
	}
	if s.HeapGoal <= 0 || s.GoResident <= 0 || s.GoMemLimit <= 0 {
		t.Errorf("runtime signals missing: %+v", s)
	}
	if s.Level != LevelNormal || g.Level() != LevelNormal {
		t.Errorf("level %v at a 1 TiB limit", s.Level)
	}
	if s.Time.IsZero() || s.Interval <= 0 {
		t.Errorf("time %v, interval %v", s.Time, s.Interval)
	}
}

func TestLevelsFromConfigLimit(t *testing.T) {
	// A limit below what the container uses puts the guard at Critical at once.
	probe := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	usage := probe.Snapshot().Usage
	probe.Stop()

	// Half of the container's usage: pressure near 2, however the other
	// processes in the container move meanwhile.
	g := startGuard(t, Config{Limit: usage / 2, MemoryLimitRatio: -1})
	if l := g.Level(); l != LevelCritical {
		t.Errorf("level %v at pressure %.2f, want critical", l, g.Snapshot().Pressure())
	}
}

func TestSlowSubscriberNeverBlocks(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	release := make(chan struct{})
	var calls int
	cancel := g.Subscribe(func(Event) { calls++; <-release })
	// Publishing far more than the queue holds returns, dropping the oldest.
	for i := 0; i < 10*subscriberQueue; i++ {
		g.publish(Event{Type: EventLevel, Level: Level(i % 4)})
	}
	close(release)
	cancel()
	g.Stop()
	if calls > subscriberQueue+1 {
		t.Errorf("subscriber saw %d events, more than the queue holds", calls)
	}
	if d := g.Snapshot().EventsDropped; d < 10*subscriberQueue-subscriberQueue-1 {
		t.Errorf("%d events dropped, want at least %d", d, 9*subscriberQueue-1)
	}
}

func TestSubscribeDeliversInOrder(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	done := make(chan struct{})
	var seen []Level
	cancel := g.Subscribe(func(e Event) {
		seen = append(seen, e.Level)
		if len(seen) == 4 {
			close(done)
		}
	})
	defer cancel()
	for l := LevelNormal; l <= LevelCritical; l++ {
		g.publish(Event{Type: EventLevel, Level: l})
	}
	<-done
	for i, l := range seen {
		if l != Level(i) {
			t.Fatalf("events out of order: %v", seen)
		}
	}
}

func TestSubscribeAfterStop(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	g.Stop()
	cancel := g.Subscribe(func(Event) { t.Error("called after Stop") })
	cancel()
	cancel()
}

func TestIntervalShrinksWithHeadroom(t *testing.T) {
	cfg, _ := Config{}.withDefaults()
	s := &sampler{g: &Guard{cfg: cfg}}
	prev := s.nextInterval(0.3, -1)
	if prev != cfg.Interval {
		t.Fatalf("interval at low pressure = %v, want the base %v", prev, cfg.Interval)
	}
	for _, p := range []float64{0.4, 0.5, 0.6, 0.7} {
		iv := s.nextInterval(p, -1)
		if iv >= prev {
			t.Errorf("interval at %.2f = %v, not below %v", p, iv, prev)
		}
		prev = iv
	}
	if iv := s.nextInterval(0.76, -1); iv != cfg.MinInterval {
		t.Errorf("interval at 0.76 = %v, want MinInterval %v", iv, cfg.MinInterval)
	}
	if iv := s.nextInterval(0.2, time.Second); iv != 100*time.Millisecond {
		t.Errorf("interval with 1s to the limit = %v, want 100ms", iv)
	}
}

func BenchmarkLevel(b *testing.B) {
	g, err := Start(context.Background(), Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Stop()
	b.ReportAllocs()
	var l Level
	for b.Loop() {
		l = g.Level()
	}
	_ = l
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
