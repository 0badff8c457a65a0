package guard

import (
	"errors"
	"log/slog"
	"os"
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
	ratio  float64
	owned  bool  // the guard sets GOMEMLIMIT and restores prev at Stop
	prev   int64 // GOMEMLIMIT before Start
	source GoMemLimitSource
}

// claim decides who sets GOMEMLIMIT: the environment variable always wins,
// a negative ratio leaves it alone, otherwise this guard owns it.
func (g *Guard) claimGoMemLimit(ratio float64) error {
	m := &g.gml
	m.ratio = ratio
	m.prev = debug.SetMemoryLimit(-1)
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		m.source = GoMemLimitFromEnv
		g.log.Info("GOMEMLIMIT left to the environment", slog.String("GOMEMLIMIT", v), slog.Int64("bytes", m.prev))
		return nil
	}
	if ratio < 0 {
		m.source = GoMemLimitUnchanged
		g.log.Info("GOMEMLIMIT left alone: Config.MemoryLimitRatio is negative", slog.Int64("bytes", m.prev))
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

// setGoMemLimit applies ratio × limit when the guard owns GOMEMLIMIT.
func (g *Guard) setGoMemLimit(limit int64) {
	if !g.gml.owned {
		return
	}
	v := int64(float64(limit) * g.gml.ratio)
	old := debug.SetMemoryLimit(v)
	if old != v {
		g.log.Info("GOMEMLIMIT set", slog.Int64("bytes", v), slog.Float64("ratio", g.gml.ratio),
			slog.Int64("limit", limit), slog.Int64("previous", old))
	}
}

// releaseGoMemLimit restores the value from before Start.
func (g *Guard) releaseGoMemLimit() {
	if !g.gml.owned {
		return
	}
	debug.SetMemoryLimit(g.gml.prev)
	g.log.Info("GOMEMLIMIT restored", slog.Int64("bytes", g.gml.prev))
	ownerMu.Lock()
	if owner == g {
		owner = nil
	}
	ownerMu.Unlock()
	g.gml.owned = false
}
