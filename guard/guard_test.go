package guard

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"time"

	"github.com/oomguard/oomguard/internal/admission"
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

// quietGuard starts a guard and stops its sampler goroutine, so that the
// test drives the admission state alone, through decide.
func quietGuard(t testing.TB, cfg Config) *Guard {
	t.Helper()
	if cfg.Limit == 0 {
		cfg.Limit = 1 << 40
	}
	if cfg.MemoryLimitRatio == 0 {
		cfg.MemoryLimitRatio = -1
	}
	g, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.gcWatch.stop()
	close(g.done)
	g.wg.Wait()
	g.done = make(chan struct{})
	t.Cleanup(func() { g.Stop() })
	// Forget the first sample's decision: it saw the real process.
	g.decide(admission.Decision{Limit: math.MaxInt32, SheddableLimit: math.MaxInt32, Room: math.MaxInt64 / 2, SheddableRoom: math.MaxInt64 / 2}, LevelNormal, time.Now())
	return g
}
