package cgroup

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseV2Value: memory.max and memory.high of any content parse
// without a panic to "max" or the number they hold, and every byte count
// the kernel can write parses back.
func FuzzParseV2Value(f *testing.F) {
	for _, name := range append(fixtureFiles(f, "memory.max"), fixtureFiles(f, "memory.high")...) {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, int64(len(b)))
		}
	}
	for _, s := range []string{"max\n", "0\n", "9223372036854775807\n", "9223372036854775808\n", "-1\n", "+5\n", " 42 \n", "", "maxx"} {
		f.Add([]byte(s), int64(4096))
	}
	f.Fuzz(func(t *testing.T, b []byte, n int64) {
		v, limited, err := parseV2Value(b)
		s := string(bytes.TrimSpace(b))
		switch {
		case err != nil:
			if v != 0 || limited || strings.Contains(err.Error(), "\n") {
				t.Fatalf("parseV2Value(%q) = %d, %v, %q", b, v, limited, err)
			}
		case !limited:
			if s != "max" || v != 0 {
				t.Fatalf("parseV2Value(%q) = %d, unlimited; only \"max\" is", b, v)
			}
		default:
			if w, err := strconv.ParseInt(s, 10, 64); err != nil || w != v || v < 0 || s[0] == '+' {
				t.Fatalf("parseV2Value(%q) = %d; strconv says %d, %v", b, v, w, err)
			}
		}
		if n >= 0 {
			in := strconv.FormatInt(n, 10) + "\n"
			if v, limited, err := parseV2Value([]byte(in)); err != nil || !limited || v != n {
				t.Fatalf("parseV2Value(%q) = %d, %v, %v; want %d", in, v, limited, err, n)
			}
		}
	})
}

// FuzzParseV1Value: memory.limit_in_bytes and hierarchical_memory_limit of
// any content parse without a panic; a byte count parses back, and the
// kernel's "unlimited" (near math.MaxInt64, whatever the page size) and
// anything above it is no limit.
func FuzzParseV1Value(f *testing.F) {
	for _, name := range fixtureFiles(f, "memory.limit_in_bytes") {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(string(b), uint64(len(b)))
		}
	}
	for _, s := range []string{"9223372036854771712\n", "9223372036854710272\n", "18446744073709551615\n", "18446744073709551616\n", "0\n", "-1\n", " 134217728\n", "1e9"} {
		f.Add(s, uint64(math.MaxInt64))
	}
	f.Fuzz(func(t *testing.T, s string, n uint64) {
		v, err := parseV1Value(s)
		if err != nil {
			if v != 0 || strings.Contains(err.Error(), "\n") {
				t.Fatalf("parseV1Value(%q) = %d, %q", s, v, err)
			}
		} else {
			w, perr := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			switch {
			case perr != nil:
				t.Fatalf("parseV1Value(%q) = %d; strconv fails: %v", s, v, perr)
			case v < 0, v > 0 && uint64(v) != w, v == 0 && w != 0 && w < math.MaxInt64-(1<<16):
				t.Fatalf("parseV1Value(%q) = %d; strconv says %d", s, v, w)
			}
		}
		in := strconv.FormatUint(n, 10) + "\n"
		want := int64(0)
		if n < math.MaxInt64-(1<<16) {
			want = int64(n)
		}
		if v, err := parseV1Value(in); err != nil || v != want {
			t.Fatalf("parseV1Value(%q) = %d, %v; want %d", in, v, err, want)
		}
	})
}

// TestLimitOfAGoneGroup: a group whose directory was removed has an unknown
// limit, an error, and not no limit, on both versions.
func TestLimitOfAGoneGroup(t *testing.T) {
	for _, v := range []Version{1, 2} {
		mount := t.TempDir()
		g := Group{Version: v, Dir: mount + "/gone", Mount: mount}
		if l, err := g.Limit(); err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("v%d: Limit of a removed group = %+v, %v; want an error wrapping ErrNotExist", v, l, err)
		}
	}
}

func TestLimitV2HighAndMaxAcrossLevels(t *testing.T) {
	tree := func(files map[string]string) string {
		base := map[string]string{
			"proc/self/cgroup":                         "0::/pod/ctr\n",
			"proc/self/mountinfo":                      miV2,
			"sys/fs/cgroup/pod/ctr/cgroup.controllers": "cpu io memory pids\n",
		}
		for k, v := range files {
			base[k] = v
		}
		return writeTree(t, base)
	}
	tests := []struct {
		name  string
		files map[string]string
		want  Limit // Dir relative to sys/fs/cgroup
	}{
		{"equal high and max: max wins", map[string]string{
			"sys/fs/cgroup/pod/ctr/memory.max":  "268435456\n",
			"sys/fs/cgroup/pod/ctr/memory.high": "268435456\n",
		}, Limit{Bytes: 256 * mib, File: "memory.max", Dir: "pod/ctr"}},
		{"high on the ancestor", map[string]string{
			"sys/fs/cgroup/pod/ctr/memory.max":  "536870912\n",
			"sys/fs/cgroup/pod/ctr/memory.high": "max\n",
			"sys/fs/cgroup/pod/memory.max":      "max\n",
			"sys/fs/cgroup/pod/memory.high":     "402653184\n",
		}, Limit{Bytes: 384 * mib, File: "memory.high", Dir: "pod"}},
		{"own max tighter than the ancestor's", map[string]string{
			"sys/fs/cgroup/pod/ctr/memory.max": "104857600\n",
			"sys/fs/cgroup/pod/memory.max":     "268435456\n",
		}, Limit{Bytes: 100 * mib, File: "memory.max", Dir: "pod/ctr"}},
		{"equal max on both levels: the nearest", map[string]string{
			"sys/fs/cgroup/pod/ctr/memory.max": "268435456\n",
			"sys/fs/cgroup/pod/memory.max":     "268435456\n",
		}, Limit{Bytes: 256 * mib, File: "memory.max", Dir: "pod/ctr"}},
		{"files missing (controller enabled, kernel without memory.high)", map[string]string{
			"sys/fs/cgroup/pod/memory.max": "268435456\n",
		}, Limit{Bytes: 256 * mib, File: "memory.max", Dir: "pod"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tree(tt.files)
			g, err := Find(root)
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.Limit()
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Dir = filepath.Join(root, "sys/fs/cgroup", want.Dir)
			if got != want {
				t.Errorf("Limit = %+v, want %+v", got, want)
			}
		})
	}
}
