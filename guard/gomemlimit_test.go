package guard

import (
	"bytes"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
)

// TestGoMemLimitLeavesRoomForTheTail: while single requests allocate a
// large share of the limit at once, GOMEMLIMIT drops to the room admission
// keeps for them below the Critical threshold (never below half the ratio's
// value), and comes back as the tail fades; each crossing is logged once.
func TestGoMemLimitLeavesRoomForTheTail(t *testing.T) {
	if _, ok := lookupEnv("GOMEMLIMIT"); ok {
		t.Skip("GOMEMLIMIT is set in the environment: the guard does not own it")
	}
	const mib = 1 << 20
	var logs bytes.Buffer
	g := quietGuard(t, Config{Limit: 256 * mib, MemoryLimitRatio: 0.9, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	full := int64(256 * mib * 9 / 10)
	steps := []struct {
		room, want int64
	}{
		{0, full},
		{2 * mib, full},                      // 0.95 × 256 − 2 = 241.2 MiB: above the ratio's 230.4
		{64 * mib, 243*mib + mib/5 - 64*mib}, // 0.95 × 256 − 64
		{62 * mib, 243*mib + mib/5 - 64*mib}, // up by 2 MiB: under 2% of the limit, held
		{48 * mib, 243*mib + mib/5 - 48*mib},
		{240 * mib, full / 2},
		{0, full},
	}
	for _, s := range steps {
		g.fitGoMemLimit(s.room)
		if got := debug.SetMemoryLimit(-1); got < s.want-mib/10 || got > s.want+mib/10 {
			t.Errorf("room %d MiB: GOMEMLIMIT %.1f MiB, want %.1f", s.room/mib, float64(got)/mib, float64(s.want)/mib)
		}
	}
	if n := strings.Count(logs.String(), "GOMEMLIMIT lowered"); n != 1 {
		t.Errorf("%d lines say GOMEMLIMIT was lowered, want 1:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "GOMEMLIMIT back to"); n != 1 {
		t.Errorf("%d lines say GOMEMLIMIT came back, want 1:\n%s", n, logs.String())
	}
}
