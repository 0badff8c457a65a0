package admission

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestDeathSpiral: with the GC thrashing, work that slows down has its
// window cut; work that keeps its pace does not, and neither does a slow
// down without GC trouble.
func TestDeathSpiral(t *testing.T) {
	run := func(thrash bool, slowdown float64) int64 {
		p := New(Config{})
		now := time.Unix(1e9, 0)
		var admitted, done uint64
		var acc float64
		const n = 200
		var d Decision
		for i := 0; i < 3000; i++ { // 6 s at 2 ms
			now = now.Add(2 * time.Millisecond)
			// n in flight, each taking 0.2 s: 1000 done per second; after
			// 3 s, slowdown times as long.
			rate := 1000.0
			if i >= 1500 {
				rate /= slowdown
			}
			acc += rate * 0.002
			done = uint64(acc)
			admitted = done + n
			d = p.OnSample(Reading{Now: now, LimitBytes: 1 << 30, Usage: 1 << 28, Fresh: true,
				Admitted: admitted, Done: done, GCThrashing: thrash && i >= 1500})
		}
		return d.Window
	}
	calm := run(false, 1)
	if w := run(true, 1); w < calm {
		t.Errorf("window %d with the GC thrashing but the work at its pace, want %d as without", w, calm)
	}
	if w := run(false, 4); w < calm {
		t.Errorf("window %d with the work slower but no GC trouble, want %d", w, calm)
	}
	if w := run(true, 4); w >= 200 {
		t.Errorf("window %d in a death spiral with 200 in flight, want it cut", w)
	}
}

// TestPinnedSpiral: a cache of 200 MiB leaves the heap about 40 requests
// of room under GOMEMLIMIT, and 3000 requests a second hold 256 KiB for
// 5 ms each, 15 at a time. A stall, the work 4 times slower for 100 ms,
// piles up work past that room: the heap goal pins at the live heap, the
// GC runs back to back, and the work goes 4 times slower, which keeps the
// heap past the room. The policy that sees the goal pinned and the work
// slowing cuts the window until the work flows again; the one that does
// not see it stays in the spiral.
func TestPinnedSpiral(t *testing.T) {
	run := func(hide bool) (served, pinned, wait float64) {
		s := newSim(256 * mib)
		s.base = 200 * mib
		s.runtime = 20 * mib
		s.rate = 3000
		s.hold = 5 * time.Millisecond
		s.pinnedSlow = 4
		s.hidePinned = hide
		s.size = func(*rand.Rand) (int64, int64) { return 256 << 10, 0 }
		s.run(3 * time.Second)
		s.slowUntil = s.now.Add(100 * time.Millisecond)
		s.reset()
		s.run(5 * time.Second)
		return s.servedShare(), s.pinnedFor.Seconds() / 5, s.inFlightS / float64(s.served)
	}
	served, pinned, wait := run(true)
	t.Logf("goal pinned not reported: %.1f%% served, goal pinned %.0f%% of the time, %.1f ms in flight on average", 100*served, 100*pinned, 1000*wait)
	if pinned < 0.8 {
		t.Fatalf("without the policy's cut the goal was pinned %.0f%% of the time, want a spiral: the test tests nothing", 100*pinned)
	}
	served, pinned, wait = run(false)
	t.Logf("goal pinned reported: %.1f%% served, goal pinned %.0f%% of the time, %.1f ms in flight on average", 100*served, 100*pinned, 1000*wait)
	if served < 0.97 || pinned > 0.2 || wait > 7.5e-3 {
		t.Errorf("%.1f%% served, goal pinned %.0f%% of the time, %.1f ms in flight; want at least 97%%, at most 20%%, at most 7.5 ms (1.5 × the work's 5 ms)",
			100*served, 100*pinned, 1000*wait)
	}
}
