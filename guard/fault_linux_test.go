package guard

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard/internal/humanize"
	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/cgrouptest"
	"github.com/oomguard/oomguard/profile"
)

// TestCgroupVanishes removes the cgroup a running guard reads, for real:
// its files answer ENODEV from then on, and the limit's file is gone. The
// guard serves, falls back to the process's memory and the last limit,
// says so once, and counts every failed reading; when the process's cgroup
// is found again (here, another with another limit) the guard reads it.
// The limits are large, so that the level stays Normal whatever this test
// process holds when usage falls back to it.
func TestCgroupVanishes(t *testing.T) {
	limit := largeLimit(t)
	limit2 := limit * 3 / 4
	first := cgrouptest.New(t, limit)
	second := cgrouptest.New(t, limit2)
	var current atomic.Pointer[cgroup.Group]
	current.Store(&first.Group)
	find := func() (*cgroup.Group, error) {
		if g := current.Load(); g != nil {
			return g, nil
		}
		return nil, cgroup.ErrNoMemoryController
	}
	var logs syncBuffer
	g := startWith(t, Config{}, &logs, find)
	if s := g.Snapshot(); s.Limit != limit || s.UsageSource != UsageFromCgroup {
		t.Fatalf("at start: limit %d, usage from %s; want %d, the cgroup", s.Limit, s.UsageSource, limit)
	}

	current.Store(nil) // the process is in no memory cgroup we can find
	if err := first.Remove(); err != nil {
		t.Fatal(err)
	}
	s := waitFor(t, g, "usage from the process, the limit's failure said", func(s Snapshot) bool {
		return s.UsageSource != UsageFromCgroup && s.ReadErrors >= 10 && strings.Contains(logs.String(), "memory limit failed")
	})
	if s.Limit != limit || s.Level != LevelNormal {
		t.Errorf("with the cgroup gone: limit %d, level %v; want the last limit, %d, and normal", s.Limit, s.Level, limit)
	}
	serves(t, g, "cgroup gone")

	current.Store(&second.Group)
	s = waitFor(t, g, "the cgroup found again", func(s Snapshot) bool {
		return s.UsageSource == UsageFromCgroup && s.Limit == limit2
	})
	serves(t, g, "cgroup found again")
	out := logs.String()
	for _, want := range []string{
		`level=WARN msg="memory cgroup usage failed; using this process's resident memory until it works"`,
		`level=WARN msg="memory limit failed; keeping the last one, ` + humanize.Bytes(limit) + ` from cgroup"`,
		`msg="memory cgroup found again"`,
		`msg="memory cgroup usage works again"`,
		`msg="memory limit works again"`,
	} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("%d lines %s, want 1; the log:\n%s", n, want, out)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes at a fresh directory, unmounted
// when the test ends: a disk that really fills, and really goes read-only.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0700,size="+strconv.Itoa(size)); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// TestDumpDirFillsOrGoesReadOnly writes profiles under a running guard to a
// disk that fills, then goes read-only: each failure is counted, the first
// of each fault is an ERROR and its end an INFO, nothing is left half
// written, and the guard serves and writes again once the disk has room.
func TestDumpDirFillsOrGoesReadOnly(t *testing.T) {
	dir := mountTmpfs(t, 4<<20)
	var logs syncBuffer
	g := startWith(t, Config{Limit: 1 << 40, DumpDir: dir}, &logs, func() (*cgroup.Group, error) {
		return nil, cgroup.ErrNoMemoryController
	})
	d := g.rec
	// At least: a written profile asks for its pair at the next GC cycle,
	// which may come at any time.
	var base Snapshot
	want := func(errs, written int64, when string) {
		t.Helper()
		waitFor(t, g, when, func(s Snapshot) bool {
			return s.ProfileErrors >= base.ProfileErrors+errs && s.ProfilesWritten >= base.ProfilesWritten+written
		})
	}
	ask := func(n int) {
		base = g.Snapshot()
		for range n {
			snap := g.Snapshot()
			d.Request(reading(&snap), "test", true)
		}
	}
	// A remount fails with EBUSY while a file is open for writing, as when
	// a pair profile is on its way.
	remount := func(flags uintptr) {
		t.Helper()
		var err error
		for range 100 {
			if err = syscall.Mount("", dir, "", syscall.MS_REMOUNT|flags, ""); !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("remounting %s: %v", dir, err)
		}
	}

	// Fill the disk: a file as large as the tmpfs takes, short by the
	// write's error.
	filler := filepath.Join(dir, "filler")
	if f, err := os.Create(filler); err == nil {
		f.Write(make([]byte, 4<<20))
		f.Close()
	}
	ask(3)
	want(3, 0, "three failed writes on a full disk")
	serves(t, g, "DumpDir full")
	os.Remove(filler)
	ask(1)
	want(0, 1, "a write once the disk has room")

	remount(syscall.MS_RDONLY)
	ask(3)
	want(3, 0, "three failed writes on a read-only disk")
	serves(t, g, "DumpDir read-only")
	remount(0)
	ask(1)
	want(0, 1, "a write once the disk is writable")

	out := logs.String()
	if n := strings.Count(out, `level=ERROR msg="heap profile write failed; the `); n != 2 {
		t.Errorf("%d ERROR lines for two faults of three failures each, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, `msg="heap profile write works again"`); n != 2 {
		t.Errorf("%d lines saying the writes work again, want 2:\n%s", n, out)
	}
	// Nothing half written: once the guard has stopped (a pair profile
	// may be on its way), the directory holds whole profiles and the
	// state record, no temporary file.
	g.Stop()
	entries, _ := os.ReadDir(dir)
	st, err := profile.Open(profile.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, written := len(st.List()), g.Snapshot().ProfilesWritten; int64(got) != written || got < 2 {
		t.Errorf("%d profiles in the store, want the %d written, 2 or more", got, written)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
