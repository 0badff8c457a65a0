//go:build !linux

package cgrouptest

import (
	"errors"
	"os/exec"

	"github.com/oomguard/oomguard/internal/cgroup"
)

var errNotLinux = errors.New("cgrouptest: real cgroups need Linux")

// Child is a memory cgroup; only Linux has them.
type Child struct {
	cgroup.Group
}

// Make fails: only Linux has cgroups.
func Make(name string, limit int64) (*Child, error) { return nil, errNotLinux }

// Make fails: only Linux has cgroups.
func (c *Child) Make(name string, limit int64) (*Child, error) { return nil, errNotLinux }

// SetLimit fails: only Linux has cgroups.
func (c *Child) SetLimit(limit int64) error { return errNotLinux }

// SetHigh fails: only Linux has cgroups.
func (c *Child) SetHigh(high int64) error { return errNotLinux }

// LimitCPU fails: only Linux has cgroups.
func (c *Child) LimitCPU(cpus float64) error { return errNotLinux }

// Throttling reports nothing: only Linux has cgroups.
func (c *Child) Throttling() (cgroup.CPUStat, bool) { return cgroup.CPUStat{}, false }

// Command returns a plain command.
func (c *Child) Command(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// Procs returns nothing.
func (c *Child) Procs() []int { return nil }

// Remove does nothing.
func (c *Child) Remove() error { return nil }

// RemoveStale fails: only Linux has cgroups.
func RemoveStale(prefix string) ([]string, error) { return nil, errNotLinux }
