package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// payload returns n bytes that differ for each i.
func payload(i, n int) []byte {
	return bytes.Repeat([]byte{byte('a' + i%26)}, n)
}

func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}
}

// dirFiles returns the names of the files in dir but the lock file, and
// their total size.
func dirFiles(t testing.TB, dir string) (names []string, size int64) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.Name() == lockName {
			continue
		}
		info, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, de.Name())
		size += info.Size()
	}
	return names, size
}

// checkDir checks that dir holds exactly the profiles and sidecars of
// want, no temporary file, and that s accounts for their size.
func checkDir(t testing.TB, s *Store, dir string, want []Meta) {
	t.Helper()
	names, size := dirFiles(t, dir)
	var wantNames []string
	for _, m := range want {
		wantNames = append(wantNames, m.Name, metaName(m.Name))
	}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("files in dir = %q, want %q", names, wantNames)
	}
	if got := s.DiskBytes(); got != size {
		t.Errorf("DiskBytes() = %d, files take %d", got, size)
	}
}

func reasons(ms []Meta) []string {
	var rs []string
	for _, m := range ms {
		rs = append(rs, m.Reason)
	}
	return rs
}

func TestOpenOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		opts Options
		want string // in the error
	}{
		{Options{}, "Options.Dir is empty"},
		{Options{Dir: dir, MaxCount: -1}, "Options.MaxCount is -1"},
		{Options{Dir: dir, MaxBytes: -5}, "Options.MaxBytes is -5"},
		{Options{Dir: filepath.Join(dir, "file", "sub")}, "not a directory"},
	} {
		if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) error = %v, want one containing %q", tc.opts, err, tc.want)
		}
	}
}

func TestOpenCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := openStore(t, Options{Dir: dir})
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	if ms := s.List(); len(ms) != 0 {
		t.Errorf("List() = %v, want empty", ms)
	}
	if _, ok := s.Latest(); ok {
		t.Error("Latest() on an empty store reported a profile")
	}
}

func TestRetention(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxCount int
		maxBytes int64
		size     int // of each profile
		want     []string
	}{
		{"count", 3, 0, 100, []string{"write 7", "write 8", "write 9"}},
		// Each profile takes 1000 bytes plus a sidecar of about 200.
		{"bytes", 0, 3000, 1000, []string{"write 8", "write 9"}},
		{"both", 3, 5000, 1000, []string{"write 7", "write 8", "write 9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := newClock()
			opts := Options{Dir: dir, MaxCount: tc.maxCount, MaxBytes: tc.maxBytes, Now: clk.Now}
			s := openStore(t, opts)
			for i := range 10 {
				clk.Advance(DefaultMinInterval)
				if _, err := s.WriteFrom(Meta{Reason: fmt.Sprint("write ", i)}, writeBytes(payload(i, tc.size))); err != nil {
					t.Fatal(err)
				}
				if max := opts.MaxBytes; max > 0 && s.DiskBytes() > max {
					t.Fatalf("after write %d, DiskBytes() = %d > MaxBytes %d", i, s.DiskBytes(), max)
				}
			}
			list := s.List()
			if got := reasons(list); !slices.Equal(got, tc.want) {
				t.Fatalf("List() reasons = %q, want %q", got, tc.want)
			}
			checkDir(t, s, dir, list)
			st := s.Stats()
			if want := (Stats{Written: 10, Removed: int64(10 - len(tc.want))}); st != want {
				t.Errorf("Stats() = %+v, want %+v", st, want)
			}

			// After a restart, the same profiles with the same Meta.
			s.Close()
			s2 := openStore(t, opts)
			if got := s2.List(); !slices.Equal(got, list) {
				t.Errorf("after reopening, List() = %+v\nwant %+v", got, list)
			}
			if got := s2.DiskBytes(); got != s.DiskBytes() {
				t.Errorf("after reopening, DiskBytes() = %d, want %d", got, s.DiskBytes())
			}
			// And the next write continues the sequence.
			clk.Advance(DefaultMinInterval)
			m, err := s2.WriteFrom(Meta{Reason: "after restart"}, writeBytes(payload(0, tc.size)))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(m.Name, "-11.pb.gz") {
				t.Errorf("first name after reopening = %q, want sequence 11", m.Name)
			}
		})
	}
}

func TestWriteFillsMeta(t *testing.T) {
	clk := newClock()
	s := openStore(t, Options{Dir: t.TempDir(), Now: clk.Now})
	in := Meta{Name: "../ignored", Reason: "level High", Level: "High", Usage: 3, Limit: 4, Heap: 2, Size: 99, Force: true}
	m, err := s.WriteFrom(in, writeBytes([]byte("12345")))
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.Name = "heap-20250102T150405.000Z-1.pb.gz"
	want.Time = clk.Now()
	want.Size = 5
	want.Force = false
	if m != want {
		t.Errorf("WriteFrom returned %+v\nwant %+v", m, want)
	}
	if got, ok := s.Latest(); !ok || got != want {
		t.Errorf("Latest() = %+v, %v, want %+v", got, ok, want)
	}
	f, got, err := s.Open(m.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "12345" || got != want {
		t.Errorf("Open(%q) = %q, %+v; want %q, %+v", m.Name, b, got, "12345", want)
	}
}

func TestWriteTooLarge(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, MaxBytes: 500})
	_, err := s.WriteFrom(Meta{}, writeBytes(payload(0, 1000)))
	if err == nil || !strings.Contains(err.Error(), "more than MaxBytes 500") {
		t.Fatalf("writing 1000 bytes with MaxBytes 500: error = %v", err)
	}
	checkDir(t, s, dir, nil)
	if st := s.Stats(); st.Failed != 1 || st.Written != 0 {
		t.Errorf("Stats() = %+v, want 1 failed, 0 written", st)
	}
}

func TestWriteError(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, MinInterval: -1})
	kept, err := s.WriteFrom(Meta{Reason: "kept"}, writeBytes([]byte("ok")))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err = s.WriteFrom(Meta{}, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want it to wrap %v", err, boom)
	}
	checkDir(t, s, dir, []Meta{kept})
	if st := s.Stats(); st.Failed != 1 || st.Written != 1 {
		t.Errorf("Stats() = %+v, want 1 failed, 1 written", st)
	}
	if _, err := s.WriteFrom(Meta{}, nil); err == nil {
		t.Error("WriteFrom with a nil function succeeded")
	}
}

func TestMinInterval(t *testing.T) {
	for _, tc := range []struct {
		name        string
		minInterval time.Duration
		after       time.Duration // between the two writes
		force       bool
		failFirst   bool // the first write fails
		wantTooSoon bool
	}{
		{name: "same instant", after: 0, wantTooSoon: true},
		{name: "just inside", after: DefaultMinInterval - time.Nanosecond, wantTooSoon: true},
		{name: "at the default", after: DefaultMinInterval},
		{name: "custom", minInterval: time.Minute, after: 59 * time.Second, wantTooSoon: true},
		{name: "forced", after: time.Second, force: true},
		{name: "disabled", minInterval: -1, after: 0},
		{name: "clock went back", after: -time.Hour},
		{name: "after a failed write", after: time.Second, failFirst: true, wantTooSoon: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			s := openStore(t, Options{Dir: t.TempDir(), MinInterval: tc.minInterval, Now: clk.Now})
			first := writeBytes([]byte("first"))
			if tc.failFirst {
				first = func(io.Writer) error { return errors.New("boom") }
			}
			if _, err := s.WriteFrom(Meta{}, first); (err != nil) != tc.failFirst {
				t.Fatalf("first write: %v", err)
			}
			clk.Advance(tc.after)
			_, err := s.WriteFrom(Meta{Force: tc.force}, writeBytes([]byte("second")))
			if got := errors.Is(err, ErrTooSoon); got != tc.wantTooSoon {
				t.Fatalf("second write %v later: error = %v, want ErrTooSoon: %v", tc.after, err, tc.wantTooSoon)
			}
			wantN, wantTooSoon := 2, int64(0)
			if tc.failFirst {
				wantN--
			}
			if tc.wantTooSoon {
				wantN, wantTooSoon = wantN-1, 1
			}
			if n := len(s.List()); n != wantN {
				t.Errorf("%d profiles stored, want %d", n, wantN)
			}
			if got := s.Stats().TooSoon; got != wantTooSoon {
				t.Errorf("Stats().TooSoon = %d, want %d", got, wantTooSoon)
			}
		})
	}
}

func TestMinIntervalAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	s := openStore(t, Options{Dir: dir, Now: clk.Now})
	if _, err := s.WriteFrom(Meta{}, writeBytes([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	s.Close()
	s = openStore(t, Options{Dir: dir, Now: clk.Now})
	if _, err := s.WriteFrom(Meta{}, writeBytes([]byte("x"))); !errors.Is(err, ErrTooSoon) {
		t.Errorf("write 1s after the newest profile on disk: error = %v, want ErrTooSoon", err)
	}
}

// TestOpenRecovers plays the leftovers of a crash and of other programs.
func TestOpenRecovers(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "profiles")
	clk := newClock()
	s := openStore(t, Options{Dir: dir, Now: clk.Now})
	full, err := s.WriteFrom(Meta{Reason: "full"}, writeBytes([]byte("one")))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	bare, err := s.WriteFrom(Meta{Reason: "sidecar lost"}, writeBytes([]byte("two")))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A crash after the sidecar rename loses its metadata only...
	if err := os.Remove(filepath.Join(dir, metaName(bare.Name))); err != nil {
		t.Fatal(err)
	}
	// ...and one between the renames leaves a sidecar alone.
	orphan := metaName(profileName(KindHeap, clk.Now(), 99))
	mustWrite(orphan, "{}")
	mustWrite(tempPrefix+"123", "half a profile")
	mustWrite("notes.txt", "not ours")
	mustWrite(metaName(full.Name), "{corrupt") // overwrite
	mustWrite(filepath.Join("..", "secret"), "secret")
	if err := os.Symlink(filepath.Join(parent, "secret"), filepath.Join(dir, profileName(KindHeap, clk.Now(), 50))); err != nil {
		t.Fatal(err)
	}

	s.Close()
	s = openStore(t, Options{Dir: dir, Now: clk.Now})
	want := []Meta{
		{Name: full.Name, Time: full.Time, Size: 3},
		{Name: bare.Name, Time: bare.Time, Size: 3},
	}
	if got := s.List(); !slices.Equal(got, want) {
		t.Errorf("List() = %+v\nwant %+v", got, want)
	}
	names, _ := dirFiles(t, dir)
	for _, gone := range []string{orphan, tempPrefix + "123"} {
		if slices.Contains(names, gone) {
			t.Errorf("Open left %s in the directory", gone)
		}
	}
	for _, kept := range []string{"notes.txt", profileName(KindHeap, clk.Now(), 50)} {
		if !slices.Contains(names, kept) {
			t.Errorf("Open removed %s, which is not the store's", kept)
		}
	}
	if _, _, err := s.Open(profileName(KindHeap, clk.Now(), 50)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a symlink named like a profile: error = %v, want ErrNotFound", err)
	}
}

// TestOversizeFiles: the store does not keep a heap or goroutine profile
// larger than maxFileBytes, and Open does not index one, nor any file
// larger than MaxBytes, which it could not have written; traces are bound
// by MaxBytes only.
func TestOversizeFiles(t *testing.T) {
	defer func(old int64) { maxFileBytes = old }(maxFileBytes)
	maxFileBytes = 1 << 10
	dir := t.TempDir()
	opts := Options{Dir: dir, MinInterval: -1, MaxBytes: 8 << 10}
	s := openStore(t, opts)
	small, err := s.WriteFrom(Meta{}, writeBytes(payload(0, 1<<10)))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{KindHeap, KindGoroutine} {
		if _, err := s.WriteFrom(Meta{Kind: kind}, writeBytes(payload(1, 1<<10+1))); err == nil || !strings.Contains(err.Error(), "more than 1024") {
			t.Errorf("a %s profile of 1 KiB + 1 with a bound of 1 KiB: error %v, want one naming the bound", kind, err)
		}
	}
	trace, err := s.WriteFrom(Meta{Kind: KindTrace}, writeBytes(payload(2, 2<<10)))
	if err != nil {
		t.Fatalf("a trace of 2 KiB: %v", err)
	}
	checkDir(t, s, dir, []Meta{small, trace})

	s.Close()
	for name, size := range map[string]int{
		profileName(KindHeap, time.Now(), 100):      1<<10 + 1,
		profileName(KindGoroutine, time.Now(), 101): 1<<10 + 1,
		profileName(KindTrace, time.Now(), 102):     8<<10 + 1,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), payload(3, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = openStore(t, opts)
	var names []string
	for _, m := range s.List() {
		names = append(names, m.Name)
	}
	if want := []string{small.Name, trace.Name}; !slices.Equal(names, want) {
		t.Errorf("Open indexed %q, want only %q", names, want)
	}
}

// TestOnDemandWriteSparesKept: a write on demand makes room by deleting
// the oldest profiles not kept, and is refused with ErrFull, leaving the
// directory as it was, when only kept ones could make room; other writes
// delete the oldest, kept or not. Kept is not persisted.
func TestOnDemandWriteSparesKept(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, MinInterval: -1, MaxCount: 3, MaxBytes: 4000}
	s := openStore(t, opts)
	write := func(reason string, onDemand bool, size int) (Meta, error) {
		t.Helper()
		return s.WriteFrom(Meta{Reason: reason, OnDemand: onDemand}, writeBytes(payload(len(reason), size)))
	}
	for _, r := range []string{"a", "b", "c"} {
		if _, err := write(r, false, 100); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range s.List()[:2] {
		if err := s.Keep(m.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Keep("heap-20250102T150405.000Z-99.pb.gz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Keep of an unknown name: error %v, want ErrNotFound", err)
	}
	for _, step := range []struct {
		reason   string
		onDemand bool
		size     int
		full     bool
		want     string
	}{
		{"d", true, 100, false, "a b d"},
		{"e", true, 100, false, "a b e"},
		// a and b with their sidecars take about 600 bytes; 3400 more do
		// not fit even with e deleted.
		{"f", true, 3400, true, "a b e"},
		{"g", true, 2000, false, "a b g"},
		{"h", false, 100, false, "b g h"},
	} {
		before, _ := dirFiles(t, dir)
		_, err := write(step.reason, step.onDemand, step.size)
		if got := errors.Is(err, ErrFull); got != step.full {
			t.Fatalf("write %s: error %v, want ErrFull: %v", step.reason, err, step.full)
		}
		if got := strings.Join(reasons(s.List()), " "); got != step.want {
			t.Errorf("after write %s the store holds %q, want %q", step.reason, got, step.want)
		}
		if after, _ := dirFiles(t, dir); step.full && !slices.Equal(after, before) {
			t.Errorf("a refused write changed the directory from %q to %q", before, after)
		}
		checkDir(t, s, dir, s.List())
	}
	// With g and h kept too, every slot is kept.
	if err := s.Keep(s.List()[1].Name); err != nil {
		t.Fatal(err)
	}
	if err := s.Keep(s.List()[2].Name); err != nil {
		t.Fatal(err)
	}
	if _, err := write("i", true, 100); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "3 of MaxCount 3") {
		t.Errorf("a write on demand with every slot kept: error %v, want ErrFull counting the kept", err)
	}
	var kept []bool
	for _, m := range s.List() {
		kept = append(kept, m.Kept)
	}
	if want := []bool{true, true, true}; !slices.Equal(kept, want) {
		t.Errorf("Kept in the list: %v, want %v", kept, want)
	}
	s.Close()
	for _, m := range openStore(t, opts).List() {
		if m.Kept {
			t.Errorf("%s kept after a restart: the mark is not persisted", m.Name)
		}
	}
}

func TestStoreOpenUnknown(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir})
	// A file with a valid profile name that appeared after Open.
	unindexed := profileName(KindHeap, time.Now(), 1)
	if err := os.WriteFile(filepath.Join(dir, unindexed), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{unindexed, "", "..", "../" + unindexed, filepath.Join(dir, unindexed), "/etc/passwd", "a\x00b"} {
		f, _, err := s.Open(name)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%q) error = %v, want ErrNotFound", name, err)
		}
		if f != nil {
			f.Close()
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, MaxCount: 5})
	const writers, writes = 4, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				if _, err := s.WriteFrom(Meta{Force: true}, writeBytes(payload(w+i, 64))); err != nil {
					t.Error(err)
				}
			}
		})
		wg.Go(func() {
			for range writes {
				for _, m := range s.List() {
					f, got, err := s.Open(m.Name)
					if errors.Is(err, ErrNotFound) {
						continue // deleted by retention meanwhile
					}
					if err != nil {
						t.Error(err)
						continue
					}
					b, err := io.ReadAll(f)
					f.Close()
					if err != nil || int64(len(b)) != got.Size {
						t.Errorf("read %s: %d bytes, %v; want %d bytes", m.Name, len(b), err, got.Size)
					}
				}
				s.Latest()
				s.DiskBytes()
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.Written != writers*writes || st.Failed != 0 {
		t.Errorf("Stats() = %+v, want %d written", st, writers*writes)
	}
	checkDir(t, s, dir, s.List())
	if n := len(s.List()); n != 5 {
		t.Errorf("%d profiles kept, want 5", n)
	}
}

func TestParseName(t *testing.T) {
	tm := time.Date(2025, 1, 2, 15, 4, 5, 123e6, time.UTC)
	name := profileName(KindHeap, tm, 42)
	if name != "heap-20250102T150405.123Z-42.pb.gz" {
		t.Fatalf("profileName = %q", name)
	}
	if _, got, seq, ok := parseName(name, profileSuffix); !ok || !got.Equal(tm) || seq != 42 {
		t.Errorf("parseName(%q) = %v, %d, %v", name, got, seq, ok)
	}
	for _, bad := range []string{
		"", "heap-", "heap-.pb.gz", "heap-20250102T150405.123Z.pb.gz",
		"heap-20250102T150405.123Z-042.pb.gz", "heap-20250102T150405.123Z-+1.pb.gz",
		"heap-20250102T150405.123Z-1.pb", "heap-2025-1.pb.gz", "xheap-20250102T150405.123Z-1.pb.gz",
		"heap-20250102T150405.123Z-1.json", "heap-20250102T150405,123Z-1.pb.gz",
	} {
		if _, _, _, ok := parseName(bad, profileSuffix); ok {
			t.Errorf("parseName(%q) accepted it", bad)
		}
	}
}

// TestKinds: goroutine profiles and traces are stored, listed and served
// like heap profiles, named by kind; Latest is the newest heap profile.
func TestKinds(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, MinInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	heap, err := s.Write(Meta{Reason: "level critical"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.WriteFrom(Meta{Reason: "level critical", Kind: KindGoroutine}, func(w io.Writer) error {
		return pprof.Lookup("goroutine").WriteTo(w, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := s.WriteFrom(Meta{Reason: "level critical", Kind: KindTrace}, func(w io.Writer) error {
		_, err := w.Write([]byte("go 1.25 trace\x00\x00\x00"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.Name, "goroutine-") || !strings.HasSuffix(g.Name, ".pb.gz") || !strings.HasPrefix(tr.Name, "trace-") || !strings.HasSuffix(tr.Name, ".trace") {
		t.Errorf("names %q and %q, want goroutine-*.pb.gz and trace-*.trace", g.Name, tr.Name)
	}
	if m, ok := s.Latest(); !ok || m.Name != heap.Name {
		t.Errorf("Latest = %q, want the heap profile %q", m.Name, heap.Name)
	}
	if _, err := s.WriteFrom(Meta{Kind: "cpu"}, func(io.Writer) error { return nil }); err == nil || !strings.Contains(err.Error(), `"cpu"`) {
		t.Errorf("unknown kind: %v, want an error naming it", err)
	}
	// After a restart the kinds read back from the names.
	s.Close()
	s2 := openStore(t, Options{Dir: dir})
	got := map[string]string{}
	for _, m := range s2.List() {
		got[m.Name] = m.Kind
	}
	if len(got) != 3 || got[g.Name] != KindGoroutine || got[tr.Name] != KindTrace || got[heap.Name] != "" {
		t.Errorf("after a restart: %v", got)
	}
	f, _, err := s2.Open(tr.Name)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// BenchmarkWrite measures one heap profile write: pprof's encoding, two
// fsyncs of files and one of the directory, and retention.
func BenchmarkWrite(b *testing.B) {
	s := openStore(b, Options{Dir: b.TempDir(), MinInterval: -1})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Write(Meta{Reason: "benchmark"}); err != nil {
			b.Fatal(err)
		}
	}
}
