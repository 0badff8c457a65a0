package guard

import (
	"errors"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/notify"
)

// notifier holds the kernel's memory notifications the guard listens to.
// Each is optional: where one is missing, or this process may not use it,
// the guard polls as before. Every notification samples at once.
type notifier struct {
	thresholds [3]*notify.Threshold // v1: at Elevated, High and Critical
	armedAt    int64                // the limit the thresholds were armed for
	events     *notify.Events       // v2 memory.events
	local      *notify.Events       // v2 memory.events.local
	psi        *notify.Pressure     // v2 memory.pressure trigger
	systemd    *notify.Systemd      // $MEMORY_PRESSURE_WATCH
	freedAt    time.Time            // the last FreeOSMemory for systemd
	joined     string               // sources, joined; see names
	named      bool
}

const (
	// psiStall and psiWindow make the PSI trigger: tasks stalled on memory
	// for psiStall within psiWindow. Since Linux 6.4 an unprivileged
	// trigger's window must be a multiple of 2s.
	psiStall  = 100 * time.Millisecond
	psiWindow = 2 * time.Second
	// fullStallThrash: a full stall above this share of the last 10s
	// counts as thrashing.
	fullStallThrash = 10.0 // percent
)

// startNotify starts every source the kernel and the service manager offer
// for group (nil without a cgroup), and logs at DEBUG why the others are
// off.
func (g *Guard) startNotify(group *cgroup.Group) *notifier {
	n := &notifier{}
	try := func(name string, start func() error) bool {
		err := start()
		if err != nil && !errors.Is(err, notify.ErrUnavailable) {
			g.log.Warn("kernel notification "+name+" failed to start; polling instead", slog.Any("error", err))
		} else if err != nil {
			g.log.Debug("kernel notification "+name+" unavailable; polling instead", slog.Any("error", err))
		}
		return err == nil
	}
	if group != nil && g.sampler.usageSource == UsageFromCgroup {
		switch group.Version {
		case 1:
			n.arm(g, group.Dir, g.sampler.limit.bytes, try)
		case 2:
			e := &notify.Events{Dir: group.Dir}
			if try("memory.events", e.Start) {
				n.events = e
			}
			l := &notify.Events{Dir: group.Dir, Local: true}
			if try("memory.events.local", l.Start) {
				n.local = l
			}
			p := &notify.Pressure{Path: filepath.Join(group.Dir, "memory.pressure"), Stall: psiStall, Window: psiWindow}
			if try("memory.pressure trigger", p.Start) {
				n.psi = p
			}
		}
	}
	s := &notify.Systemd{}
	if try("systemd memory pressure", s.Start) {
		n.systemd = s
	}
	return n
}

// arm sets the v1 usage thresholds at the levels' entry points for limit,
// closing those armed for another limit.
func (n *notifier) arm(g *Guard, dir string, limit int64, try func(string, func() error) bool) {
	for i, t := range n.thresholds {
		if t != nil {
			t.Close()
			n.thresholds[i] = nil
		}
	}
	th := g.cfg.Thresholds
	for i, f := range []float64{th.Elevated, th.High, th.Critical} {
		t := &notify.Threshold{Dir: dir, Bytes: int64(f * float64(limit))}
		if try("v1 usage threshold", t.Start) {
			n.thresholds[i] = t
		}
	}
	n.armedAt, n.named = limit, false
}

// rearm moves the v1 thresholds after a change of the limit.
func (n *notifier) rearm(g *Guard, group *cgroup.Group, limit int64) {
	if n == nil || group == nil || group.Version != 1 || n.armedAt == limit || n.thresholds == [3]*notify.Threshold{} {
		return
	}
	n.arm(g, group.Dir, limit, func(name string, start func() error) bool { return start() == nil })
}

// sources names the sources in use, for the start line and the Snapshot.
func (n *notifier) sources() []string {
	var s []string
	if n == nil {
		return nil
	}
	if n.thresholds != [3]*notify.Threshold{} {
		s = append(s, "v1 usage thresholds (eventfd)")
	}
	if n.events != nil {
		s = append(s, "memory.events (inotify)")
	}
	if n.local != nil {
		s = append(s, "memory.events.local (inotify)")
	}
	if n.psi != nil {
		s = append(s, "memory.pressure trigger (PSI)")
	}
	if n.systemd != nil {
		s = append(s, "systemd memory pressure")
	}
	return s
}

// names is sources joined for the Snapshot, made once: every sample
// carries it.
func (n *notifier) names() string {
	if n == nil {
		return ""
	}
	if !n.named {
		n.joined, n.named = strings.Join(n.sources(), ", "), true
	}
	return n.joined
}

// chans returns the channels to wait on; nil for a source that is off, so
// that a select never picks it.
func (n *notifier) chans() (th [3]<-chan struct{}, events, local, psi, systemd <-chan struct{}) {
	if n == nil {
		return
	}
	for i, t := range n.thresholds {
		if t != nil {
			th[i] = t.C
		}
	}
	if n.events != nil {
		events = n.events.C
	}
	if n.local != nil {
		local = n.local.C
	}
	if n.psi != nil {
		psi = n.psi.C
	}
	if n.systemd != nil {
		systemd = n.systemd.C
	}
	return
}

// close stops every source.
func (n *notifier) close() {
	if n == nil {
		return
	}
	for _, t := range n.thresholds {
		if t != nil {
			t.Close()
		}
	}
	if n.events != nil {
		n.events.Close()
	}
	if n.local != nil {
		n.local.Close()
	}
	if n.psi != nil {
		n.psi.Close()
	}
	if n.systemd != nil {
		n.systemd.Close()
	}
}

// onSystemd answers systemd's memory pressure: the service manager asks the
// process to release what it can, so the guard returns free heap to the OS,
// at most once per Config.Interval.
func (g *Guard) onSystemd(now time.Time) {
	n := g.notify
	if now.Sub(n.freedAt) < g.cfg.Interval {
		return
	}
	if g.background(debug.FreeOSMemory, "returned free memory to the OS on systemd's memory pressure") {
		n.freedAt = now
	}
}

// notifySources names the kernel notification sources in use.
func (g *Guard) notifySources() string {
	if s := g.notify.sources(); len(s) > 0 {
		return strings.Join(s, ", ") + ", and polling"
	}
	return "none, polling"
}
