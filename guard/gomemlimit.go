package guard

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"

	"github.com/oomguard/oomguard/guard/internal/humanize"
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
	full    int64  // ratio × the limit, as setGoMemLimit last set it
	value   int64  // what the guard last set: full, or lower for the tail
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
		humanize.Bytes(cur), humanize.Bytes(l.bytes), l.source), slog.Int64("gomemlimit_bytes", cur), slog.Int64("limit_bytes", l.bytes))
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
	if g.gml.applied && v == g.gml.full {
		return // unchanged; fitGoMemLimit keeps any cut for the tail
	}
	old := debug.SetMemoryLimit(v)
	if old != v && g.gml.applied {
		// At Start the start line says it; later, a resize moved it.
		g.log.Info(fmt.Sprintf("GOMEMLIMIT %s → %s: %s", limitText(old), limitText(v), g.gml.why),
			slog.Int64("bytes", v), slog.Int64("limit_bytes", l.bytes))
	}
	g.gml.applied, g.gml.full, g.gml.value = true, v, v
}

// fitGoMemLimit lowers a GOMEMLIMIT the guard set while single requests
// allocate large blocks at once, and raises it back as they fade. room is
// what admission keeps for them below Critical (Decision.TailRoom).
//
// The GC lets garbage fill the heap up to GOMEMLIMIT, and a large
// allocation lands at once, before any cycle can free that garbage: with
// GOMEMLIMIT at 0.9 of a 256 MiB limit, two 32 MiB requests arriving
// together took the working set past the limit (an OOM kill in the
// heavy-tailed shape), whatever admission did. So GOMEMLIMIT stays room
// below the Critical threshold, but no lower than half of what the ratio
// gives. It moves by at least 1% of the limit down and 2% up, so that a
// tail that fades slowly does not set it every sample.
func (g *Guard) fitGoMemLimit(room int64) {
	m := &g.gml
	if !m.owned || m.source != GoMemLimitFromGuard || m.full <= 0 {
		return
	}
	l := g.sampler.limit.bytes
	want := m.full
	if c := int64(g.cfg.Thresholds.Critical*float64(l)) - room; room > 0 && c < want {
		want = max(c, m.full/2)
	}
	switch {
	case want == m.value:
		return
	case want < m.value && m.value-want < l/100:
		return
	case want > m.value && want < m.full && want-m.value < l/50:
		return
	}
	debug.SetMemoryLimit(want)
	was := m.value
	m.value = want
	switch {
	case was == m.full:
		g.log.Info(fmt.Sprintf("GOMEMLIMIT lowered %s → %s while single allocations of megabytes land at once: the GC keeps %s for them below the Critical threshold",
			humanize.Bytes(was), humanize.Bytes(want), humanize.Bytes(room)), slog.Int64("bytes", want), slog.Int64("tail_room_bytes", room))
	case want == m.full:
		g.log.Info(fmt.Sprintf("GOMEMLIMIT back to %s: %s", humanize.Bytes(want), m.why), slog.Int64("bytes", want))
	}
}

// limitText formats a GOMEMLIMIT for people.
func limitText(b int64) string {
	if b == math.MaxInt64 {
		return "unlimited"
	}
	return humanize.Bytes(b)
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
