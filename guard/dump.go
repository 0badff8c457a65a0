package guard

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oomguard/oomguard/guard/internal/humanize"
	"github.com/oomguard/oomguard/profile"
)

const (
	// hwmStep is how far past the last high-water mark usage must climb, as
	// a fraction of the limit, to count as a new one.
	hwmStep = 0.05
	// hwmPerClimb bounds the high-water-mark profiles between two returns
	// to Normal.
	hwmPerClimb = 3
	// hwmReset forgets the high-water mark after an hour, so a slow leak
	// over days still leaves fresh evidence.
	hwmReset = time.Hour
	// maxPending bounds the queue of profiles waiting for the writer; past
	// it the oldest request is dropped.
	maxPending = 4
	// criticalPerClimb bounds the profiles taken while Critical lasts.
	criticalPerClimb = 8
	// lastMomentsTTL and lastMomentsPressure trigger the last-moments
	// profiles, each once per climb.
	lastMomentsTTL      = 2 * time.Second
	lastMomentsPressure = 0.98
	// pairReason marks the profile taken one GC cycle after a triggered
	// one, so that every incident has a clean pair to diff.
	pairReason = "next GC cycle"
	// requestedReason marks a profile written on demand (DebugHandler's
	// POST /heap): it and its pair are written with profile.Meta.OnDemand,
	// so that they never delete the profiles kept from before an unclean
	// end (see recall).
	requestedReason = "requested"
)

// The pair a written profile asks for at the next GC cycle (dumper.pairAfter).
const (
	pairNone int32 = iota
	pairTriggered
	pairOnDemand // the pair of a profile written on demand is on demand too
)

// dumper decides when to write heap profiles and writes them on a
// goroutine of its own, one at a time, so that the sampler never waits for
// the disk.
type dumper struct {
	store *profile.Store

	mu      sync.Mutex
	pending []profile.Meta // profiles to write, oldest first; bounded by maxPending
	wake    chan struct{}

	// Sampler-owned trigger state.
	hwm       int64
	hwmAt     time.Time
	hwmCount  int
	critCount int
	critAt    time.Time // the last profile at Critical
	ttlFired  bool
	last      [2]bool      // the last-moments profiles of this climb: limit under 2s away, usage past 0.98
	crossed   [4]bool      // levels whose crossing was profiled in this climb
	pairAfter atomic.Int32 // a profile was written: take its pair at the next GC (pairTriggered or pairOnDemand)

	written, failed, diskBytes atomic.Int64

	// The flight recorder, when Config.FlightRecorder is set and the
	// runtime let it start.
	flight *trace.FlightRecorder

	// The state record: the latest waiting for the writer (under mu), when
	// the sampler last asked for one, and the first profile of the climb.
	state       *stateRecord
	stateSync   bool        // the waiting record must reach the disk: it tells of a new level
	stateAt     time.Time   // when the sampler last looked at the record (sampler-owned)
	stateLast   stateRecord // the record it last queued (sampler-owned)
	climbFirst  string
	stateFailed atomic.Int64
	stateFault  fault // writer-owned
	// The profiles' writes: the writer's, and DebugHandler's on demand.
	faultMu sync.Mutex
	fault   fault
}

// newDumper opens the profile store in Config.DumpDir, and returns nil
// without one. A DumpDir that another guard has open, or that the store
// refuses as unsafe (see profile.Options.Dir), leaves profiles off, logged
// at WARN or ERROR, and the guard running; any other error fails Start.
func newDumper(g *Guard) (*dumper, error) {
	if g.cfg.DumpDir == "" {
		return nil, nil
	}
	s, err := profile.Open(profile.Options{
		Dir:         g.cfg.DumpDir,
		MinInterval: g.cfg.DumpMinInterval,
		MaxCount:    g.cfg.DumpMaxCount,
		MaxBytes:    g.cfg.DumpMaxBytes,
	})
	if errors.Is(err, profile.ErrLocked) {
		// As with guard/auto and a guard.Start in one process: two
		// guards on one directory would delete each other's temporary
		// files and overwrite one state record.
		g.log.Warn("heap profiles are off: Config.DumpDir is in use by another guard; the guard goes on without them",
			slog.String("dir", g.cfg.DumpDir), slog.Any("error", err))
		return nil, nil
	}
	if errors.Is(err, profile.ErrUnsafeDir) {
		// Profiles are evidence, not protection: the guard goes on
		// without them rather than leave the service unguarded.
		g.log.Error("heap profiles are off: Config.DumpDir is unsafe; the guard goes on without them",
			slog.String("dir", g.cfg.DumpDir), slog.Any("error", err))
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("guard: Config.DumpDir = %q: %w", g.cfg.DumpDir, err)
	}
	d := &dumper{store: s, wake: make(chan struct{}, 1)}
	// A full or read-only disk fails every write until it is fixed: an
	// ERROR when that starts, and an INFO when it ends.
	d.fault = fault{what: "heap profile write", level: slog.LevelError}
	d.stateFault = fault{what: "state record write", level: slog.LevelError}
	if fc := g.cfg.FlightRecorder; fc != nil {
		fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: fc.MinAge, MaxBytes: fc.MaxBytes})
		if err := fr.Start(); err != nil {
			g.log.Warn("execution trace flight recorder not started", slog.Any("error", err))
		} else {
			d.flight = fr
		}
	}
	d.diskBytes.Store(s.DiskBytes())
	if n := len(s.List()); n > 0 {
		g.log.Info("heap profiles from before this start", slog.Int("count", n), slog.String("dir", g.cfg.DumpDir))
	}
	return d, nil
}

// close stops the flight recorder and closes the store, which releases
// DumpDir for another guard; the dumper may be nil. Nothing is written
// after it.
func (d *dumper) close() {
	if d == nil {
		return
	}
	if d.flight != nil {
		d.flight.Stop()
		d.flight = nil
	}
	d.store.Close()
}

// triggers runs after every sample and asks for a profile when pressure
// rose a level, usage set a new high-water mark, or the limit is near.
//
// now is the sampler's steady clock (snap.Time is the wall clock's).
func (d *dumper) triggers(g *Guard, prev Level, snap *Snapshot, now time.Time, afterGC bool) {
	if snap.Level == LevelNormal {
		d.hwmCount, d.critCount, d.ttlFired, d.crossed, d.last = 0, 0, false, [4]bool{}, [2]bool{}
		d.mu.Lock()
		d.climbFirst = ""
		d.mu.Unlock()
	}
	if snap.Level != prev || snap.Level >= LevelHigh && now.Sub(d.stateAt) >= stateEvery {
		d.stateAt = now
		if rec := g.record(snap, false); snap.Level != prev || d.stateLast.news(rec) {
			d.stateLast = rec
			d.mu.Lock()
			d.state = &rec
			d.stateSync = d.stateSync || snap.Level != prev
			d.mu.Unlock()
			d.poke()
		}
	}
	if !d.hwmAt.IsZero() && now.Sub(d.hwmAt) >= hwmReset {
		d.hwm, d.hwmAt = 0, time.Time{}
	}
	step := int64(hwmStep * float64(snap.Limit))
	var reason string
	var force, critical bool
	switch {
	case snap.Level > prev && snap.Level >= LevelElevated && !d.crossed[snap.Level]:
		// Once per level per climb: a level flapping under GC thrash must
		// not rotate the first profiles of the incident away.
		d.crossed[snap.Level] = true
		reason, force = "level "+snap.Level.String(), true
		critical = snap.Level == LevelCritical
		if critical {
			d.critAt = now
		}
	case snap.Level >= LevelHigh && !d.last[0] && snap.TimeToLimit >= 0 && snap.TimeToLimit < lastMomentsTTL:
		// The last moments before a kill: the evidence closest to it.
		// Writing one allocates about 1.4 MB, which the limit may not
		// have; the state record has been written first.
		d.last[0] = true
		reason, force = fmt.Sprintf("last moments: limit in %.1fs", snap.TimeToLimit.Seconds()), true
	case snap.Level >= LevelHigh && !d.last[1] && snap.Pressure() >= lastMomentsPressure:
		d.last[1] = true
		reason, force = fmt.Sprintf("last moments: %.3f of the limit", snap.Pressure()), true
	case snap.Level >= LevelCritical && d.critCount < criticalPerClimb && now.Sub(d.critAt) >= g.cfg.DumpMinInterval:
		// At Critical the kill may come at any moment, and the working set
		// may sit still while the kernel's count of the cgroup's pages
		// rises: a profile every DumpMinInterval, so that the last is at
		// most about that old when the kernel strikes.
		d.critCount++
		d.critAt = now
		reason = "still critical"
	case snap.Level >= LevelElevated && snap.Usage > d.hwm+step && d.hwmCount < hwmPerClimb:
		d.hwmCount++
		reason = "high-water mark"
	case snap.Level >= LevelElevated && !d.ttlFired && snap.TimeToLimit >= 0 && snap.TimeToLimit < g.cfg.DumpBeforeLimit:
		d.ttlFired = true
		reason = fmt.Sprintf("limit in %.1fs", snap.TimeToLimit.Seconds())
	case afterGC && d.pairAfter.Load() != pairNone:
		d.queue(g, snap, pairReason, true, "", d.pairAfter.Swap(pairNone) == pairOnDemand)
		return
	default:
		return
	}
	if snap.Usage > d.hwm {
		d.hwm, d.hwmAt = snap.Usage, now
	}
	d.request(g, snap, reason, force)
	if critical {
		// Leaked goroutines are a common cause of slow growth; and what
		// ran just before, when the flight recorder is on.
		d.queue(g, snap, reason, true, profile.KindGoroutine, false)
		if d.flight != nil {
			d.queue(g, snap, reason, true, profile.KindTrace, false)
		}
	}
}

// request queues a heap profile. Level crossings and pairs bypass the
// store's minimum interval: there are at most three crossings per climb,
// and each is the evidence of its moment.
func (d *dumper) request(g *Guard, snap *Snapshot, reason string, force bool) {
	d.queue(g, snap, reason, force, "", false)
}

// queue queues a file of kind (see profile.Meta.Kind and OnDemand).
func (d *dumper) queue(g *Guard, snap *Snapshot, reason string, force bool, kind string, onDemand bool) {
	m := profile.Meta{
		Kind:     kind,
		Reason:   reason,
		Level:    snap.Level.String(),
		Usage:    snap.Usage,
		Limit:    snap.Limit,
		Heap:     snap.HeapLive,
		Force:    force,
		OnDemand: onDemand,
	}
	d.mu.Lock()
	if len(d.pending) == maxPending {
		d.pending = d.pending[1:]
	}
	d.pending = append(d.pending, m)
	d.mu.Unlock()
	d.poke()
}

// poke wakes the writer.
func (d *dumper) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run writes requested profiles until done closes.
func (d *dumper) run(g *Guard) {
	defer g.wg.Done()
	for {
		select {
		case <-g.done:
			return
		case <-d.wake:
		}
		// The state record first: it is small, and near the limit a
		// profile's 1.4 MB may be what the kernel kills for.
		for {
			d.mu.Lock()
			st, durable := d.state, d.stateSync
			d.state, d.stateSync = nil, false
			var m *profile.Meta
			if st == nil && len(d.pending) > 0 {
				m = &d.pending[0]
				d.pending = d.pending[1:]
			}
			d.mu.Unlock()
			if st != nil {
				d.writeState(g, *st, durable)
				continue
			}
			if m == nil {
				break
			}
			d.write(g, *m)
		}
	}
}

// write stores one profile. A failure is logged and counted, never fatal.
func (d *dumper) write(g *Guard, m profile.Meta) (profile.Meta, error) {
	start := time.Now()
	pair := m.Reason == pairReason
	var got profile.Meta
	var err error
	switch m.Kind {
	case profile.KindGoroutine:
		got, err = d.store.WriteFrom(m, func(w io.Writer) error { return pprof.Lookup("goroutine").WriteTo(w, 0) })
	case profile.KindTrace:
		got, err = d.store.WriteFrom(m, func(w io.Writer) error { _, err := d.flight.WriteTo(w); return err })
	default:
		got, err = d.store.Write(m)
	}
	d.diskBytes.Store(d.store.DiskBytes())
	switch {
	case errors.Is(err, profile.ErrTooSoon):
		g.log.Debug("heap profile skipped: too soon after the previous one", slog.String("reason", m.Reason))
		return got, err
	case errors.Is(err, profile.ErrFull):
		// A refusal, not a fault of the disk.
		g.log.Warn("heap profile on demand not written: the profiles kept from before the previous run's unclean end leave no room",
			slog.String("reason", m.Reason), slog.Any("error", err))
		return got, err
	case err != nil:
		d.failed.Add(1)
		d.faultMu.Lock()
		d.fault.fail(g.log, time.Now(), err, fmt.Sprintf("the %s profile is lost; the guard goes on", m.Reason))
		d.faultMu.Unlock()
		return got, err
	}
	d.faultMu.Lock()
	d.fault.ok(g.log, time.Now())
	d.faultMu.Unlock()
	d.written.Add(1)
	if !pair && m.Kind == "" {
		p := pairTriggered
		if m.OnDemand {
			p = pairOnDemand
		}
		d.pairAfter.Store(p)
	}
	d.mu.Lock()
	if d.climbFirst == "" && got.Level != LevelNormal.String() && m.Kind == "" {
		d.climbFirst = got.Name
	}
	d.mu.Unlock()
	what := "heap profile"
	switch m.Kind {
	case profile.KindGoroutine:
		what = "goroutine profile"
	case profile.KindTrace:
		what = "execution trace"
	}
	g.log.Info(fmt.Sprintf("%s written (%s) at %s of %s: %s", what, got.Reason, humanize.Bytes(got.Usage), humanize.Bytes(got.Limit), got.Name),
		slog.String("level", got.Level), slog.Int64("usage_bytes", got.Usage), slog.Int64("bytes", got.Size),
		slog.Duration("took", time.Since(start)))
	s := g.Snapshot()
	g.publish(Event{Type: EventProfile, Level: s.Level, Previous: s.Level, Snapshot: s, Profile: got.Name})
	return got, nil
}
