package guard

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
)

// GOMEMLIMIT is process-wide, so at most one Guard owns it at a time.
var (
	ownerMu sync.Mutex
	owner   *Guard
)

var errOwned = errors.New("guard: another Guard owns GOMEMLIMIT; stop it first, or give this one a negative Config.MemoryLimitRatio")

// goMemLimit is the guard's hold on GOMEMLIMIT.
type goMemLimit struct {
	ratio   float64
	owned   bool  // the guard sets GOMEMLIMIT and restores prev at Stop
	prev    int64 // GOMEMLIMIT before Start
	source  GoMemLimitSource
	why     string // for the start line
	applied bool   // setGoMemLimit ran once
}

// claim decides who sets GOMEMLIMIT: the environment variable always wins,
// a negative ratio leaves it alone, otherwise this guard owns it.
func (g *Guard) claimGoMemLimit(ratio float64) error {
	m := &g.gml
	m.ratio = ratio
	m.prev = debug.SetMemoryLimit(-1)
	if v, ok := lookupEnv("GOMEMLIMIT"); ok {
		m.source, m.why = GoMemLimitFromEnv, "from the GOMEMLIMIT environment variable "+v
		return nil
	}
	if ratio < 0 {
		m.source, m.why = GoMemLimitUnchanged, "left alone: Config.MemoryLimitRatio is negative"
		return nil
	}
	ownerMu.Lock()
	defer ownerMu.Unlock()
	if owner != nil {
		return errOwned
	}
	owner, m.owned, m.source = g, true, GoMemLimitFromGuard
	return nil
}

// checkGoMemLimit warns when a GOMEMLIMIT the guard does not own is above
// the effective limit: the kernel kills the process before the GC even
// tries to stay below it.
func (g *Guard) checkGoMemLimit(l effectiveLimit) {
	cur := debug.SetMemoryLimit(-1)
	if g.gml.owned || cur <= l.bytes || cur == math.MaxInt64 {
		return
	}
	g.log.Warn(fmt.Sprintf("GOMEMLIMIT %s is above the memory limit %s (%s): the kernel will kill the process before the GC tries to stay below it; lower it, or unset it and let the guard set it",
		mib(cur), mib(l.bytes), l.source), slog.Int64("gomemlimit_bytes", cur), slog.Int64("limit_bytes", l.bytes))
}

// setGoMemLimit applies ratio × the limit when the guard owns GOMEMLIMIT.
// Where no cgroup and no Config.Limit bound memory, it leaves GOMEMLIMIT as
// it was unless Config.MachineGoMemLimit: a process rarely owns the whole
// machine, and automemlimit leaves it alone too.
func (g *Guard) setGoMemLimit(l effectiveLimit) {
	if !g.gml.owned {
		g.checkGoMemLimit(l)
		return
	}
	v := int64(float64(l.bytes) * g.gml.ratio)
	g.gml.source, g.gml.why = GoMemLimitFromGuard, fmt.Sprintf("set by the guard: %.2g of the limit", g.gml.ratio)
	if l.source == LimitFromMachine && !g.cfg.MachineGoMemLimit {
		v = g.gml.prev
		g.gml.source, g.gml.why = GoMemLimitUnchanged, "left alone: no cgroup limits memory (Config.MachineGoMemLimit opts in)"
	}
	old := debug.SetMemoryLimit(v)
	if old != v && g.gml.applied {
		// At Start the start line says it; later, a resize moved it.
		g.log.Info(fmt.Sprintf("GOMEMLIMIT %s → %s: %s", limitText(old), limitText(v), g.gml.why),
			slog.Int64("bytes", v), slog.Int64("limit_bytes", l.bytes))
	}
	g.gml.applied = true
}

// limitText formats a GOMEMLIMIT for people.
func limitText(b int64) string {
	if b == math.MaxInt64 {
		return "unlimited"
	}
	return mib(b)
}

// releaseGoMemLimit restores the value from before Start.
func (g *Guard) releaseGoMemLimit() {
	if !g.gml.owned {
		return
	}
	if debug.SetMemoryLimit(g.gml.prev) != g.gml.prev {
		g.log.Info("GOMEMLIMIT restored to "+limitText(g.gml.prev), slog.Int64("bytes", g.gml.prev))
	}
	ownerMu.Lock()
	if owner == g {
		owner = nil
	}
	ownerMu.Unlock()
	g.gml.owned = false
}
