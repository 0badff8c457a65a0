package fault

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// TestFaultSaysStartAndEndOnce: a hundred failures are one line when they
// start and one when they end, with the count.
func TestFaultSaysStartAndEndOnce(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	f := Fault{What: "memory cgroup usage", Level: slog.LevelWarn}
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 100 {
		f.Fail(log, t0.Add(time.Duration(i)*time.Millisecond), os.ErrNotExist, "using process memory")
	}
	f.OK(log, t0.Add(time.Second))
	f.OK(log, t0.Add(2*time.Second))
	f.Fail(log, t0.Add(3*time.Second), os.ErrNotExist, "using process memory")
	out := logs.String()
	if n := strings.Count(out, "level=WARN msg=\"memory cgroup usage failed; using process memory\""); n != 2 {
		t.Errorf("%d start lines, want 2 (one per fault):\n%s", n, out)
	}
	if n := strings.Count(out, "works again"); n != 1 || !strings.Contains(out, "failures=100") {
		t.Errorf("%d end lines, want 1 with failures=100:\n%s", n, out)
	}
}
