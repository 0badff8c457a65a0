package cgrouptest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/oomguard/oomguard/internal/cgroup"
)

// Child is a memory cgroup this process made, with a limit the kernel
// enforces. The embedded Group reads it as the guard would.
type Child struct {
	cgroup.Group
	base    *base
	v1      cgroup1.Cgroup
	v2      *cgroup2.Manager
	dir     *os.File       // v2: the directory, for CLONE_INTO_CGROUP
	cpu1    cgroup1.Cgroup // v1: the cpu cgroup of LimitCPU; nil without
	cpuDir  string         // the directory of cpu.stat; "" without a CPU quota
	removed bool
}

// Make makes the memory cgroup name under this process's base (see base)
// with a limit in bytes; 0 leaves it without one of its own. Swap is off
// where the kernel allows, so that the limit means an OOM kill.
func Make(name string, limit int64) (*Child, error) {
	b, err := acquireBase()
	if err != nil {
		return nil, err
	}
	c, err := makeIn(b, b.Group, name, limit)
	if err != nil {
		return nil, errors.Join(err, releaseBase(b))
	}
	return c, nil
}

// Make makes a cgroup below c. On v2, c must hold no processes.
func (c *Child) Make(name string, limit int64) (*Child, error) {
	holdBase(c.base)
	n, err := makeIn(c.base, c.Group, name, limit)
	if err != nil {
		return nil, errors.Join(err, releaseBase(c.base))
	}
	return n, nil
}

func holdBase(b *base) {
	baseMu.Lock()
	b.holders++
	baseMu.Unlock()
}

func makeIn(b *base, parent cgroup.Group, name string, limit int64) (*Child, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("cgrouptest: bad cgroup name %q", name)
	}
	if limit < 0 {
		return nil, fmt.Errorf("cgrouptest: bad limit %d for %s", limit, name)
	}
	c := &Child{Group: cgroup.Group{Version: parent.Version, Dir: filepath.Join(parent.Dir, name), Mount: parent.Mount}, base: b}
	if _, err := os.Stat(c.Dir); err == nil {
		return nil, fmt.Errorf("cgrouptest: %s exists already", c.Dir)
	}
	rel := strings.TrimPrefix(c.Dir, c.Mount)
	var err error
	if c.Version == 1 {
		err = c.make1(rel, limit)
	} else {
		err = c.make2(rel, limit)
	}
	if err != nil {
		os.Remove(c.Dir) // where the library made it before failing
		return nil, fmt.Errorf("cgrouptest: make %s with limit %d (under the %s base %s): %s", c.Dir, limit, b.how, b.Dir, explain(err))
	}
	return c, nil
}

func (c *Child) make1(rel string, limit int64) error {
	hierarchy, err := memoryHierarchy(c.Mount)
	if err != nil {
		return err
	}
	mem := &specs.LinuxMemory{}
	if limit > 0 {
		mem.Limit = &limit
	}
	c.v1, err = cgroup1.New(cgroup1.StaticPath(rel), &specs.LinuxResources{Memory: mem}, cgroup1.WithHierarchy(hierarchy))
	if err != nil {
		return err
	}
	// Not every kernel has per-cgroup swappiness.
	_ = os.WriteFile(filepath.Join(c.Dir, "memory.swappiness"), []byte("0"), 0)
	return nil
}

// memoryHierarchy is the v1 memory controller alone: the rig makes memory
// cgroups, not cgroups in every v1 hierarchy.
func memoryHierarchy(mount string) (cgroup1.Hierarchy, error) {
	if filepath.Base(mount) != string(cgroup1.Memory) {
		return nil, fmt.Errorf("v1 memory hierarchy mounted at %s, not at a directory named memory", mount)
	}
	return func() ([]cgroup1.Subsystem, error) {
		return []cgroup1.Subsystem{cgroup1.NewMemory(filepath.Dir(mount))}, nil
	}, nil
}

func (c *Child) make2(rel string, limit int64) error {
	mem := &cgroup2.Memory{} // enables memory in each parent even without a limit
	if limit > 0 {
		mem.Max = &limit
	}
	var err error
	c.v2, err = cgroup2.NewManager(c.Mount, rel, &cgroup2.Resources{Memory: mem})
	if err != nil {
		return err
	}
	// memory.swap.max exists only with swap accounting.
	var zero int64
	_ = c.v2.Update(&cgroup2.Resources{Memory: &cgroup2.Memory{Swap: &zero}})
	c.dir, err = os.Open(c.Dir)
	return err
}

// SetLimit sets the hard limit in bytes: v2 memory.max, v1
// memory.limit_in_bytes.
func (c *Child) SetLimit(limit int64) error {
	var err error
	if c.Version == 1 {
		err = c.v1.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}})
	} else {
		err = c.v2.Update(&cgroup2.Resources{Memory: &cgroup2.Memory{Max: &limit}})
	}
	if err != nil {
		return fmt.Errorf("cgrouptest: set the limit of %s to %d: %w", c.Dir, limit, err)
	}
	return nil
}

// SetHigh sets v2 memory.high in bytes, where the kernel starts throttling
// and reclaiming; v1 has no such file.
func (c *Child) SetHigh(high int64) error {
	if c.Version != 2 {
		return fmt.Errorf("cgrouptest: memory.high of %s: cgroup v%d has none", c.Dir, c.Version)
	}
	if err := c.v2.Update(&cgroup2.Resources{Memory: &cgroup2.Memory{High: &high}}); err != nil {
		return fmt.Errorf("cgrouptest: set memory.high of %s to %d: %w", c.Dir, high, err)
	}
	return nil
}

// Command returns a command whose process starts in the cgroup, so that
// every page the program touches is charged to it from the first
// instruction: on v2 the kernel clones it there (CLONE_INTO_CGROUP); on v1
// a shell joins the cgroup and then execs the program.
func (c *Child) Command(name string, args ...string) *exec.Cmd {
	if c.Version == 1 {
		script := `echo $$ > "$0/cgroup.procs" && exec "$@"`
		return exec.Command("/bin/sh", append([]string{"-c", script, c.Dir, name}, args...)...)
	}
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(c.dir.Fd())}
	return cmd
}

// Procs returns the pids in the cgroup itself, not in its children.
func (c *Child) Procs() []int {
	pids, _ := readProcs(c.Dir)
	return pids
}

// Remove kills whatever still runs in the cgroup and below, then removes
// them, and the v1 cpu cgroup of LimitCPU. The kernel refuses rmdir while
// a dying process is still charged, so it retries for a few seconds.
// Removing the last cgroup under a base undoes the base.
func (c *Child) Remove() error {
	if c.removed {
		return nil
	}
	err := errors.Join(c.remove(), c.removeCPU1())
	if err == nil {
		c.removed = true
		if c.dir != nil {
			c.dir.Close()
		}
		err = releaseBase(c.base)
	}
	return err
}

func (c *Child) remove() error {
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c.Version == 1 {
			if procs, perr := c.v1.Processes(cgroup1.Memory, true); perr == nil {
				for _, p := range procs {
					syscall.Kill(p.Pid, syscall.SIGKILL)
				}
			}
			err = c.v1.Delete()
		} else {
			c.v2.Kill() // cgroup.kill: the whole subtree
			err = c.v2.Delete()
		}
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if _, serr := os.Stat(c.Dir); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgrouptest: remove %s: %w", c.Dir, err)
		}
	}
}

// RemoveStale removes the cgroups under the base whose names start with
// prefix, and on v1 the cpu cgroups of LimitCPU so named, which a crashed
// run left, killing what still runs in them, and returns their names. A
// name that goes on from prefix with a pid, as prefix + pid + "-...", is
// the cgroup of the process of that pid: it is left alone while that
// process lives, so that two runs side by side do not remove each other's.
func RemoveStale(prefix string) ([]string, error) {
	b, err := acquireBase()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(b.Dir)
	var removed []string
	for _, e := range entries {
		if err != nil {
			break
		}
		if !e.IsDir() || !stale(e.Name(), prefix) {
			continue
		}
		var c *Child
		if c, err = load(b, e.Name()); err == nil {
			err = c.remove()
		}
		if err == nil {
			removed = append(removed, e.Name())
		}
	}
	if err == nil && b.Version == 1 {
		var cpu []string
		cpu, err = removeStaleCPU1(b.Mount, prefix)
		removed = append(removed, cpu...)
	}
	return removed, errors.Join(err, releaseBase(b))
}

// stale reports whether the cgroup name, with prefix, is not a live
// process's: see RemoveStale.
func stale(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	digits, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return true
	}
	return !alive(pid)
}

// alive reports whether a process of that pid exists (one of another user
// too: the kernel then refuses the signal, but not with ESRCH).
func alive(pid int) bool {
	return syscall.Kill(pid, 0) != syscall.ESRCH
}

// load returns the existing cgroup name under b.
func load(b *base, name string) (*Child, error) {
	c := &Child{Group: cgroup.Group{Version: b.Version, Dir: filepath.Join(b.Dir, name), Mount: b.Mount}, base: b}
	rel := strings.TrimPrefix(c.Dir, c.Mount)
	var err error
	if c.Version == 1 {
		var h cgroup1.Hierarchy
		if h, err = memoryHierarchy(c.Mount); err == nil {
			c.v1, err = cgroup1.Load(cgroup1.StaticPath(rel), cgroup1.WithHierarchy(h))
		}
	} else {
		c.v2, err = cgroup2.Load(rel, cgroup2.WithMountpoint(c.Mount))
	}
	if err != nil {
		return nil, fmt.Errorf("cgrouptest: load %s: %w", c.Dir, err)
	}
	return c, nil
}
