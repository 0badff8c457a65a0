package statuspage

import (
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
)

// TestHistoryWrapsAndStaysBounded: a point a second for 25 minutes leaves
// the newest ten minutes, oldest first; readings less than a second after
// the last point are not kept.
func TestHistoryWrapsAndStaysBounded(t *testing.T) {
	var h History
	t0 := time.Unix(1_700_000_000, 0)
	const n = 1500
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		h.Add(at, Point{T: at.UnixNano(), Usage: int64(i), Limit: 1 << 30, Level: level.Elevated}, 0)
		// Within the second: ignored.
		h.Add(at.Add(999*time.Millisecond), Point{T: at.Add(999 * time.Millisecond).UnixNano(), Usage: -1}, 0)
	}
	got := h.Points(nil)
	if len(got) != historyLen {
		t.Fatalf("%d points held, want %d", len(got), historyLen)
	}
	for i, p := range got {
		want := int64(n - historyLen + i)
		if p.Usage != want || p.T != t0.Add(time.Duration(want)*time.Second).UnixNano() {
			t.Fatalf("point %d: usage %d at %d, want reading %d", i, p.Usage, p.T, want)
		}
	}
	if got := h.Points(make([]Point, 0, 4)); len(got) != historyLen {
		t.Errorf("points appended to a short slice: %d", len(got))
	}
}

// TestHistoryShedRate: shed per second is the shed counters' growth over
// the time between two points.
func TestHistoryShedRate(t *testing.T) {
	var h History
	t0 := time.Unix(1_700_000_000, 0)
	shed := int64(100) // before the first point: not a rate
	h.Add(t0, Point{T: t0.UnixNano()}, shed)
	shed += 6 + 4
	h.Add(t0.Add(2*time.Second), Point{T: t0.Add(2 * time.Second).UnixNano()}, shed)
	h.Add(t0.Add(3*time.Second), Point{T: t0.Add(3 * time.Second).UnixNano()}, shed)
	got := h.Points(nil)
	if len(got) != 3 || got[0].shedRate != 0 || got[1].shedRate != 5 || got[2].shedRate != 0 {
		t.Errorf("shed rates %v, want 0, 5, 0", got)
	}
}
