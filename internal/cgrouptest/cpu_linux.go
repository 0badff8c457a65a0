package cgrouptest

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/oomguard/oomguard/internal/cgroup"
)

// cpuPeriod is the CFS period of LimitCPU's quota, in microseconds: the
// kernel's default, 100 ms.
const cpuPeriod = 100_000

// LimitCPU puts the cgroup's processes under a CPU quota of cpus CPUs: in
// every 100 ms period they may run for cpus × 100 ms in all, and are
// throttled for the rest. On v2 that is the cgroup's own cpu.max
// ("20000 100000" for 0.2), with the cpu controller enabled in each
// parent. On v1, where cpu is a hierarchy of its own, it is a cgroup of the
// same name below this process's cpu cgroup, with cpu.cfs_period_us and
// cpu.cfs_quota_us, into which each process of the memory cgroup moves by
// its pid (its cgroup.procs): call it once they run; a process started
// later is not moved. Remove removes that cgroup too.
func (c *Child) LimitCPU(cpus float64) error {
	if cpus <= 0 || math.IsNaN(cpus) || math.IsInf(cpus, 0) {
		return fmt.Errorf("cgrouptest: CPU quota %v for %s: want a positive number of CPUs", cpus, c.Dir)
	}
	quota := int64(math.Round(cpus * cpuPeriod))
	if quota < 1000 {
		return fmt.Errorf("cgrouptest: CPU quota %v for %s: the kernel takes no less than 1 ms a period (0.01 CPU)", cpus, c.Dir)
	}
	if c.Version == 2 {
		return c.limitCPU2(quota)
	}
	return c.limitCPU1(quota)
}

func (c *Child) limitCPU2(quota int64) error {
	if err := c.v2.ToggleControllers([]string{"cpu"}, cgroup2.Enable); err != nil {
		return fmt.Errorf("cgrouptest: enable cpu for %s: %s", c.Dir, explain(err))
	}
	period := uint64(cpuPeriod)
	if err := c.v2.Update(&cgroup2.Resources{CPU: &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)}}); err != nil {
		return fmt.Errorf("cgrouptest: set cpu.max of %s to %d %d: %s", c.Dir, quota, period, explain(err))
	}
	c.cpuDir = c.Dir
	return nil
}

func (c *Child) limitCPU1(quota int64) error {
	if c.cpu1 != nil {
		period := uint64(cpuPeriod)
		return c.cpu1.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: &period, Quota: &quota}})
	}
	h, mount, self, err := cpuHierarchy(c.Mount)
	if err != nil {
		return fmt.Errorf("cgrouptest: CPU quota for %s: %w", c.Dir, err)
	}
	rel := filepath.Join(self, filepath.Base(c.Dir))
	dir := filepath.Join(mount, rel)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("cgrouptest: %s exists already", dir)
	}
	period := uint64(cpuPeriod)
	cg, err := cgroup1.New(cgroup1.StaticPath(rel), &specs.LinuxResources{CPU: &specs.LinuxCPU{Period: &period, Quota: &quota}}, cgroup1.WithHierarchy(h))
	if err != nil {
		os.Remove(dir) // where the library made it before failing
		return fmt.Errorf("cgrouptest: make %s with a CPU quota of %d/%d µs: %s", dir, quota, period, explain(err))
	}
	c.cpu1, c.cpuDir = cg, dir
	for _, pid := range c.Procs() {
		if err := cg.Add(cgroup1.Process{Pid: pid}); err != nil {
			return fmt.Errorf("cgrouptest: move pid %d into %s: %s", pid, dir, explain(err))
		}
	}
	return nil
}

// cpuHierarchy is the v1 cpu controller alone, found beside the memory
// hierarchy mounted at memMount, with its mount point and this process's
// cgroup in it.
func cpuHierarchy(memMount string) (h cgroup1.Hierarchy, mount, self string, err error) {
	root := filepath.Dir(memMount)
	mount = filepath.Join(root, string(cgroup1.Cpu)) // cpu, or a link to cpu,cpuacct
	if _, err := os.Stat(filepath.Join(mount, "cpu.cfs_quota_us")); err != nil {
		return nil, "", "", fmt.Errorf("no v1 cpu hierarchy with CFS quotas at %s: %w", mount, unwrapPathError(err))
	}
	paths, err := cgroup1.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return nil, "", "", err
	}
	self, ok := paths[string(cgroup1.Cpu)]
	if !ok {
		return nil, "", "", errors.New("/proc/self/cgroup names no v1 cpu cgroup")
	}
	h = func() ([]cgroup1.Subsystem, error) {
		return []cgroup1.Subsystem{cgroup1.NewCpu(root)}, nil
	}
	return h, mount, self, nil
}

// removeCPU1 removes the v1 cpu cgroup LimitCPU made, killing what still
// runs in it; nil if there is none.
func (c *Child) removeCPU1() error {
	if c.cpu1 == nil {
		return nil
	}
	return deleteCPU1(c.cpu1, c.cpuDir)
}

func deleteCPU1(cg cgroup1.Cgroup, dir string) error {
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if procs, perr := cg.Processes(cgroup1.Cpu, true); perr == nil {
			for _, p := range procs {
				syscall.Kill(p.Pid, syscall.SIGKILL)
			}
		}
		if err = cg.Delete(); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if _, serr := os.Stat(dir); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgrouptest: remove %s: %w", dir, err)
		}
	}
}

// removeStaleCPU1 removes the v1 cpu cgroups below this process's whose
// names start with prefix, which a crashed run left, and returns their
// names. Without a v1 cpu hierarchy there are none.
func removeStaleCPU1(memMount, prefix string) ([]string, error) {
	h, mount, self, err := cpuHierarchy(memMount)
	if err != nil {
		return nil, nil
	}
	entries, err := os.ReadDir(filepath.Join(mount, self))
	var removed []string
	for _, e := range entries {
		if err != nil {
			break
		}
		if !e.IsDir() || !stale(e.Name(), prefix) {
			continue
		}
		rel := filepath.Join(self, e.Name())
		var cg cgroup1.Cgroup
		if cg, err = cgroup1.Load(cgroup1.StaticPath(rel), cgroup1.WithHierarchy(h)); err == nil {
			err = deleteCPU1(cg, filepath.Join(mount, rel))
		}
		if err == nil {
			removed = append(removed, "cpu:"+e.Name())
		}
	}
	return removed, err
}

// Throttling reads the cgroup's cpu.stat; false without a CPU quota or
// where it cannot be read.
func (c *Child) Throttling() (cgroup.CPUStat, bool) {
	if c.cpuDir == "" {
		return cgroup.CPUStat{}, false
	}
	b, err := os.ReadFile(filepath.Join(c.cpuDir, "cpu.stat"))
	if err != nil {
		return cgroup.CPUStat{}, false
	}
	st, err := cgroup.ParseCPUStat(b)
	return st, err == nil
}
