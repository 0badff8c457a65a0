package guard

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/oomguard/oomguard/guard/internal/humanize"
	"github.com/oomguard/oomguard/internal/cgroup"
)

// largeLimit is a limit far above what this test process holds (under
// -race -count=20, 200 MiB and more), and below the machine's memory, which
// would bind instead (a test VM has 2 GiB): 4 GiB, or half the machine's,
// in whole MiB.
func largeLimit(t *testing.T) int64 {
	t.Helper()
	m, err := memlimit.FromSystem()
	if err != nil {
		t.Fatal(err)
	}
	return min(4<<30, int64(m/2)) &^ (1<<20 - 1)
}

// fakeGroup is a directory laid out as a v2 memory cgroup, whose files a
// test rewrites in place under a running guard: the kernel cannot be made
// to answer garbage, and this is the guard's view of a kernel that does.
type fakeGroup struct {
	t   *testing.T
	dir string
}

func newFakeGroup(t *testing.T, limit, usage string) *fakeGroup {
	f := &fakeGroup{t: t, dir: t.TempDir()}
	f.write("memory.max", limit)
	f.write("memory.current", usage)
	f.write("memory.stat", "anon 0\nfile 0\ninactive_file 0\n")
	f.write("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
	return f
}

// write replaces the file's contents in place: the guard keeps its control
// files open, as it does a cgroup's.
func (f *fakeGroup) write(name, value string) {
	f.t.Helper()
	file, err := os.OpenFile(filepath.Join(f.dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err == nil {
		_, err = file.WriteString(value + "\n")
		err = errors.Join(err, file.Close())
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeGroup) group() *cgroup.Group {
	return &cgroup.Group{Version: 2, Dir: f.dir, Mount: f.dir}
}

// startWith starts a guard that finds its cgroup with find and logs into
// logs; the test stops it.
func startWith(t *testing.T, cfg Config, logs *syncBuffer, find func() (*cgroup.Group, error)) *Guard {
	t.Helper()
	if cfg.MemoryLimitRatio == 0 {
		cfg.MemoryLimitRatio = -1
	}
	if cfg.Interval == 0 {
		cfg.Interval, cfg.MinInterval = 20*time.Millisecond, 2*time.Millisecond
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	g, err := start(context.Background(), cfg, find)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop() })
	return g
}

// waitFor polls the guard's Snapshot until ok holds, for up to 10s: the
// sampler reads every 20ms, and a busy machine may delay it a little.
func waitFor(t *testing.T, g *Guard, what string, ok func(Snapshot) bool) Snapshot {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := g.Snapshot()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s; last snapshot: limit %d (%s), usage %d (%s), %d read errors",
				what, s.Limit, s.LimitSource, s.Usage, s.UsageSource, s.ReadErrors)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serves checks that the guard's middleware still admits a request.
func serves(t *testing.T, g *Guard, when string) {
	t.Helper()
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("%s: a request got %d, want 200", when, rec.Code)
	}
}

// TestCgroupFilesAnswerGarbage: usage and limit files that answer garbage,
// or a value past belief, under a running guard. Usage falls back to the
// process's resident set and the limit keeps its last value; each fault is
// counted at every reading and said once when it starts and once when it
// ends; the guard serves throughout, and the cgroup's figures come back
// with the files.
//
// The limit is large, so that the level stays Normal whatever this test
// process holds when usage falls back to it (under -count=20 and the race
// detector, 200 MiB and more).
func TestCgroupFilesAnswerGarbage(t *testing.T) {
	limit := largeLimit(t)
	usage := limit / 4
	f := newFakeGroup(t, strconv.FormatInt(limit, 10), strconv.FormatInt(usage, 10))
	var logs syncBuffer
	g := startWith(t, Config{}, &logs, func() (*cgroup.Group, error) { return f.group(), nil })
	s := g.Snapshot()
	if s.Limit != limit || s.LimitSource != LimitFromCgroup || s.Usage < usage || s.UsageSource != UsageFromCgroup {
		t.Fatalf("at start: limit %d (%s), usage %d (%s); want %d from the cgroup, %d from the cgroup",
			s.Limit, s.LimitSource, s.Usage, s.UsageSource, limit, usage)
	}

	f.write("memory.current", "garbage")
	s = waitFor(t, g, "usage from the process after garbage", func(s Snapshot) bool {
		return s.UsageSource != UsageFromCgroup && s.ReadErrors >= 5
	})
	serves(t, g, "usage file answering garbage")
	f.write("memory.current", "9223372036854775807") // more than any machine
	errs := s.ReadErrors
	waitFor(t, g, "a huge usage counted as a failure", func(s Snapshot) bool {
		return s.UsageSource != UsageFromCgroup && s.ReadErrors >= errs+5 && s.Level == LevelNormal
	})
	f.write("memory.current", strconv.FormatInt(usage+usage/4, 10))
	s = waitFor(t, g, "usage from the cgroup again", func(s Snapshot) bool { return s.UsageSource == UsageFromCgroup })
	if s.Usage < usage+usage/4 {
		t.Errorf("usage %d after recovery, want the file's %d", s.Usage, usage+usage/4)
	}

	f.write("memory.max", "garbage")
	errs = g.Snapshot().ReadErrors
	s = waitFor(t, g, "the limit failing", func(s Snapshot) bool { return s.ReadErrors >= errs+3 })
	if s.Limit != limit || s.LimitSource != LimitFromCgroup {
		t.Errorf("limit %d (%s) while its file answers garbage, want the last one, %d from the cgroup", s.Limit, s.LimitSource, limit)
	}
	serves(t, g, "limit file answering garbage")
	f.write("memory.max", "1152921504606846976") // 1 EiB: the machine binds
	waitFor(t, g, "a limit above the machine's memory taken as the machine's", func(s Snapshot) bool { return s.LimitSource == LimitFromMachine })
	limit2 := limit * 3 / 4
	f.write("memory.max", strconv.FormatInt(limit2, 10))
	waitFor(t, g, "the new limit", func(s Snapshot) bool { return s.Limit == limit2 && s.LimitSource == LimitFromCgroup })

	out := logs.String()
	for _, want := range []struct {
		line string
		n    int
	}{
		{`level=WARN msg="memory cgroup usage failed; using this process's resident memory until it works"`, 1},
		{`msg="memory cgroup usage works again"`, 1},
		{`level=WARN msg="memory limit failed; keeping the last one, ` + humanize.Bytes(limit) + ` from cgroup"`, 1},
		{`msg="memory limit works again"`, 1},
	} {
		if n := strings.Count(out, want.line); n != want.n {
			t.Errorf("%d lines %s, want %d; the log:\n%s", n, want.line, want.n, out)
		}
	}
}
