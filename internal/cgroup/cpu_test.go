package cgroup

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	cpuMountV1 = "30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct\n" +
		"31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory\n"
	cpuMountV2 = "30 25 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
)

func TestFindCPU(t *testing.T) {
	for _, tc := range []struct {
		name      string
		files     map[string]string
		version   Version
		dir       string
		quota     float64
		quotaDir  string
		throttled time.Duration
	}{
		{"v1 quota on the leaf", map[string]string{
			"proc/self/cgroup":    "4:memory:/pod/ctr\n3:cpu,cpuacct:/pod/ctr\n0::/\n",
			"proc/self/mountinfo": cpuMountV1,
			"sys/fs/cgroup/cpu,cpuacct/pod/ctr/cpu.cfs_quota_us":  "20000\n",
			"sys/fs/cgroup/cpu,cpuacct/pod/ctr/cpu.cfs_period_us": "100000\n",
			"sys/fs/cgroup/cpu,cpuacct/pod/ctr/cpu.stat":          "nr_periods 10\nnr_throttled 4\nthrottled_time 123456789\n",
			"sys/fs/cgroup/cpu,cpuacct/pod/cpu.cfs_quota_us":      "-1\n",
			"sys/fs/cgroup/cpu,cpuacct/pod/cpu.cfs_period_us":     "100000\n",
		}, 1, "sys/fs/cgroup/cpu,cpuacct/pod/ctr", 0.2, "sys/fs/cgroup/cpu,cpuacct/pod/ctr", 123456789},
		{"v2 quota on an ancestor", map[string]string{
			"proc/self/cgroup":                         "0::/pod/ctr\n",
			"proc/self/mountinfo":                      cpuMountV2,
			"sys/fs/cgroup/pod/ctr/cgroup.controllers": "cpu memory pids\n",
			"sys/fs/cgroup/pod/ctr/cpu.max":            "max 100000\n",
			"sys/fs/cgroup/pod/cpu.max":                "150000 100000\n",
			"sys/fs/cgroup/pod/cpu.stat":               "usage_usec 5\nnr_throttled 2\nthrottled_usec 2500\n",
		}, 2, "sys/fs/cgroup/pod/ctr", 1.5, "sys/fs/cgroup/pod", 2500 * time.Microsecond},
		{"v2 no quota", map[string]string{
			"proc/self/cgroup":                         "0::/pod/ctr\n",
			"proc/self/mountinfo":                      cpuMountV2,
			"sys/fs/cgroup/pod/ctr/cgroup.controllers": "cpu memory\n",
			"sys/fs/cgroup/pod/ctr/cpu.max":            "max 100000\n",
		}, 2, "sys/fs/cgroup/pod/ctr", 0, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, tc.files)
			c, err := FindCPU(root)
			if err != nil {
				t.Fatal(err)
			}
			quotaDir := ""
			if tc.quotaDir != "" {
				quotaDir = filepath.Join(root, tc.quotaDir)
			}
			if c.Version != tc.version || c.Dir != filepath.Join(root, tc.dir) || c.Quota != tc.quota || c.QuotaDir != quotaDir {
				t.Errorf("got %+v; want v%d at %s, quota %v at %s", c, tc.version, tc.dir, tc.quota, tc.quotaDir)
			}
			if d, err := c.Throttled(); err != nil || d != tc.throttled {
				t.Errorf("Throttled() = %v, %v; want %v", d, err, tc.throttled)
			}
		})
	}
}

func TestFindCPUNone(t *testing.T) {
	root := writeTree(t, map[string]string{
		"proc/self/cgroup":    "4:memory:/ctr\n0::/\n",
		"proc/self/mountinfo": cpuMountV1,
	})
	if _, err := FindCPU(root); !errors.Is(err, ErrNoCPUController) {
		t.Errorf("FindCPU with no cpu line: %v, want ErrNoCPUController", err)
	}
	if _, err := FindCPU(t.TempDir()); !errors.Is(err, ErrNoCPUController) {
		t.Errorf("FindCPU with no /proc: %v, want ErrNoCPUController", err)
	}
}

func TestThrottledBadStat(t *testing.T) {
	root := writeTree(t, map[string]string{"cpu.stat": "throttled_time lots\n"})
	c := &CPU{Version: 1, QuotaDir: root}
	if _, err := c.Throttled(); err == nil {
		t.Error("Throttled read a value that does not parse")
	}
	if err := os.WriteFile(filepath.Join(root, "cpu.stat"), []byte("nr_periods 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Throttled(); err == nil {
		t.Error("Throttled read a file without throttled_time")
	}
}

func TestParseCPUStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     CPUStat
		err      string // a part of the error; "" for none
	}{
		{"v1", "nr_periods 120\nnr_throttled 90\nthrottled_time 4500000000\n", CPUStat{120, 90, 4500 * time.Millisecond}, ""},
		{"v2", "usage_usec 900\nuser_usec 800\nsystem_usec 100\nnr_periods 120\nnr_throttled 90\nthrottled_usec 4500000\nnr_bursts 0\n", CPUStat{120, 90, 4500 * time.Millisecond}, ""},
		{"no periods", "throttled_usec 7\n", CPUStat{ThrottledTime: 7 * time.Microsecond}, ""},
		{"saturates", "throttled_usec 9223372036854775807\n", CPUStat{ThrottledTime: math.MaxInt64 / time.Microsecond * time.Microsecond}, ""},
		{"no throttled time", "usage_usec 900\nnr_periods 3\n", CPUStat{}, "no throttled_time or throttled_usec"},
		{"garbled", "nr_periods x\nnr_throttled 1\nthrottled_usec 2\n", CPUStat{}, `nr_periods "x"`},
		{"negative", "throttled_time -5\n", CPUStat{}, `throttled_time "-5"`},
		{"no value", "throttled_time\n", CPUStat{}, "throttled_time without a value"},
		{"empty", "", CPUStat{}, "no throttled_time"},
	} {
		got, err := ParseCPUStat([]byte(tc.in))
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %+v, %v; want %+v, error with %q", tc.name, got, err, tc.want, tc.err)
		}
	}
}
