// Package guard keeps a Go service alive inside its memory limit, and
// leaves the evidence of what filled it.
//
// Start reads the process's effective memory limit (cgroup v1 or v2, with
// ancestors and memory.high, else the machine's memory), sets GOMEMLIMIT
// from it, and samples the container's working set and the Go runtime
// without stopping the world. Pressure moves the guard through four levels
// with hysteresis, Normal, Elevated, High and Critical, which subscribers,
// readiness and heap profiles follow.
//
// Middleware, Enter and the gRPC interceptors of package grpcguard count
// every request in flight and shed work by Priority before the kernel's OOM
// killer ends the process: the work in flight, at the cost per request the
// guard learns from the memory work uses (or the bytes requests declare),
// stays below a target just under the Critical threshold. Work that holds
// little is not shed for memory it does not hold. With Config.DumpDir the
// guard writes heap profiles as pressure rises, and DebugHandler serves
// them.
//
//	g, err := guard.Start(ctx, guard.Config{DumpDir: "/var/lib/app/heap"})
//	if err != nil {
//		return err
//	}
//	defer g.Stop()
//	http.Handle("/", g.Middleware(app))
package guard

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oomguard/oomguard/guard/internal/recorder"
	"github.com/oomguard/oomguard/guard/internal/statuspage"
	"github.com/oomguard/oomguard/internal/cgroup"
)

// cacheLine is the size the hot counters are padded to: 64 bytes on amd64
// and most arm64 cores.
const cacheLine = 64

// Guard watches the process's memory. Its methods are safe for concurrent
// use. Make one with Start.
//
// Guard admits work five ways: Middleware, Enter, EnterBytes, Reserve and
// Admit. Most HTTP services should use Middleware, and gRPC services the
// interceptors of package grpcguard, which call Enter.
//
// Middleware, Enter and EnterBytes each admit one unit of work and count
// it in flight until it ends, or count a refusal when they shed it. They
// differ in what the work declares and who answers a refusal.
// Middleware wraps an http.Handler: it gives each request its priority
// (Config.Classifier), declares its Content-Length and Config.Cost, and
// answers a shed request itself with 503 and Retry-After, or 413.
// Enter is for work that is not an HTTP request, such as a job taken from
// a queue: it declares nothing, and the guard learns what such work holds
// from the memory it uses.
// EnterBytes is Enter for work that knows the bytes it will hold, such as
// a body it reads whole: they count exactly, instead of the learned cost.
//
// Reserve and Admit admit no unit of work.
// Reserve is for a large allocation inside work already admitted, once
// the handler knows its size: it declares the bytes until released, and
// fails fast when they do not fit.
// Admit only asks whether work of a priority would be admitted now, with
// two atomic loads, and counts nothing: it is for a choice made before
// there is work to count, such as whether to take from a queue at all; the
// work then taken still calls Enter.
type Guard struct {
	cfg Config
	log *slog.Logger
	// plain is a Config without Cost or ReportLoad: the middleware's fast
	// path has nothing to add to a request or its response.
	plain bool
	gml   goMemLimit

	level atomic.Int32
	snap  atomic.Pointer[Snapshot]

	// Admission: what the hot path loads (limits, room) and the counters it
	// keeps. Work in flight is admitted minus finished; declared bytes are
	// those of Reserve, Config.Cost and Content-Length.
	//
	// Every request writes admitted and finished; the sampler writes
	// limits every 2ms and the hot path reads it. Each pair of writers
	// gets its own cache line, apart from the fields around them: where
	// the Guard's layout happened to put them decided whether the
	// middleware took 24 or 45-90ns a request on two cores (b.RunParallel).
	_        [cacheLine]byte
	limits   atomic.Uint64 // a limits word
	_        [cacheLine - 8]byte
	admitted atomic.Uint64
	finished atomic.Uint64
	_        [cacheLine - 16]byte

	declared      atomic.Int64
	declaredTotal atomic.Uint64 // declared bytes ever admitted
	room          atomic.Int64  // bytes declared work may hold, Default priority
	sheddableRoom atomic.Int64
	largeReserve  atomic.Int64 // room only declared requests of largeSize or more may use
	largeSize     atomic.Int64
	largeDeclared atomic.Int64 // declared bytes in flight of requests counted as large
	largeWaiting  atomic.Int64 // the largest declared request refused since the last reading
	ceiling       atomic.Int64 // the most bytes one unit of work may declare: the admission target
	tooLarge      atomic.Int64 // work refused for declaring more than ceiling
	shedForTime   atomic.Int64 // refusals while the time bound was the tighter
	shedLate      atomic.Int64 // work refused for a deadline nearer than recent work took
	timeTighter   atomic.Bool  // the time bound is below the memory bound
	shortest      atomic.Int64 // ns: recent work took longer than this, nearly all of it; 0 unknown
	tookRing      tookRing
	starts        startTable      // when the work in flight under the time bound was admitted
	shed          [3]atomic.Int64 // by Priority.index
	cancelled     atomic.Int64
	readyAfter    atomic.Int64 // unix ns before which ReadyHandler says 503
	freeing       atomic.Bool
	cancellable   cancellable
	load          loadGauge                // the sampler's, for Load
	loadText      atomic.Pointer[loadText] // the last load report header

	// Owned by the sampler goroutine after Start.
	sampler sampler
	rec     *recorder.Recorder // profiles and the state record; nil without Config.DumpDir

	eventsDropped atomic.Int64
	readErrors    atomic.Int64

	subMu   sync.Mutex
	subs    map[*subscriber]struct{}
	subWG   sync.WaitGroup
	stopped bool

	done      chan struct{}
	kick      chan struct{} // a refusal at the idle pace: read at once
	idlePace  atomic.Bool   // the sampler reads at idleQuickEvery
	wg        sync.WaitGroup
	stopOnce  sync.Once
	stopMu    sync.Mutex
	stopCtx   func() bool // deregisters the context's AfterFunc
	stopping  bool        // set by Stop under stopMu: no new work joins wg
	gcWatch   *gcWatch
	startedAt time.Time

	postmortem *PostMortem          // the previous run on DumpDir, from Start
	recalled   *recorder.PostMortem // the same, as the recorder concluded it
	off        bool                 // switched off by the environment
	notify     *notifier            // kernel notifications; owned by the sampler goroutine after Start
	history    statuspage.History   // the status page's last ten minutes
}

// Start checks cfg, detects the effective limit, takes GOMEMLIMIT and starts
// sampling. The guard runs until Stop, or until ctx is done. A bad Config
// returns a *ConfigError naming the field and its value.
func Start(ctx context.Context, cfg Config) (*Guard, error) {
	return start(ctx, cfg, cgroup.Self)
}

// start is Start with the way to find the process's memory cgroup, which
// the sampler calls again when the cgroup's files stop answering.
func start(ctx context.Context, cfg Config, find func() (*cgroup.Group, error)) (*Guard, error) {
	if ctx == nil {
		return nil, errors.New("guard: nil context")
	}
	cfg, off, overrides, err := cfg.fromEnv(lookupEnv)
	if err != nil {
		return nil, err
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	g := newGuard(cfg)
	for _, o := range overrides {
		g.log.Info("configuration from the environment overrides Config", slog.String("variable", o.name), slog.String("value", o.value))
	}
	if off {
		g.log.Info("oomguard is off (" + EnvSwitch + "=off): it sheds nothing, writes nothing and leaves GOMEMLIMIT alone")
		return g.inert(), nil
	}

	if g.rec, err = g.openRecorder(); err != nil {
		return nil, err
	}
	group, err := find()
	if err != nil && !errors.Is(err, cgroup.ErrNoMemoryController) {
		g.log.Warn("memory cgroup unreadable; using process memory", slog.Any("error", err))
	}
	if err := g.sampler.init(g, group, find); err != nil {
		g.rec.Close()
		return nil, err
	}
	if err := g.claimGoMemLimit(cfg.MemoryLimitRatio); err != nil {
		g.sampler.close()
		g.rec.Close()
		return nil, err
	}
	g.setGoMemLimit(g.sampler.limit)
	g.sampler.sample(time.Now(), false)
	g.notify = g.startNotify(group)
	g.sayStarted()
	if r := g.rec; r != nil {
		// Before this run's first record replaces the last run's.
		snap := g.Snapshot()
		g.recalled = r.Recall(snap.OOMKills)
		g.postmortem = postMortem(g.recalled)
		r.WriteState(reading(&snap), false)
	}
	g.gcWatch = watchGC()
	g.wg.Add(1)
	go g.run()
	if r := g.rec; r != nil {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			r.Run(g.done)
		}()
	}
	// With ctx already done, AfterFunc runs Stop at once, concurrently.
	stop := context.AfterFunc(ctx, func() { g.Stop() })
	g.stopMu.Lock()
	g.stopCtx = stop
	g.stopMu.Unlock()
	return g, nil
}

// Stop ends every goroutine the guard started, waits for them, and restores
// GOMEMLIMIT to its value before Start. It is safe to call more than once.
func (g *Guard) Stop() error {
	g.stopOnce.Do(func() {
		g.stopMu.Lock()
		g.stopping = true
		if g.stopCtx != nil {
			g.stopCtx()
		}
		g.stopMu.Unlock()
		close(g.done)
		g.gcWatch.stop()
		g.wg.Wait()
		g.notify.close()
		if r := g.rec; r != nil {
			snap := g.Snapshot()
			r.WriteState(reading(&snap), true)
		}
		g.rec.Close()
		g.stopSubscribers()
		g.sampler.close()
		g.releaseGoMemLimit()
		g.admitAll()
		if !g.off {
			g.log.Info("guard stopped")
		}
	})
	return nil
}

// admitAll puts the guard in the state of a stopped or switched-off guard:
// it admits everything and reports ready, since it no longer knows better.
func (g *Guard) admitAll() {
	g.limits.Store(uint64(unlimited))
	g.room.Store(math.MaxInt64 / 2)
	g.sheddableRoom.Store(math.MaxInt64 / 2)
	g.largeReserve.Store(0)
	g.largeSize.Store(0)
	g.ceiling.Store(unarmedCeiling)
	g.timeTighter.Store(false)
	g.shortest.Store(0)
	g.level.Store(int32(LevelNormal))
	g.readyAfter.Store(0)
	g.load.set(Load{})
}

// Off returns a guard that is switched off, as OOMGUARD=off makes one: it
// watches nothing, admits everything, writes nothing, leaves GOMEMLIMIT
// alone and logs nothing. Every method works on it, and Stop is harmless.
// It is what a service runs with when Start fails and it must go on:
//
//	g, err := guard.Start(ctx, cfg)
//	if err != nil {
//		slog.Error("oomguard", "error", err)
//		g = guard.Off()
//	}
func Off() *Guard {
	cfg, _ := Config{Logger: slog.New(slog.DiscardHandler)}.withDefaults()
	return newGuard(cfg).inert()
}

// newGuard makes a guard of cfg, checked, that does nothing yet.
func newGuard(cfg Config) *Guard {
	g := &Guard{
		cfg:         cfg,
		log:         cfg.Logger,
		subs:        map[*subscriber]struct{}{},
		cancellable: cancellable{entries: map[*inflightEntry]struct{}{}},
		done:        make(chan struct{}),
		kick:        make(chan struct{}, 1),
		startedAt:   time.Now(),
		plain:       cfg.Cost == nil && !cfg.ReportLoad,
	}
	g.starts.base = g.startedAt
	if g.log == nil {
		g.log = slog.Default()
	}
	g.log = g.log.With(slog.String("component", "oomguard"))
	return g
}

// inert makes g a guard switched off: it watches nothing, admits
// everything, writes nothing and leaves GOMEMLIMIT alone.
func (g *Guard) inert() *Guard {
	g.off = true
	g.snap.Store(&Snapshot{Time: time.Now(), Off: true, OOMKills: -1, GoMemLimit: debug.SetMemoryLimit(-1), GoMemLimitSource: GoMemLimitUnchanged})
	g.admitAll()
	return g
}

// join counts work outside the guard's own goroutines, such as an HTTP
// request writing a profile, so that Stop waits for it; false once Stop
// has begun.
func (g *Guard) join() bool {
	g.stopMu.Lock()
	defer g.stopMu.Unlock()
	if g.stopping {
		return false
	}
	g.wg.Add(1)
	return true
}

// Level returns the current level: one atomic load.
func (g *Guard) Level() Level { return Level(g.level.Load()) }

// Snapshot returns the latest reading, with the admission counters as of now.
func (g *Guard) Snapshot() Snapshot {
	s := *g.snap.Load()
	s.Shed = ShedCounts{
		Sheddable: g.shed[0].Load(),
		Default:   g.shed[1].Load(),
		Critical:  g.shed[2].Load(),
	}
	s.InFlight = max(0, g.inFlight())
	s.Admitted = int64(g.admitted.Load())
	s.Reserved = g.declared.Load()
	s.Cancelled = g.cancelled.Load()
	s.TooLarge = g.tooLarge.Load()
	s.ShedForTime = g.shedForTime.Load()
	s.ShedLate = g.shedLate.Load()
	s.EventsDropped = g.eventsDropped.Load()
	s.ReadErrors = g.readErrors.Load()
	s.PreviousRunOOMKilled = g.postmortem != nil && g.postmortem.LikelyOOMKilled
	if r := g.rec; r != nil {
		s.ProfilesWritten = r.Written()
		s.ProfileErrors = r.Failed()
		s.ProfileDiskBytes = r.DiskBytes()
	}
	return s
}
