package cgroup

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestReaderFixtures(t *testing.T) {
	tests := []struct {
		name       string
		want       Usage
		workingSet int64
		oomKills   int64
	}{
		// v2: memory.current, memory.stat inactive_file, memory.events oom_kill.
		{"v2-plain", Usage{Current: 80 * mib, InactiveFile: 16 * mib}, 64 * mib, 2},
		{"v2-cgroupns", Usage{Current: 40 * mib, InactiveFile: 4 * mib}, 36 * mib, 0},
		{"hybrid-v2memory", Usage{Current: 20 * mib, InactiveFile: 1 * mib}, 19 * mib, 0},
		// v1: memory.usage_in_bytes, total_inactive_file (not the local
		// inactive_file), memory.oom_control oom_kill.
		{"v1-limit", Usage{Current: 150 * mib, InactiveFile: 32 * mib}, 118 * mib, 3},
		{"v1-docker", Usage{Current: 50 * mib, InactiveFile: 4 * mib}, 46 * mib, 1},
		{"hybrid-v1memory", Usage{Current: 150 * mib, InactiveFile: 32 * mib}, 118 * mib, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Find(filepath.Join("testdata", tt.name))
			if err != nil {
				t.Fatal(err)
			}
			r, err := g.NewReader()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i := 0; i < 2; i++ { // a second read rereads in place
				u, err := r.Usage()
				if err != nil {
					t.Fatal(err)
				}
				if u != tt.want {
					t.Errorf("Usage = %+v, want %+v", u, tt.want)
				}
				if ws := u.WorkingSet(); ws != tt.workingSet {
					t.Errorf("WorkingSet = %d, want %d", ws, tt.workingSet)
				}
				n, ok := r.OOMKills()
				if !ok || n != tt.oomKills {
					t.Errorf("OOMKills = %d, %v; want %d, true", n, ok, tt.oomKills)
				}
			}
			if n, ok := g.ReadOOMKills(); !ok || n != tt.oomKills {
				t.Errorf("ReadOOMKills = %d, %v; want %d, true", n, ok, tt.oomKills)
			}
		})
	}
}

// TestReadOOMKillsBounded: a memory.events that is no cgroup file (here
// 2 MiB of lines before the count) reads as unknown, not as a read without
// bound.
func TestReadOOMKillsBounded(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("low 0\n"), 2*mib/6)
	if err := os.WriteFile(filepath.Join(dir, "memory.events"), append(big, "oom_kill 7\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &Group{Version: 2, Dir: dir}
	if n, ok := g.ReadOOMKills(); ok {
		t.Errorf("ReadOOMKills of a 2 MiB file = %d, true; want unknown", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\noom_kill 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, ok := g.ReadOOMKills(); !ok || n != 7 {
		t.Errorf("ReadOOMKills = %d, %v; want 7, true", n, ok)
	}
}

// TestReadPeak reads v2 memory.peak and v1 memory.max_usage_in_bytes,
// and a file that is not a number as unknown.
func TestReadPeak(t *testing.T) {
	for _, tt := range []struct {
		version Version
		file    string
		content string
		want    int64
		ok      bool
	}{
		{2, "memory.peak", "12345\n", 12345, true},
		{1, "memory.max_usage_in_bytes", "67108864\n", 64 * mib, true},
		{2, "memory.peak", "max\n", 0, false},
		{2, "memory.current", "1\n", 0, false}, // no memory.peak: a kernel before 5.19
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		g := &Group{Version: tt.version, Dir: dir}
		if got, ok := g.ReadPeak(); got != tt.want || ok != tt.ok {
			t.Errorf("v%d %s %q: ReadPeak = %d, %v; want %d, %v", tt.version, tt.file, tt.content, got, ok, tt.want, tt.ok)
		}
	}
}

func TestWorkingSetNeverNegative(t *testing.T) {
	for _, tt := range []struct {
		u    Usage
		want int64
	}{
		{Usage{Current: 100, InactiveFile: 30}, 70},
		{Usage{Current: 100, InactiveFile: 100}, 0},
		{Usage{Current: 10, InactiveFile: 30}, 0}, // stat and current read at different moments
		{Usage{}, 0},
	} {
		if got := tt.u.WorkingSet(); got != tt.want {
			t.Errorf("%+v.WorkingSet() = %d, want %d", tt.u, got, tt.want)
		}
	}
}

func TestReaderMalformed(t *testing.T) {
	stat := readFixture(t, "v2-plain", fixCtr+"/memory.stat")
	for _, tt := range []struct {
		name, current string
		ok            bool
	}{
		{"garbage", "lots\n", false},
		{"empty", "", false},
		{"negative", "-5\n", false},
		{"overflow", "99999999999999999999\n", false},
		{"no newline", "4096", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, map[string]string{
				"proc/self/cgroup":                     "0::/app\n",
				"proc/self/mountinfo":                  miV2,
				"sys/fs/cgroup/app/cgroup.controllers": "memory\n",
				"sys/fs/cgroup/app/memory.current":     tt.current,
				"sys/fs/cgroup/app/memory.stat":        stat,
			})
			g, err := Find(root)
			if err != nil {
				t.Fatal(err)
			}
			r, err := g.NewReader()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			u, err := r.Usage()
			if (err == nil) != tt.ok {
				t.Fatalf("Usage = %+v, %v; want ok=%v", u, err, tt.ok)
			}
			if _, ok := r.OOMKills(); ok {
				t.Error("OOMKills ok without memory.events")
			}
		})
	}
}

func TestNewReaderMissingFiles(t *testing.T) {
	g := &Group{Version: 2, Dir: t.TempDir(), Mount: t.TempDir()}
	if r, err := g.NewReader(); err == nil {
		r.Close()
		t.Fatal("NewReader on an empty directory: no error")
	}
}

func TestReaderUsageAllocs(t *testing.T) {
	for _, name := range []string{"v2-plain", "v1-limit"} {
		g, err := Find(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := g.NewReader()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if n := testing.AllocsPerRun(100, func() {
			if _, err := r.Usage(); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: Reader.Usage allocates %v times per call, want 0", name, n)
		}
		if n := testing.AllocsPerRun(100, func() { r.OOMKills() }); n != 0 {
			t.Errorf("%s: Reader.OOMKills allocates %v times per call, want 0", name, n)
		}
	}
}

func BenchmarkReaderUsage(b *testing.B) {
	g, err := Find(filepath.Join("testdata", "v2-plain"))
	if err != nil {
		b.Fatal(err)
	}
	r, err := g.NewReader()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Usage(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReaderOverflowingInactiveFile: an inactive_file that does not fit an
// int64 counts as 0. It once came back negative, and the working set,
// usage minus it, as exabytes.
func TestReaderOverflowingInactiveFile(t *testing.T) {
	for _, inactive := range []string{"9999999999999999999", "9223372036854775808", "-1", "lots"} {
		root := writeTree(t, map[string]string{
			"proc/self/cgroup":                     "0::/app\n",
			"proc/self/mountinfo":                  miV2,
			"sys/fs/cgroup/app/cgroup.controllers": "memory\n",
			"sys/fs/cgroup/app/memory.current":     "4096\n",
			"sys/fs/cgroup/app/memory.stat":        "anon 4096\ninactive_file " + inactive + "\n",
		})
		g, err := Find(root)
		if err != nil {
			t.Fatal(err)
		}
		r, err := g.NewReader()
		if err != nil {
			t.Fatal(err)
		}
		u, err := r.Usage()
		r.Close()
		if err != nil || u.InactiveFile != 0 || u.WorkingSet() != 4096 {
			t.Errorf("inactive_file %s: Usage = %+v (working set %d), %v; want 4096 and no inactive", inactive, u, u.WorkingSet(), err)
		}
	}
}

func TestReaderRefusesAHugeFile(t *testing.T) {
	root := writeTree(t, map[string]string{
		"proc/self/cgroup":                     "0::/app\n",
		"proc/self/mountinfo":                  miV2,
		"sys/fs/cgroup/app/cgroup.controllers": "memory\n",
		"sys/fs/cgroup/app/memory.current":     "4096\n",
		"sys/fs/cgroup/app/memory.stat":        strings.Repeat("x", 2*maxFileSize),
	})
	g, err := Find(root)
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if u, err := r.Usage(); err == nil || !strings.Contains(err.Error(), "memory.stat") {
		t.Fatalf("Usage of a 2 MiB memory.stat = %+v, %v; want an error naming the file", u, err)
	}
	if len(r.buf) > maxFileSize {
		t.Errorf("buffer grew to %d bytes, past %d", len(r.buf), maxFileSize)
	}
}

// FuzzStatValue: a flat-keyed file (memory.stat v1 and v2,
// memory.oom_control) of any content yields the value of the first
// "key value" line, without a panic, and the value parses as strconv would.
func FuzzStatValue(f *testing.F) {
	for _, file := range []string{"memory.stat", "memory.oom_control", "memory.events"} {
		for _, name := range fixtureFiles(f, file) {
			if b, err := os.ReadFile(name); err == nil {
				for _, key := range []string{"inactive_file", "total_inactive_file", "hierarchical_memory_limit", "oom_kill"} {
					f.Add(b, key)
				}
			}
		}
	}
	f.Add([]byte("inactive_file 1\ninactive_file 2\n"), "inactive_file")
	f.Add([]byte("inactive_file\ninactive_file  3\n"), "inactive_file")
	f.Add([]byte(" 5\n"), "")
	f.Fuzz(func(t *testing.T, b []byte, key string) {
		v, ok := value(b, []byte(key))
		// The reference: the first line that starts with key and a space.
		var want []byte
		found := false
		for _, line := range bytes.Split(b, []byte("\n")) {
			if rest, cut := bytes.CutPrefix(line, []byte(key+" ")); cut {
				want, found = rest, true
				break
			}
		}
		if ok != found || !bytes.Equal(v, want) {
			t.Fatalf("value(%q, %q) = %q, %v; want %q, %v", b, key, v, ok, want, found)
		}
		n, ok := field(b, []byte(key))
		if !found {
			if ok {
				t.Fatalf("field(%q, %q) = %d without the key", b, key, n)
			}
			return
		}
		w, err := strconv.ParseInt(string(want), 10, 64)
		digits := len(want) > 0 && len(want) <= 19 && strings.Trim(string(want), "0123456789") == ""
		if ok != (err == nil && digits) || ok && (n != w || n < 0) {
			t.Fatalf("field(%q, %q) = %d, %v; strconv says %d, %v", b, key, n, ok, w, err)
		}
	})
}

// FuzzParseUsage: memory.current and memory.usage_in_bytes of any content
// parse without a panic to the number they hold, and every byte count
// parses back.
func FuzzParseUsage(f *testing.F) {
	for _, file := range []string{"memory.current", "memory.usage_in_bytes"} {
		for _, name := range fixtureFiles(f, file) {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b, int64(len(b)))
			}
		}
	}
	for _, s := range []string{"", "\n", "-5\n", "+5\n", "99999999999999999999\n", "9223372036854775807\n", "9223372036854775808\n", "0x10\n", " 7 \n", "1 2\n"} {
		f.Add([]byte(s), int64(1<<62))
	}
	f.Fuzz(func(t *testing.T, b []byte, n int64) {
		v, ok := parseUsage(b)
		s := string(bytes.TrimSpace(b))
		w, err := strconv.ParseInt(s, 10, 64)
		digits := len(s) > 0 && len(s) <= 19 && strings.Trim(s, "0123456789") == ""
		if ok != (err == nil && digits) || ok && (v != w || v < 0) || !ok && v != 0 {
			t.Fatalf("parseUsage(%q) = %d, %v; strconv says %d, %v", b, v, ok, w, err)
		}
		if n >= 0 {
			in := strconv.FormatInt(n, 10) + "\n"
			if v, ok := parseUsage([]byte(in)); !ok || v != n {
				t.Fatalf("parseUsage(%q) = %d, %v; want %d", in, v, ok, n)
			}
		}
	})
}
