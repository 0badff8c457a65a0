//go:build linux

package cgroup_test

import "github.com/KimMachineGun/automemlimit/memlimit"

// automemlimit's FromCgroup is the proven mountinfo + hierarchy reader: the
// real-kernel tests check that it agrees with Limit().Bytes in the helper.
func init() {
	crossCheck = func() (uint64, error) { return memlimit.FromCgroup() }
}
