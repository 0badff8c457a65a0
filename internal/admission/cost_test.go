package admission

import (
	"testing"
	"time"
)

// TestTailSeesTheLargest: the runtime counts large allocations and their
// bytes, not their sizes. One 24 MiB request among ten of 1 MiB in the same
// interval is a tail of 24 MiB, not their mean; requests of one size are a
// tail of that size, however many share an interval.
func TestTailSeesTheLargest(t *testing.T) {
	const mib = 1 << 20
	t0 := time.Unix(1_700_000_000, 0)
	for _, c := range []struct {
		name       string
		count      float64 // per interval, after a few alone
		bytes      float64
		minT, maxT float64
	}{
		{"one large among ten small", 11, 34 * mib, 23 * mib, 24 * mib},
		{"all of one size", 8, 8 * mib, 1 * mib, 1.01 * mib},
	} {
		var m costModel
		now := t0
		for range 5 { // alone: exact sizes
			now = now.Add(2 * time.Millisecond)
			m.observeLarge(now, 1, mib)
		}
		for range 50 {
			now = now.Add(2 * time.Millisecond)
			m.observeLarge(now, c.count, c.bytes)
		}
		if m.tail < c.minT || m.tail > c.maxT {
			t.Errorf("%s: tail %.1f MiB, want %.1f to %.1f", c.name, m.tail/mib, c.minT/mib, c.maxT/mib)
		}
	}
}
