package cgroup

import (
	"path/filepath"
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
