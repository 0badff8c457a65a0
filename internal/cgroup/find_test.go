package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The trees under testdata hold cgroup files as the kernel prints them:
// proc/self/cgroup, proc/self/mountinfo and the cgroup hierarchy under
// sys/fs/cgroup, seen from a host, a Kubernetes pod or a Docker container.

const (
	fixPod = "sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f3e0d2c_4b1a_4c5e_9d2e_2a1f7c9b8e41.slice"
	fixCtr = fixPod + "/cri-containerd-8a4f0a7c1e2b9d3f5a6c7e8d9b0a1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c.scope"
	fixV1  = "sys/fs/cgroup/memory/kubepods/burstable/pod6f3e0d2c-4b1a-4c5e-9d2e-2a1f7c9b8e41"
	fixV1C = fixV1 + "/8a4f0a7c1e2b9d3f5a6c7e8d9b0a1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c"

	mib = 1 << 20
)

func TestFindAndLimitFixtures(t *testing.T) {
	tests := []struct {
		name    string
		version Version
		dir     string // of the process's cgroup, under the fixture
		mount   string
		want    Limit // Dir relative to the fixture
	}{
		{"v2-plain", 2, fixCtr, "sys/fs/cgroup",
			Limit{Bytes: 256 * mib, File: "memory.max", Dir: fixCtr}},
		{"v2-ancestor", 2, fixCtr, "sys/fs/cgroup",
			Limit{Bytes: 268435456, File: "memory.max", Dir: fixPod}},
		{"v2-high", 2, fixCtr, "sys/fs/cgroup",
			Limit{Bytes: 410 * mib, File: "memory.high", Dir: fixCtr}},
		{"v2-unlimited", 2, "sys/fs/cgroup/system.slice/app.service", "sys/fs/cgroup",
			Limit{}},
		{"v2-cgroupns", 2, "sys/fs/cgroup", "sys/fs/cgroup",
			Limit{Bytes: 128 * mib, File: "memory.max", Dir: "sys/fs/cgroup"}},
		{"hybrid-v1memory", 1, "sys/fs/cgroup/memory/system.slice/app.service", "sys/fs/cgroup/memory",
			Limit{Bytes: 512 * mib, File: "memory.limit_in_bytes", Dir: "sys/fs/cgroup/memory/system.slice/app.service"}},
		{"hybrid-v2memory", 2, "sys/fs/cgroup/unified/system.slice/app.service", "sys/fs/cgroup/unified",
			Limit{Bytes: 1 << 30, File: "memory.max", Dir: "sys/fs/cgroup/unified/system.slice/app.service"}},
		{"v1-docker", 1, "sys/fs/cgroup/memory", "sys/fs/cgroup/memory",
			Limit{Bytes: 128 * mib, File: "memory.limit_in_bytes", Dir: "sys/fs/cgroup/memory"}},
		{"v1-limit", 1, fixV1C, "sys/fs/cgroup/memory",
			Limit{Bytes: 200 * mib, File: "memory.limit_in_bytes", Dir: fixV1C}},
		{"v1-hierarchical", 1, fixV1C, "sys/fs/cgroup/memory",
			Limit{Bytes: 300 * mib, File: "hierarchical_memory_limit", Dir: fixV1}},
		{"v1-unlimited", 1, fixV1C, "sys/fs/cgroup/memory",
			Limit{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join("testdata", tt.name)
			g, err := Find(root)
			if err != nil {
				t.Fatalf("Find(%s): %v", root, err)
			}
			if g.Version != tt.version {
				t.Errorf("Version = %d, want %d", g.Version, tt.version)
			}
			if want := filepath.Join(root, tt.dir); g.Dir != want {
				t.Errorf("Dir = %s, want %s", g.Dir, want)
			}
			if want := filepath.Join(root, tt.mount); g.Mount != want {
				t.Errorf("Mount = %s, want %s", g.Mount, want)
			}
			got, err := g.Limit()
			if err != nil {
				t.Fatalf("Limit: %v", err)
			}
			want := tt.want
			if want.Dir != "" {
				want.Dir = filepath.Join(root, want.Dir)
			}
			if got != want {
				t.Errorf("Limit = %+v, want %+v", got, want)
			}
		})
	}
}

func TestFindNoMemoryController(t *testing.T) {
	for _, root := range []string{
		filepath.Join("testdata", "v2-nomemory"),    // memory not enabled for the cgroup
		filepath.Join("testdata", "does-not-exist"), // no /proc/self/cgroup: not Linux
	} {
		g, err := Find(root)
		if !errors.Is(err, ErrNoMemoryController) {
			t.Errorf("Find(%s) = %+v, %v; want ErrNoMemoryController", root, g, err)
		}
	}
}

// writeTree makes a fixture from path → content, under a temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	miV2 = "29 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
	miV1 = "34 27 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory\n"
)

func TestHybridV1LineWithoutV1MountFallsBackToV2(t *testing.T) {
	// A v1 memory line in /proc/self/cgroup but only cgroup2 mounted (a
	// container that mounts cgroup2 only): the v2 hierarchy is used.
	root := writeTree(t, map[string]string{
		"proc/self/cgroup":                     "5:memory:/app\n0::/app\n",
		"proc/self/mountinfo":                  miV2,
		"sys/fs/cgroup/app/cgroup.controllers": "cpu io memory pids\n",
		"sys/fs/cgroup/app/memory.max":         "104857600\n",
		"sys/fs/cgroup/app/memory.high":        "max\n",
		"sys/fs/cgroup/cgroup.controllers":     "cpuset cpu io memory hugetlb pids rdma misc\n",
	})
	g, err := Find(root)
	if err != nil {
		t.Fatal(err)
	}
	l, err := g.Limit()
	if err != nil || g.Version != 2 || l.Bytes != 100*mib || l.File != "memory.max" {
		t.Fatalf("got %+v %+v %v; want v2 100 MiB memory.max", g, l, err)
	}
}

// TestFindLongMountInfoLine: a mountinfo line longer than any line buffer,
// such as an overlay mount's with many lower layers, does not hide the
// memory cgroup on another line.
func TestFindLongMountInfoLine(t *testing.T) {
	overlay := "1200 1100 0:61 / / rw,relatime - overlay overlay rw,lowerdir=" +
		strings.Repeat("/var/lib/containerd/snapshots/123456/fs:", 2000) + "/x,upperdir=/u,workdir=/w\n"
	if len(overlay) <= 64<<10 {
		t.Fatalf("the overlay line is %d bytes, want more than 64 KiB", len(overlay))
	}
	root := writeTree(t, map[string]string{
		"proc/self/cgroup":                     "0::/app\n",
		"proc/self/mountinfo":                  overlay + miV2,
		"sys/fs/cgroup/app/cgroup.controllers": "memory\n",
		"sys/fs/cgroup/app/memory.max":         "104857600\n",
	})
	g, err := Find(root)
	if err != nil {
		t.Fatalf("Find with a %d-byte mountinfo line: %v", len(overlay), err)
	}
	if want := filepath.Join(root, "sys/fs/cgroup/app"); g.Version != 2 || g.Dir != want {
		t.Fatalf("Find = %+v, want v2 at %s", g, want)
	}
}

// TestParseMountInfoLongMalformedLine: a long line cut short is reported by
// its beginning, in an error of bounded length.
func TestParseMountInfoLongMalformedLine(t *testing.T) {
	line := "1200 1100 0:61 / / rw,relatime shared:1 " + strings.Repeat("master:1 ", 10000)
	_, err := parseMountInfo([]byte(miV2 + line))
	if err == nil || !strings.Contains(err.Error(), "1200 1100 0:61") || len(err.Error()) > 1024 {
		t.Fatalf("parseMountInfo of a %d-byte line without its separator: error %.200q (%d bytes), want one naming its beginning in at most 1 KiB", len(line), fmt.Sprint(err), len(fmt.Sprint(err)))
	}
}

func TestMountRootOutsideCgroupPath(t *testing.T) {
	// The v1 mount shows another container's cgroup: the process's path is
	// not below the mount root, so nothing is found.
	root := writeTree(t, map[string]string{
		"proc/self/cgroup":                           "9:memory:/docker/aaa\n",
		"proc/self/mountinfo":                        "621 616 0:35 /docker/bbb /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:17 - cgroup cgroup rw,memory\n",
		"sys/fs/cgroup/memory/memory.limit_in_bytes": "134217728\n",
	})
	if g, err := Find(root); !errors.Is(err, ErrNoMemoryController) {
		t.Fatalf("Find = %+v, %v; want ErrNoMemoryController", g, err)
	}
}

func TestCgroupPathEscapesMount(t *testing.T) {
	// "0::/../../x" is what a process outside the namespace root sees; the
	// path must stay under the mount point and never reach the fixture's
	// (or the host's) other directories.
	root := writeTree(t, map[string]string{
		"proc/self/cgroup":                 "0::/../../etc\n",
		"proc/self/mountinfo":              miV2,
		"sys/fs/cgroup/cgroup.controllers": "memory\n",
		"etc/cgroup.controllers":           "memory\n",
	})
	g, err := Find(root)
	if err == nil && !strings.HasPrefix(g.Dir, filepath.Join(root, "sys/fs/cgroup")) {
		t.Fatalf("Find = %+v: outside the mount", g)
	}
}

func TestMalformed(t *testing.T) {
	v2 := func(max string) map[string]string {
		return map[string]string{
			"proc/self/cgroup":                     "0::/app\n",
			"proc/self/mountinfo":                  miV2,
			"sys/fs/cgroup/app/cgroup.controllers": "memory\n",
			"sys/fs/cgroup/app/memory.max":         max,
		}
	}
	v1 := func(limit, stat string) map[string]string {
		return map[string]string{
			"proc/self/cgroup":                               "5:memory:/app\n",
			"proc/self/mountinfo":                            miV1,
			"sys/fs/cgroup/memory/app/memory.limit_in_bytes": limit,
			"sys/fs/cgroup/memory/app/memory.stat":           stat,
		}
	}
	tests := []struct {
		name    string
		files   map[string]string
		findErr bool   // the error comes from Find, else from Limit
		want    string // in the error
	}{
		{"v2 garbage memory.max", v2("12a4\n"), false, `"12a4"`},
		{"v2 negative memory.max", v2("-1\n"), false, `"-1"`},
		{"v2 empty memory.max", v2(""), false, `bad value ""`},
		{"v2 memory.max overflow", v2("99999999999999999999\n"), false, `"99999999999999999999"`},
		{"v1 garbage limit_in_bytes", v1("lots\n", "hierarchical_memory_limit 9223372036854771712\n"), false, `"lots"`},
		{"v1 garbage hierarchical", v1("9223372036854771712\n", "cache 0\nhierarchical_memory_limit 1e9\n"), false, `"1e9"`},
		{"mountinfo truncated after separator", map[string]string{
			"proc/self/cgroup":    "0::/app\n",
			"proc/self/mountinfo": "29 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2",
		}, true, "29 24 0:26"},
		{"mountinfo truncated before separator", map[string]string{
			"proc/self/cgroup":    "0::/app\n",
			"proc/self/mountinfo": miV1 + "29 24 0:26 / /sys/fs/cgroup rw,nosuid,nod",
		}, true, "29 24 0:26"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, tt.files)
			g, err := Find(root)
			if tt.findErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Find = %+v, %v; want an error naming %s", g, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Find: %v", err)
			}
			l, err := g.Limit()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Limit = %+v, %v; want an error naming %s", l, err, tt.want)
			}
		})
	}
}

func TestParseMountInfoEscapes(t *testing.T) {
	in := "40 30 0:37 /a\\040b /sys/fs/cgroup/with\\040space\\011tab\\134bs rw,relatime - cgroup2 cgroup2 rw\n"
	ms, err := parseMountInfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := mount{root: "/a b", point: "/sys/fs/cgroup/with space\ttab\\bs", fstype: "cgroup2", superOpts: "rw"}
	if len(ms) != 1 || ms[0] != want {
		t.Fatalf("parseMountInfo = %+v, want %+v", ms, want)
	}
}

// TestParseMountInfoUnescapedWhiteSpace: the kernel leaves white space
// other than space, tab and newline unescaped in paths; it is part of the
// path, not a separator. strings.Fields once split at it.
func TestParseMountInfoUnescapedWhiteSpace(t *testing.T) {
	in := "40 30 0:37 /a\fb /sys/fs/cgroup/x\u00a0y\rz rw,relatime - cgroup2 cgroup2 rw\n"
	ms, err := parseMountInfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := mount{root: "/a\fb", point: "/sys/fs/cgroup/x\u00a0y\rz", fstype: "cgroup2", superOpts: "rw"}
	if len(ms) != 1 || ms[0] != want {
		t.Fatalf("parseMountInfo = %+v, want %+v", ms, want)
	}
}

// TestParseMountInfoDashPath: a root or mount point of "-" is not the
// separator, which comes after the sixth field.
func TestParseMountInfoDashPath(t *testing.T) {
	in := "40 30 0:37 - /- rw,relatime shared:9 - cgroup2 cgroup2 rw\n"
	ms, err := parseMountInfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := mount{root: "-", point: "/-", fstype: "cgroup2", superOpts: "rw"}
	if len(ms) != 1 || ms[0] != want {
		t.Fatalf("parseMountInfo = %+v, want %+v", ms, want)
	}
}

func TestParseMountInfoRealFixtures(t *testing.T) {
	// Every fixture's mountinfo parses, with one entry per line.
	files, _ := filepath.Glob("testdata/*/proc/self/mountinfo")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := parseMountInfo(b)
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if n := strings.Count(string(b), "\n"); len(ms) != n {
			t.Errorf("%s: %d mounts, want %d", f, len(ms), n)
		}
	}
}

func FuzzParseMountInfo(f *testing.F) {
	for _, name := range fixtureFiles(f, "mountinfo") {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(miV1 + miV2))
	f.Add([]byte("1 2 3 4 5 - a b"))
	f.Add([]byte(" - \n - - -\n\\\\134\\04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := parseMountInfo(b)
		if err != nil {
			return
		}
		if lines := bytes.Count(b, []byte("\n")) + 1; len(ms) > lines {
			t.Fatalf("%d mounts from %d lines", len(ms), lines)
		}
		for _, m := range ms {
			if m.fstype == "" || m.point == "" {
				t.Fatalf("empty field in %+v from %q", m, b)
			}
			// Unescaping only shortens.
			if len(m.root)+len(m.point)+len(m.fstype)+len(m.superOpts) > len(b) {
				t.Fatalf("%+v is longer than its input %q", m, b)
			}
		}
	})
}

// mangle escapes a path as the kernel writes it in mountinfo: space, tab,
// newline and backslash as octal.
func mangle(p string) string {
	return strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace(p)
}

// FuzzMountInfoPaths: any root and mount point, escaped as the kernel
// escapes them, parse back unchanged.
func FuzzMountInfoPaths(f *testing.F) {
	f.Add("/", "/sys/fs/cgroup")
	f.Add("/docker/3f1e6f2c", "/sys/fs/cgroup/memory")
	f.Add("/a b", "/with space\ttab\\bs")
	f.Add(`/\040`, "/x\ny")
	f.Fuzz(func(t *testing.T, root, point string) {
		if root == "" || point == "" {
			return // the kernel writes at least "/"
		}
		line := "40 30 0:37 " + mangle(root) + " " + mangle(point) + " rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
		ms, err := parseMountInfo([]byte(line))
		if err != nil {
			t.Fatalf("parseMountInfo(%q): %v", line, err)
		}
		want := mount{root: root, point: point, fstype: "cgroup2", superOpts: "rw,nsdelegate"}
		if len(ms) != 1 || ms[0] != want {
			t.Fatalf("parseMountInfo(%q) = %+v, want %+v", line, ms, want)
		}
	})
}

func TestParseSelfCgroup(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     selfCgroup
	}{
		{"v2", readFixture(t, "v2-plain", "proc/self/cgroup"), selfCgroup{v2Path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f3e0d2c_4b1a_4c5e_9d2e_2a1f7c9b8e41.slice/cri-containerd-8a4f0a7c1e2b9d3f5a6c7e8d9b0a1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c.scope", hasV2: true}},
		{"v1", readFixture(t, "v1-docker", "proc/self/cgroup"), selfCgroup{
			v1Path: "/docker/3f1e6f2c9a8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e", hasV1: true,
			v2Path: "/system.slice/containerd.service", hasV2: true}},
		{"hybrid", readFixture(t, "hybrid-v1memory", "proc/self/cgroup"), selfCgroup{
			v1Path: "/system.slice/app.service", hasV1: true, v2Path: "/system.slice/app.service", hasV2: true}},
		{"memory among others", "4:cpu,memory,pids:/a\n", selfCgroup{v1Path: "/a", hasV1: true}},
		{"colons and spaces in the path", "0::/a:b c \n", selfCgroup{v2Path: "/a:b c ", hasV2: true}},
		{"not memory", "4:memoryx,name=memory:/a\n1:name=systemd:/b\n", selfCgroup{}},
		{"not v2: a controller on hierarchy 0", "0:memory:/a\n", selfCgroup{v1Path: "/a", hasV1: true}},
		{"garbage", "\n\nhello\n0:\n::\n", selfCgroup{}},
	} {
		if got := parseSelfCgroup([]byte(tt.in), "memory"); got != tt.want {
			t.Errorf("%s: parseSelfCgroup(%q) = %+v, want %+v", tt.name, tt.in, got, tt.want)
		}
	}
}

// FuzzParseSelfCgroup: /proc/self/cgroup of any content parses without a
// panic into paths taken from its lines, and any path, as the kernel
// writes it, parses back unchanged.
func FuzzParseSelfCgroup(f *testing.F) {
	for _, name := range fixtureFiles(f, "cgroup") {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, "/system.slice/app.service")
		}
	}
	f.Add([]byte("0::/a:b c \n"), "/a:b c ")
	f.Add([]byte("::\n0:\n:memory:\n"), "")
	f.Fuzz(func(t *testing.T, b []byte, path string) {
		c := parseSelfCgroup(b, "memory")
		if c.hasV2 && !bytes.Contains(b, []byte("0::"+c.v2Path)) {
			t.Fatalf("v2 path %q is not on a 0:: line of %q", c.v2Path, b)
		}
		if c.hasV1 && (!bytes.Contains(b, []byte("memory")) || !bytes.Contains(b, []byte(":"+c.v1Path))) {
			t.Fatalf("v1 path %q is not on a memory line of %q", c.v1Path, b)
		}
		if len(c.v1Path) > len(b) || len(c.v2Path) > len(b) {
			t.Fatalf("paths %q, %q longer than the input", c.v1Path, c.v2Path)
		}

		if strings.Contains(path, "\n") {
			return // the kernel's paths have none: cgroup names cannot
		}
		in := "12:pids:/other\n5:memory:" + path + "\n1:name=systemd:/other\n0::" + path + "\n"
		want := selfCgroup{v1Path: path, v2Path: path, hasV1: true, hasV2: true}
		if got := parseSelfCgroup([]byte(in), "memory"); got != want {
			t.Fatalf("parseSelfCgroup(%q) = %+v, want %+v", in, got, want)
		}
	})
}

// fixtureFiles lists the files called name in every fixture tree under
// testdata.
func fixtureFiles(t testing.TB, name string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "fuzz" && d.IsDir() {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == name {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readFixture(t *testing.T, fixture, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
