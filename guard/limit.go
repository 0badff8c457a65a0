package guard

import (
	"errors"
	"fmt"
	"math"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/oomguard/oomguard/internal/cgroup"
)

// LimitSource says which bound won as the effective limit.
type LimitSource string

// The sources of the effective limit.
const (
	LimitFromConfig     LimitSource = "config"      // Config.Limit
	LimitFromCgroup     LimitSource = "cgroup"      // a hard limit: v2 memory.max, v1 memory.limit_in_bytes or hierarchical_memory_limit
	LimitFromCgroupHigh LimitSource = "cgroup-high" // v2 memory.high, where the kernel starts throttling
	LimitFromMachine    LimitSource = "machine"     // no cgroup limits memory: the machine's memory
)

// effectiveLimit is the smallest bound on the process's memory and where it
// came from.
type effectiveLimit struct {
	bytes  int64
	source LimitSource
	detail string // the control file and cgroup, for people
}

// detectLimit finds the effective limit as docs/design.md defines it: the
// smallest of cfgLimit, the cgroup hard limit (minimum over ancestors), v2
// memory.high and the machine's memory.
func detectLimit(cfgLimit int64, group *cgroup.Group) (effectiveLimit, error) {
	var best effectiveLimit
	if group != nil {
		l, err := group.Limit()
		if err != nil {
			return effectiveLimit{}, err
		}
		if l.Bytes > 0 {
			best = effectiveLimit{bytes: l.Bytes, source: LimitFromCgroup,
				detail: fmt.Sprintf("cgroup v%d %s in %s", group.Version, l.File, l.Dir)}
			if l.File == "memory.high" {
				best.source = LimitFromCgroupHigh
			}
		}
	}
	// A cgroup limit above the machine's memory (a limit written as a
	// huge number rather than "max") does not bind: the machine does.
	m, err := memlimit.FromSystem()
	if err != nil && !errors.Is(err, memlimit.ErrNoLimit) {
		return effectiveLimit{}, fmt.Errorf("guard: machine memory: %w", err)
	}
	if m > 0 && (best.bytes == 0 || uint64(best.bytes) > m) {
		best = effectiveLimit{bytes: int64(min(m, math.MaxInt64)), source: LimitFromMachine, detail: "machine memory"}
	}
	if cfgLimit > 0 && (best.bytes == 0 || cfgLimit < best.bytes) {
		best = effectiveLimit{bytes: cfgLimit, source: LimitFromConfig, detail: "Config.Limit"}
	}
	if best.bytes == 0 {
		return effectiveLimit{}, errors.New("guard: no memory limit found: set Config.Limit")
	}
	return best, nil
}
