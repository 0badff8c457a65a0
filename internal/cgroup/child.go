package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Child is a memory cgroup made below another one, with a real limit the
// kernel enforces. The tests and the survival harness run processes in it.
type Child struct {
	Group
}

// NewChild makes the cgroup parent.Dir/name and sets its memory limit;
// limit 0 leaves it unlimited (it still inherits the parent's). Swap is
// disabled so that the limit means an OOM kill, not swapping.
func (g *Group) NewChild(name string, limit int64) (*Child, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("cgroup: bad child name %q", name)
	}
	dir := filepath.Join(g.Dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	c := &Child{Group{Version: g.Version, Dir: dir, Mount: g.Mount}}
	if g.Version == 1 {
		// Best effort: not every kernel exposes swappiness per cgroup.
		_ = os.WriteFile(filepath.Join(dir, "memory.swappiness"), []byte("0"), 0)
	} else {
		_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0)
	}
	if limit > 0 {
		if err := c.SetLimit(limit); err != nil {
			c.Remove()
			return nil, err
		}
	}
	return c, nil
}

// SetLimit sets the hard limit in bytes.
func (c *Child) SetLimit(limit int64) error {
	file := "memory.max"
	if c.Version == 1 {
		file = "memory.limit_in_bytes"
	}
	if err := os.WriteFile(filepath.Join(c.Dir, file), []byte(formatInt(limit)), 0); err != nil {
		return fmt.Errorf("cgroup: set %s to %d: %w", file, limit, err)
	}
	return nil
}

// Command returns a command that joins the cgroup before it execs name, so
// that every page the program touches is charged to the cgroup from the
// first instruction.
func (c *Child) Command(name string, args ...string) *exec.Cmd {
	script := `echo $$ > "$0/cgroup.procs" && exec "$@"`
	return exec.Command("/bin/sh", append([]string{"-c", script, c.Dir, name}, args...)...)
}

// Procs returns the pids in the cgroup.
func (c *Child) Procs() []int {
	b, err := os.ReadFile(filepath.Join(c.Dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Remove kills whatever still runs in the cgroup, then removes it. The
// kernel refuses rmdir while a dying process is still charged, so it retries
// for a few seconds.
func (c *Child) Remove() error {
	var err error
	for i := 0; i < 100; i++ {
		for _, pid := range c.Procs() {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
		// A child made below this one (nested tests) goes first.
		entries, _ := os.ReadDir(c.Dir)
		for _, e := range entries {
			if e.IsDir() {
				sub := &Child{Group{Version: c.Version, Dir: filepath.Join(c.Dir, e.Name()), Mount: c.Mount}}
				_ = sub.Remove()
			}
		}
		err = os.Remove(c.Dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("cgroup: remove %s: %w", c.Dir, err)
}
