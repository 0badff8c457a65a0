// Package recorder keeps the evidence of a guard's run in its DumpDir: the
// heap profiles it writes as pressure rises (with goroutine profiles and
// execution traces at Critical), written on a goroutine of its own so that
// the sampler never waits for the disk, and the state record from which
// the next start on the directory tells how the run ended.
//
// A Recorder is built from the guard's Config values and its logger; the
// guard hands it each reading as a Reading.
package recorder

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

	"github.com/oomguard/oomguard/guard/internal/fault"
	"github.com/oomguard/oomguard/guard/internal/humanize"
	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/profile"
)

const (
	// maxPending bounds the queue of profiles waiting for the writer; past
	// it the oldest request is dropped.
	maxPending = 4
	// PairReason marks the profile taken one GC cycle after a triggered
	// one, so that every incident has a clean pair to diff.
	PairReason = "next GC cycle"
	// RequestedReason marks a profile written on demand (the guard's
	// POST /heap): it and its pair are written with profile.Meta.OnDemand,
	// so that they never delete the profiles kept from before an unclean
	// end (see Recall).
	RequestedReason = "requested"
)

// The pair a written profile asks for at the next GC cycle (Recorder.pairAfter).
const (
	pairNone int32 = iota
	pairTriggered
	pairOnDemand // the pair of a profile written on demand is on demand too
)

// Config is what a Recorder takes of the guard's Config, checked and with
// its defaults.
type Config struct {
	Dir         string        // Config.DumpDir; "" records nothing
	MinInterval time.Duration // Config.DumpMinInterval
	MaxCount    int           // Config.DumpMaxCount
	MaxBytes    int64         // Config.DumpMaxBytes
	BeforeLimit time.Duration // Config.DumpBeforeLimit

	// Flight configures the execution trace flight recorder; nil for none.
	Flight *trace.FlightRecorderConfig

	// Started is when the guard started, for the state record.
	Started time.Time
	// Log receives the recorder's lines.
	Log *slog.Logger
	// Written, if set, is called with the name of every profile written,
	// on the goroutine that wrote it.
	Written func(name string)
}

// Reading is what the recorder takes of one of the guard's readings (its
// Snapshot). Sizes are in bytes.
type Reading struct {
	Time        time.Time // the wall clock's
	Level       level.Level
	Usage       int64
	Limit       int64
	Pressure    float64 // Usage as a fraction of Limit
	Heap        int64   // the live Go heap
	GrowthRate  float64 // bytes per second
	TimeToLimit time.Duration
	OOMKills    int64 // -1 unknown
	InFlight    int64
	Leak        bool
}

// Recorder decides when to write heap profiles and writes them on a
// goroutine of its own, one at a time, and keeps the state record.
type Recorder struct {
	cfg   Config
	log   *slog.Logger
	store *profile.Store

	mu      sync.Mutex
	pending []profile.Meta // profiles to write, oldest first; bounded by maxPending
	wake    chan struct{}

	// Sampler-owned trigger state.
	hwm          int64
	hwmAt        time.Time
	hwmCount     int
	critCount    int
	critAt       time.Time // the last forced profile asked for at Critical, on the steady clock
	ttlFired     bool
	lastTTL      int          // the last-moments steps of lastMomentsTTL passed in this climb
	lastPressure bool         // the last-moments profile at lastMomentsPressure was written in this climb
	crossed      [4]bool      // levels whose crossing was profiled in this climb
	pairAfter    atomic.Int32 // a profile was written: take its pair at the next GC (pairTriggered or pairOnDemand)

	written, failed, diskBytes atomic.Int64

	// The flight recorder, when Config.Flight is set and the runtime let
	// it start.
	flight *trace.FlightRecorder

	// The state record: the latest waiting for the writer (under mu), when
	// the sampler last asked for one, and the first profile of the climb.
	state       *State
	stateSync   bool      // the waiting record must reach the disk: it tells of a new level
	stateAt     time.Time // when the sampler last looked at the record (sampler-owned)
	stateLast   State     // the record it last queued (sampler-owned)
	climbFirst  string
	stateFailed atomic.Int64
	stateFault  fault.Fault // writer-owned
	// The profiles' writes: the writer's, and the guard's on demand.
	faultMu    sync.Mutex
	writeFault fault.Fault
}

// Open opens the profile store in cfg.Dir, and returns nil without one. A
// Dir that another guard has open, or that the store refuses as unsafe
// (see profile.Options.Dir), leaves profiles off, logged at WARN or ERROR,
// and the guard running; any other error fails the guard's Start.
func Open(cfg Config) (*Recorder, error) {
	if cfg.Dir == "" {
		return nil, nil
	}
	s, err := profile.Open(profile.Options{
		Dir:         cfg.Dir,
		MinInterval: cfg.MinInterval,
		MaxCount:    cfg.MaxCount,
		MaxBytes:    cfg.MaxBytes,
	})
	if errors.Is(err, profile.ErrLocked) {
		// As with guard/auto and a guard.Start in one process: two
		// guards on one directory would delete each other's temporary
		// files and overwrite one state record.
		cfg.Log.Warn("heap profiles are off: Config.DumpDir is in use by another guard; the guard goes on without them",
			slog.String("dir", cfg.Dir), slog.Any("error", err))
		return nil, nil
	}
	if errors.Is(err, profile.ErrUnsafeDir) {
		// Profiles are evidence, not protection: the guard goes on
		// without them rather than leave the service unguarded.
		cfg.Log.Error("heap profiles are off: Config.DumpDir is unsafe; the guard goes on without them",
			slog.String("dir", cfg.Dir), slog.Any("error", err))
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("guard: Config.DumpDir = %q: %w", cfg.Dir, err)
	}
	r := &Recorder{cfg: cfg, log: cfg.Log, store: s, wake: make(chan struct{}, 1)}
	// A full or read-only disk fails every write until it is fixed: an
	// ERROR when that starts, and an INFO when it ends.
	r.writeFault = fault.Fault{What: "heap profile write", Level: slog.LevelError}
	r.stateFault = fault.Fault{What: "state record write", Level: slog.LevelError}
	if fc := cfg.Flight; fc != nil {
		fr := trace.NewFlightRecorder(*fc)
		if err := fr.Start(); err != nil {
			r.log.Warn("execution trace flight recorder not started", slog.Any("error", err))
		} else {
			r.flight = fr
		}
	}
	r.diskBytes.Store(s.DiskBytes())
	if n := len(s.List()); n > 0 {
		r.log.Info("heap profiles from before this start", slog.Int("count", n), slog.String("dir", cfg.Dir))
	}
	return r, nil
}

// Close stops the flight recorder and closes the store, which releases
// the directory for another guard; the Recorder may be nil. Nothing is
// written after it.
func (r *Recorder) Close() {
	if r == nil {
		return
	}
	if r.flight != nil {
		r.flight.Stop()
		r.flight = nil
	}
	r.store.Close()
}

// Store is the profile store, for the guard's DebugHandler.
func (r *Recorder) Store() *profile.Store { return r.store }

// Written counts the profiles written since Open; Failed the writes that
// failed; DiskBytes is the bytes the store holds on disk.
func (r *Recorder) Written() int64   { return r.written.Load() }
func (r *Recorder) Failed() int64    { return r.failed.Load() }
func (r *Recorder) DiskBytes() int64 { return r.diskBytes.Load() }

// ClimbFirst names the first heap profile of the climb in progress from
// Normal; "" when none.
func (r *Recorder) ClimbFirst() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.climbFirst
}

// Request queues a heap profile of the reading rd. A forced one bypasses
// the store's minimum interval, as level crossings and pairs do: there are
// at most three crossings per climb, and each is the evidence of its
// moment.
func (r *Recorder) Request(rd *Reading, reason string, force bool) {
	r.queue(rd, reason, force, "", false)
}

// queue queues a file of kind (see profile.Meta.Kind and OnDemand).
func (r *Recorder) queue(rd *Reading, reason string, force bool, kind string, onDemand bool) {
	m := profile.Meta{
		Kind:     kind,
		Reason:   reason,
		Level:    rd.Level.String(),
		Usage:    rd.Usage,
		Limit:    rd.Limit,
		Heap:     rd.Heap,
		Force:    force,
		OnDemand: onDemand,
	}
	r.mu.Lock()
	if len(r.pending) == maxPending {
		r.pending = r.pending[1:]
	}
	r.pending = append(r.pending, m)
	r.mu.Unlock()
	r.poke()
}

// poke wakes the writer.
func (r *Recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run writes the requested profiles and state records until done closes.
func (r *Recorder) Run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-r.wake:
		}
		// The state record first: it is small, and near the limit a
		// profile's 1.4 MB may be what the kernel kills for.
		for {
			r.mu.Lock()
			st, durable := r.state, r.stateSync
			r.state, r.stateSync = nil, false
			var m *profile.Meta
			if st == nil && len(r.pending) > 0 {
				m = &r.pending[0]
				r.pending = r.pending[1:]
			}
			r.mu.Unlock()
			if st != nil {
				r.writeState(*st, durable)
				continue
			}
			if m == nil {
				break
			}
			r.Write(*m)
		}
	}
}

// Write stores one profile. A failure is logged and counted, never fatal.
func (r *Recorder) Write(m profile.Meta) (profile.Meta, error) {
	start := time.Now()
	pair := m.Reason == PairReason
	var got profile.Meta
	var err error
	switch m.Kind {
	case profile.KindGoroutine:
		got, err = r.store.WriteFrom(m, func(w io.Writer) error { return pprof.Lookup("goroutine").WriteTo(w, 0) })
	case profile.KindTrace:
		got, err = r.store.WriteFrom(m, func(w io.Writer) error { _, err := r.flight.WriteTo(w); return err })
	default:
		got, err = r.store.Write(m)
	}
	r.diskBytes.Store(r.store.DiskBytes())
	switch {
	case errors.Is(err, profile.ErrTooSoon):
		r.log.Debug("heap profile skipped: too soon after the previous one", slog.String("reason", m.Reason))
		return got, err
	case errors.Is(err, profile.ErrFull):
		// A refusal, not a fault of the disk.
		r.log.Warn("heap profile on demand not written: the profiles kept from before the previous run's unclean end leave no room",
			slog.String("reason", m.Reason), slog.Any("error", err))
		return got, err
	case err != nil:
		r.failed.Add(1)
		r.faultMu.Lock()
		r.writeFault.Fail(r.log, time.Now(), err, fmt.Sprintf("the %s profile is lost; the guard goes on", m.Reason))
		r.faultMu.Unlock()
		return got, err
	}
	r.faultMu.Lock()
	r.writeFault.OK(r.log, time.Now())
	r.faultMu.Unlock()
	r.written.Add(1)
	if !pair && m.Kind == "" {
		p := pairTriggered
		if m.OnDemand {
			p = pairOnDemand
		}
		r.pairAfter.Store(p)
	}
	r.mu.Lock()
	if r.climbFirst == "" && got.Level != level.Normal.String() && m.Kind == "" {
		r.climbFirst = got.Name
	}
	r.mu.Unlock()
	what := "heap profile"
	switch m.Kind {
	case profile.KindGoroutine:
		what = "goroutine profile"
	case profile.KindTrace:
		what = "execution trace"
	}
	r.log.Info(fmt.Sprintf("%s written (%s) at %s of %s: %s", what, got.Reason, humanize.Bytes(got.Usage), humanize.Bytes(got.Limit), got.Name),
		slog.String("level", got.Level), slog.Int64("usage_bytes", got.Usage), slog.Int64("bytes", got.Size),
		slog.Duration("took", time.Since(start)))
	if r.cfg.Written != nil {
		r.cfg.Written(got.Name)
	}
	return got, nil
}
