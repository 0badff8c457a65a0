package admission

import (
	"math"
	"testing"
	"time"
)

// TestCostThroughRampDown: work that allocates 1 MiB as it starts, at a
// steady rate; then a spell in which work ends faster than it starts, or
// only ends while something else allocates; then the steady rate again.
// The cost stays at 1 MiB: the ends allocated in earlier windows, and
// allocation with no work starting has no new work to be charged to.
// Counting ends as units, the first spell read as 0.75 MiB.
func TestCostThroughRampDown(t *testing.T) {
	const unit = 1 << 20
	var m costModel
	now := time.Unix(1e9, 0)
	const step = 2 * time.Millisecond
	n := 600.0
	feed := func(d time.Duration, starts, ends, other float64) {
		for end := now.Add(d); now.Before(end); now = now.Add(step) {
			n += starts - ends
			m.observeHeap(now, starts*unit+other, 0, starts, ends, int64(math.Max(1, n)))
		}
	}
	feed(2*time.Second, 2, 2, 0) // 1000 a second in, 1000 out
	if c := m.mean(int64(n), 0); math.Abs(c/unit-1) > 0.01 {
		t.Fatalf("steady cost %.3f MiB, want 1", c/unit)
	}
	for _, tt := range []struct {
		name                string
		starts, ends, other float64
	}{
		{"a tenth of the ends restart", 0.2, 2, 0},
		{"ends only, 100 MiB/s allocated elsewhere", 0, 2, 200 << 10},
	} {
		feed(250*time.Millisecond, tt.starts, tt.ends, tt.other)
		if c := m.mean(int64(n), 0); c < 0.97*unit || c > 1.03*unit {
			t.Errorf("%s: cost %.3f MiB, want 1", tt.name, c/unit)
		}
		feed(50*time.Millisecond, 2, 2, 0)
		if c := m.mean(int64(n), 0); c < 0.97*unit || c > 1.03*unit {
			t.Errorf("%s, then 50 ms steady: cost %.3f MiB, want 1", tt.name, c/unit)
		}
		feed(time.Second, 2, 2, 0)
		if c := m.mean(int64(n), 0); c < 0.97*unit || c > 1.03*unit {
			t.Errorf("%s, then steady again: cost %.3f MiB, want 1", tt.name, c/unit)
		}
	}
}
