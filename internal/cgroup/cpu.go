package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrNoCPUController reports that no cgroup hierarchy carries the cpu
// controller for this process.
var ErrNoCPUController = errors.New("cgroup: no cpu controller for this process")

// CPU is the cpu cgroup of a process: its CFS quota, the least over it and
// its ancestors, and how long that quota held the process's threads back.
type CPU struct {
	Version Version
	// Dir is the process's own cpu cgroup; Mount the hierarchy's mount.
	Dir, Mount string
	// QuotaDir is where the tightest quota is set, at Dir or an ancestor:
	// its throttling is the process's. Empty without a quota.
	QuotaDir string
	// Quota is the CPUs the quota allows, such as 0.2 for 20ms every
	// 100ms; 0 without a quota.
	Quota float64
}

// SelfCPU returns the cpu cgroup of the calling process.
func SelfCPU() (*CPU, error) { return FindCPU("/") }

// FindCPU returns the cpu cgroup described by root/proc/self/cgroup and
// root/proc/self/mountinfo, with every path resolved under root, and reads
// its quota. A v1 hierarchy that carries the cpu controller wins over the
// unified one, as the kernel applies only one.
func FindCPU(root string) (*CPU, error) {
	g, err := find(root, "cpu", ErrNoCPUController)
	if err != nil {
		return nil, err
	}
	c := &CPU{Version: g.Version, Dir: g.Dir, Mount: g.Mount}
	c.ReadQuota()
	return c, nil
}

// ReadQuota finds the tightest quota from Dir up to Mount, again after a
// pod is resized in place. A quota that does not read is taken as none:
// the guard then reads the run queue alone.
func (c *CPU) ReadQuota() {
	c.Quota, c.QuotaDir = 0, ""
	for dir := c.Dir; ; dir = filepath.Dir(dir) {
		if q, ok := readQuotaAt(c.Version, dir); ok && (c.Quota == 0 || q < c.Quota) {
			c.Quota, c.QuotaDir = q, dir
		}
		if dir == c.Mount || len(dir) <= len(c.Mount) {
			return
		}
	}
}

// readQuotaAt reads the quota set at dir, in CPUs: v1 cpu.cfs_quota_us over
// cpu.cfs_period_us (-1 is none), v2 cpu.max "quota period" ("max" is none).
func readQuotaAt(v Version, dir string) (float64, bool) {
	var quota, period string
	if v == 1 {
		q, err1 := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
		p, err2 := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
		if err1 != nil || err2 != nil {
			return 0, false
		}
		quota, period = strings.TrimSpace(string(q)), strings.TrimSpace(string(p))
	} else {
		b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
		if err != nil {
			return 0, false
		}
		f := strings.Fields(string(b))
		if len(f) != 2 {
			return 0, false
		}
		quota, period = f[0], f[1]
	}
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, false
	}
	return float64(q) / float64(p), true
}

// Throttled returns how long the quota held the process's threads back
// since the cgroup was made, summed over CPUs, from the cpu.stat where the
// tightest quota is set; 0 without a quota.
func (c *CPU) Throttled() (time.Duration, error) {
	if c.QuotaDir == "" {
		return 0, nil
	}
	path := filepath.Join(c.QuotaDir, "cpu.stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	st, err := ParseCPUStat(b)
	if err != nil {
		return 0, fmt.Errorf("%w, in %s", err, path)
	}
	return st.ThrottledTime, nil
}

// CPUStat is what a cgroup's cpu.stat counts of its CPU quota since the
// cgroup was made.
type CPUStat struct {
	Periods          int64         // nr_periods: enforcement periods the cgroup ran in
	ThrottledPeriods int64         // nr_throttled: periods in which the quota ran out
	ThrottledTime    time.Duration // throttled_time (v1, ns) or throttled_usec (v2), summed over CPUs
}

// ParseCPUStat reads a cpu.stat file of cgroup v1 or v2. The throttled time
// must be there, as a number; the period counts are 0 where absent, and
// other keys are ignored.
func ParseCPUStat(b []byte) (CPUStat, error) {
	var st CPUStat
	timed := false
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		key := string(k)
		unit := time.Duration(0)
		switch key {
		case "throttled_time":
			unit = time.Nanosecond
		case "throttled_usec":
			unit = time.Microsecond
		case "nr_periods", "nr_throttled":
		default:
			continue
		}
		if !ok {
			return CPUStat{}, fmt.Errorf("cgroup: cpu.stat: %s without a value", key)
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 63)
		if err != nil {
			return CPUStat{}, fmt.Errorf("cgroup: cpu.stat: %s %q: %w", key, v, err)
		}
		switch key {
		case "nr_periods":
			st.Periods = int64(n)
		case "nr_throttled":
			st.ThrottledPeriods = int64(n)
		default:
			st.ThrottledTime, timed = time.Duration(min(n, uint64(math.MaxInt64/unit)))*unit, true
		}
	}
	if !timed {
		return CPUStat{}, errors.New("cgroup: cpu.stat: no throttled_time or throttled_usec")
	}
	return st, nil
}
