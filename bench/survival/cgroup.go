package main

import (
	"fmt"
	"os"

	"github.com/oomguard/oomguard/internal/cgrouptest"
)

// childPrefix names every cgroup the harness makes, so that a later run
// can find and remove what a crashed run left behind.
const childPrefix = "oomguard-bench-"

// enforcer makes the memory cgroups, with a real limit, that the service
// runs in: on cgroup v1 or v2, where the kernel allows (see
// internal/cgrouptest).
type enforcer struct {
	limit int64 // of the probe that checks a cgroup can be made
	n     int
}

// newEnforcer removes the cgroups a previous run left behind and checks
// that it can make one with a limit. The error says why the kernel cannot
// enforce the limit here.
func newEnforcer(limit int64) (*enforcer, error) {
	stale, err := cgrouptest.RemoveStale(childPrefix)
	if err != nil {
		return nil, fmt.Errorf("remove stale cgroups from an earlier run: %w", err)
	}
	for _, name := range stale {
		fmt.Printf("removed stale cgroup %s\n", name)
	}
	e := &enforcer{limit: limit}
	probe, err := e.child("probe", limit)
	if err != nil {
		return nil, err
	}
	if err := probe.Remove(); err != nil {
		return nil, err
	}
	return e, nil
}

// child makes a fresh cgroup with a limit in bytes.
func (e *enforcer) child(name string, limit int64) (*cgrouptest.Child, error) {
	e.n++
	return cgrouptest.Make(fmt.Sprintf("%s%d-%d-%s", childPrefix, os.Getpid(), e.n, name), limit)
}
