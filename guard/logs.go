package guard

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/oomguard/oomguard/guard/internal/humanize"
)

// The guard's log lines say what they mean in human units (MiB, seconds);
// the raw figures follow as attributes for machines.

// sayStarted writes the start line: the limit and where it came from,
// GOMEMLIMIT and who set it, usage and what it measures, where profiles go,
// and which kernel notifications are on.
func (g *Guard) sayStarted() {
	s := g.snap.Load()
	dump := "off (set Config.DumpDir or " + EnvDumpDir + ")"
	switch {
	case g.rec != nil:
		dump = g.cfg.DumpDir
	case g.cfg.DumpDir != "":
		dump = "off (" + g.cfg.DumpDir + " refused)"
	}
	gml := limitText(s.GoMemLimit)
	g.log.Info(fmt.Sprintf("oomguard started: limit %s from %s (%s); GOMEMLIMIT %s (%s); usage %s (%s); profiles %s; notifications: %s",
		humanize.Bytes(s.Limit), s.LimitSource, s.LimitDetail, gml, g.gml.why, humanize.Bytes(s.Usage), s.UsageSource, dump, g.notifySources()),
		slog.Int64("limit_bytes", s.Limit), slog.Int64("gomemlimit_bytes", s.GoMemLimit), slog.Int64("usage_bytes", s.Usage))
}

// sayLevel logs a level change: Elevated and a return to Normal at INFO,
// High and Critical at WARN.
func (g *Guard) sayLevel(prev Level, s *Snapshot) {
	lvl := slog.LevelInfo
	if s.Level >= LevelHigh && s.Level > prev {
		lvl = slog.LevelWarn
	}
	g.log.Log(context.Background(), lvl, fmt.Sprintf("memory level %s → %s: %s of %s (%.1f%%)", prev, s.Level, humanize.Bytes(s.Usage), humanize.Bytes(s.Limit), 100*s.Pressure()),
		slog.Int64("usage_bytes", s.Usage), slog.Int64("limit_bytes", s.Limit), slog.Bool("gc_thrashing", s.GCThrashing))
}

// sayOOMKills logs OOM kills the cgroup counted since the guard last looked.
func (g *Guard) sayOOMKills(from, to int64) {
	g.log.Error(fmt.Sprintf("the kernel OOM-killed %d process(es) in this memory cgroup", to-from),
		slog.Int64("oom_kills", to))
}

// sayLeak logs, once per leak, that memory grows independent of load, with
// the top growth of the current climb when profiles are on; it reads the
// profiles on a goroutine of its own.
func (g *Guard) sayLeak(rate float64) {
	msg := fmt.Sprintf("memory grows %.1f MiB/s independent of load: likely a leak, which shedding cannot slow", rate/(1<<20))
	r := g.rec
	if r == nil || !g.join() {
		g.log.Warn(msg)
		return
	}
	go func() {
		defer g.wg.Done()
		g.log.Warn(msg+"; top growth: "+r.ClimbGrowth(), slog.Float64("bytes_per_second", rate))
	}()
}
