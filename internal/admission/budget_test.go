package admission

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestCacheIsNotShed: a large, stable live set with churn that holds
// little is not shed for memory the churn does not hold, though the cache,
// the runtime and the garbage between cycles hold Go's memory past
// GOMEMLIMIT (0.9 of the limit): a GC that keeps up holds it there by
// itself, however busy it is, and so does a GC pinned at GOMEMLIMIT (its
// goal at the live heap) while the work keeps its pace. While the GC is
// behind (its CPU limiter engaged), the work must fit under GOMEMLIMIT
// too, and what does not is shed. At 0.88 the cache and the runtime leave
// little room below Critical: the margin's floor must not take all of it.
func TestCacheIsNotShed(t *testing.T) {
	for _, tt := range []struct {
		frac             float64
		runtime          int64
		busy, behind     bool
		pinned           bool // want the goal pinned most of the time
		minShed, maxShed float64
	}{
		{0.78, 8 * mib, false, false, false, 0, 0.01},
		{0.84, 8 * mib, false, false, false, 0, 0.01},
		{0.84, 8 * mib, true, false, false, 0, 0.01},
		{0.84, 12 * mib, false, false, true, 0, 0.01},
		{0.84, 12 * mib, true, false, true, 0, 0.01},
		{0.84, 8 * mib, true, true, false, 0.01, 1},
		{0.88, 8 * mib, false, false, true, 0, 0.01},
		{0.88, 8 * mib, true, false, true, 0, 0.01},
	} {
		s := newSim(256 * mib)
		s.base = int64(tt.frac * 256 * mib)
		// The runtime's own memory, as measured beside a real cache: with
		// the garbage between cycles it takes Go's memory past the line
		// halfway from GOMEMLIMIT to Critical, which is no warning while
		// the GC keeps up. With 12 MiB, GOMEMLIMIT leaves the heap less
		// than the cache and the churn: the goal sits at the live heap.
		s.runtime = tt.runtime
		s.rate = 3000
		s.hold = 5 * time.Millisecond
		s.gcBusy, s.gcBehind = tt.busy, tt.behind
		s.size = func(*rand.Rand) (int64, int64) { return 256 << 10, 0 }
		s.run(10 * time.Second)
		sh := 1 - s.servedShare()
		pinned := s.pinnedFor.Seconds() / 10
		t.Logf("cache at %.2f of the limit, runtime %d MiB, GC busy %v, behind %v: goal pinned %.0f%% of the time, %.1f%% of the churn shed",
			tt.frac, tt.runtime/mib, tt.busy, tt.behind, 100*pinned, 100*sh)
		if tt.pinned != (pinned > 0.5) {
			t.Errorf("goal pinned %.0f%% of the time, want pinned %v: the case tests something else", 100*pinned, tt.pinned)
		}
		if sh < tt.minShed || sh > tt.maxShed {
			t.Errorf("cache at %.2f of the limit, GC busy %v, behind %v: %.1f%% of the churn shed, want %.0f%% to %.0f%% (cost %d KiB, base %d MiB, target %d MiB, limit %d)",
				tt.frac, tt.busy, tt.behind, 100*sh, 100*tt.minShed, 100*tt.maxShed, s.dec.Cost>>10, s.dec.Base/mib, s.dec.Target/mib, s.dec.Limit)
		}
	}
}
