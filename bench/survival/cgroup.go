package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/oomguard/oomguard/internal/cgroup"
)

// childPrefix names every cgroup the harness makes, so that a later run
// can find and remove what a crashed run left behind.
const childPrefix = "oomguard-bench-"

// enforcer makes the child cgroups, with a real limit, that the service
// runs in.
type enforcer struct {
	parent *cgroup.Group
	limit  int64
	n      int
}

// newEnforcer finds the harness's own memory cgroup, removes the children
// a previous run left behind, and checks that it can make a child with a
// limit. The error says why the kernel cannot enforce the limit here.
func newEnforcer(limit int64) (*enforcer, error) {
	parent, err := cgroup.Self()
	if err != nil {
		return nil, err
	}
	e := &enforcer{parent: parent, limit: limit}
	if err := e.removeStale(); err != nil {
		return nil, err
	}
	probe, err := e.child("probe")
	if err != nil {
		return nil, err
	}
	if err := probe.Remove(); err != nil {
		return nil, err
	}
	return e, nil
}

// child makes a fresh child cgroup with the limit.
func (e *enforcer) child(name string) (*cgroup.Child, error) {
	e.n++
	full := fmt.Sprintf("%s%d-%d-%s", childPrefix, os.Getpid(), e.n, name)
	c, err := e.parent.NewChild(full, e.limit)
	if err != nil {
		return nil, fmt.Errorf("make memory cgroup %s under %s: %w", full, e.parent.Dir, err)
	}
	return c, nil
}

// removeStale removes the children named with childPrefix that a crashed
// run left, killing what still runs in them.
func (e *enforcer) removeStale() error {
	entries, err := os.ReadDir(e.parent.Dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", e.parent.Dir, err)
	}
	for _, de := range entries {
		if !de.IsDir() || !strings.HasPrefix(de.Name(), childPrefix) {
			continue
		}
		stale := &cgroup.Child{Group: cgroup.Group{Version: e.parent.Version, Dir: filepath.Join(e.parent.Dir, de.Name()), Mount: e.parent.Mount}}
		if err := stale.Remove(); err != nil {
			return fmt.Errorf("remove stale cgroup from an earlier run: %w", err)
		}
		fmt.Printf("removed stale cgroup %s\n", de.Name())
	}
	return nil
}
