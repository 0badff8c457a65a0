package guard

import (
	"testing"
	"time"
)

// TestHistoryWrapsAndStaysBounded: a point a second for 25 minutes leaves
// the newest ten minutes, oldest first; readings less than a second after
// the last point are not kept.
func TestHistoryWrapsAndStaysBounded(t *testing.T) {
	g := quietGuard(t, Config{})
	var h history
	t0 := time.Unix(1_700_000_000, 0)
	const n = 1500
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		h.add(g, &Snapshot{Time: at, Usage: int64(i), Limit: 1 << 30, Level: LevelElevated}, at)
		// Within the second: ignored.
		h.add(g, &Snapshot{Time: at.Add(999 * time.Millisecond), Usage: -1}, at.Add(999*time.Millisecond))
	}
	got := h.points(nil)
	if len(got) != historyLen {
		t.Fatalf("%d points held, want %d", len(got), historyLen)
	}
	for i, p := range got {
		want := int64(n - historyLen + i)
		if p.usage != want || p.t != t0.Add(time.Duration(want)*time.Second).UnixNano() {
			t.Fatalf("point %d: usage %d at %d, want reading %d", i, p.usage, p.t, want)
		}
	}
	if got := h.points(make([]point, 0, 4)); len(got) != historyLen {
		t.Errorf("points appended to a short slice: %d", len(got))
	}
}

// TestHistoryShedRate: shed per second is the shed counters' growth over
// the time between two points.
func TestHistoryShedRate(t *testing.T) {
	g := quietGuard(t, Config{})
	var h history
	t0 := time.Unix(1_700_000_000, 0)
	g.shed[0].Add(100) // before the first point: not a rate
	h.add(g, &Snapshot{Time: t0}, t0)
	g.shed[0].Add(6)
	g.shed[1].Add(4)
	h.add(g, &Snapshot{Time: t0.Add(2 * time.Second)}, t0.Add(2*time.Second))
	h.add(g, &Snapshot{Time: t0.Add(3 * time.Second)}, t0.Add(3*time.Second))
	got := h.points(nil)
	if len(got) != 3 || got[0].shedRate != 0 || got[1].shedRate != 5 || got[2].shedRate != 0 {
		t.Errorf("shed rates %v, want 0, 5, 0", got)
	}
}
