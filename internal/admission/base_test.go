package admission

import (
	"testing"
	"time"
)

// TestBaseNotBelowZero: when the last GC cycle marked less than the work in
// flight times its cost (work admitted between the mark and the reading
// had not allocated yet), the model fits the live heap with a negative
// base. The bound must not take that as room: the work in flight at the
// bound, once it has allocated, still fits the target.
func TestBaseNotBelowZero(t *testing.T) {
	p := New(Config{})
	now := time.Unix(1e9, 0)
	const n, unseen = 200, 20
	var d Decision
	for i := range 5000 { // 10 s at 2 ms: 10 units start and 10 end each step
		now = now.Add(2 * time.Millisecond)
		k := uint64(10 * i)
		d = p.OnSample(Reading{
			Now: now, LimitBytes: 256 * mib, GoMemLimit: 230 * mib, Usage: 100 * mib, Fresh: true,
			HeapLive: (n - unseen) * mib, GCCycles: uint64(i / 10),
			Alloc:    k * mib, // 1 MiB per unit
			Admitted: k + n, Done: k,
		})
	}
	if d.Cost < mib {
		t.Fatalf("cost %d, want the 1 MiB allocated per unit", d.Cost)
	}
	if d.Limit*d.Cost > d.Target {
		t.Errorf("limit %d units of %d KiB: %d MiB, past the target %d MiB", d.Limit, d.Cost>>10, d.Limit*d.Cost/mib, d.Target/mib)
	}
}
