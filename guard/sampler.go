package guard

import (
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/oomguard/oomguard/guard/internal/fault"
	"github.com/oomguard/oomguard/guard/internal/humanize"
	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/internal/admission"
	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/latency"
	"github.com/oomguard/oomguard/internal/rightsize"
	"github.com/oomguard/oomguard/internal/runtimestats"
)

const (
	// limitRefresh is how often, at most, the limit is read again, so that
	// a pod resized in place gets a new GOMEMLIMIT and new thresholds
	// within a second (Kubernetes resizes in place since 1.35): at idle,
	// at every full sample (500ms apart). It reads a few small files: tens
	// of microseconds each time.
	limitRefresh = 400 * time.Millisecond
	// oomRefresh is how often the cgroup's OOM-kill counter is read: it
	// only tells of past kills, and reading it costs as much as a sample.
	oomRefresh = time.Second
	// refindEvery is how often, while the cgroup's files fail, the guard
	// looks for the process's memory cgroup again: a cgroup removed
	// under a process answers ENODEV from then on, and the process has
	// moved to another (a runtime that rebuilt its hierarchy, a systemd
	// reload). Looking reads /proc/self/cgroup and mountinfo.
	refindEvery = time.Second
	// growthTau is the time constant of the smoothed growth rate that the
	// Snapshot reports; burstTau that of the fast one that paces sampling.
	growthTau = time.Second
	burstTau  = 100 * time.Millisecond
	// quickEvery is the pace of the quick reading between full samples:
	// the Go runtime's own figures (about 2µs, no file read), which see a
	// step of the heap within milliseconds and feed admission. A step that
	// would move the level triggers a full sample at once.
	quickEvery = 2 * time.Millisecond
	// idleQuickEvery is the quick reading's pace when no work is in flight
	// and the heap has not grown for busyFor: a timer wake-up costs tens of
	// microseconds on a virtual machine, and each wakes the runtime's
	// sysmon from its idle sleep: 2ms of them took 4% of a core, 50ms
	// 0.6%, 100ms 0.3% (BenchmarkIdleCPU). A step of the heap while idle
	// still shows at once: past the heap goal it starts a GC cycle, and the
	// guard samples after every cycle; work refused at the idle pace wakes
	// the sampler (see untake).
	idleQuickEvery = 100 * time.Millisecond
	busyFor        = time.Second
	busyAlloc      = 1 << 20
	// offHeapTau is how slowly the memory outside Go may fall (see
	// sampler.offHeap).
	offHeapTau = time.Second
	// halvingSpan is how much pressure past half the Elevated threshold
	// halves the interval: with the defaults from 500ms at 0.35 to 31ms at
	// 0.55 and stillEvery from 0.6. A burst can fill the rest of the limit
	// within one slow interval, so the guard samples fast long before the
	// levels move.
	halvingSpan = 0.05
	// stillEvery is the shortest interval for memory that sits still, and
	// the closest full samples after GC cycles unless memory climbs: a
	// process idle at 0.87 of its limit, as one with a cache sized to the
	// container is, spent 10% of a core on full samples every 2ms and
	// quick readings held at 2ms by the level (BenchmarkIdleCPU/high; 2.5%
	// with this), and a GC pinned at GOMEMLIMIT ends a cycle every few ms.
	// A step there is seen as it happens all the same: in Go's heap by the
	// quick reading and the GC hook, in the kernel's count by the v1
	// thresholds. A climb shortens the interval to a tenth of the time to
	// the limit, down to MinInterval.
	stillEvery = 20 * time.Millisecond
)

// sampler owns the readers and the state between readings. Only the
// sampler goroutine touches it after Start.
type sampler struct {
	g           *Guard
	find        func() (*cgroup.Group, error)
	group       *cgroup.Group
	cg          *cgroup.Reader // nil without a memory cgroup
	clock       steadyClock
	rt          *runtimestats.Reader
	gcCPU       runtimestats.GCCPU
	levels      levels
	shed        shedder
	limit       effectiveLimit
	limitAt     time.Time
	usageSource UsageSource

	last      time.Time
	lastUsage int64
	rate      float64 // bytes per second, smoothed
	interval  time.Duration
	oomKills  int64     // -1 = unknown
	kernelAt  time.Time // when the OOM kills, events and pressure were last read
	events    MemoryEvents
	pressure  MemoryPressure
	hasEvents bool // the kernel gave memory.events
	hasPSI    bool // and memory.pressure

	burstRate float64 // bytes per second, smoothed over burstTau

	// The last full reading's kernel figure, carried between them, and the
	// memory outside the Go runtime: the kernel's figure less what Go holds.
	// It follows a rise at once and a fall over offHeapTau, because Go
	// counts a fresh allocation before the program touches its pages and
	// the kernel after.
	fullUsage  int64
	offHeap    float64
	offHeapNow int64 // the same at the last full reading, unsmoothed

	thrash   bool // the GC thrashing at the last full sample
	behind   bool // and unable to keep up: its CPU limiter engaged
	leakSaid bool // the leak in progress was logged

	// Activity, for the quick reading's pace.
	busyUntil time.Time
	seenAdm   uint64
	seenAlloc uint64
	nextFull  time.Time

	cpu cpuQuota // the CPU quota, for the time bound

	rightsize rightsize.Policy // the recommended limit (recommend.go)

	limiterCycle uint64 // last /gc/limiter/last-enabled seen
	limiterAt    time.Time

	gcCycles uint64    // GC cycles seen at the last sample
	lastGC   time.Time // when a sample first saw the newest cycle

	// Faults of the cgroup's files; while either lasts, the cgroup is
	// looked for again every refindEvery.
	usageFault, limitFault fault.Fault
	refindAt               time.Time
	machine                int64 // the machine's memory in bytes; 0 = unknown
}

func (s *sampler) init(g *Guard, group *cgroup.Group, find func() (*cgroup.Group, error)) error {
	s.g, s.find = g, find
	s.usageFault = fault.Fault{What: "memory cgroup usage", Level: slog.LevelWarn}
	s.limitFault = fault.Fault{What: "memory limit", Level: slog.LevelWarn}
	if m, err := memlimit.FromSystem(); err == nil {
		s.machine = int64(min(m, math.MaxInt64))
	}
	s.rt = runtimestats.NewReader()
	s.levels = newLevels(g.cfg.Thresholds, g.cfg.Hysteresis, g.cfg.Dwell)
	s.shed.policy = admission.New(admission.Config{Critical: g.cfg.Thresholds.Critical})
	if !g.cfg.DisableTimeBound {
		s.shed.time = &latency.Policy{}
		s.cpu.refind() // none: the run queue alone
	}
	s.interval = g.cfg.Interval
	// The runtime updates GC CPU figures only at the end of a cycle: a
	// quiet spell shorter than this is not taken as an idle GC.
	s.gcCPU.StaleAfter = max(2*time.Second, 4*g.cfg.Interval)
	s.usageSource = UsageFromRuntime
	s.oomKills = -1
	if _, ok := processRSS(); ok {
		s.usageSource = UsageFromRSS
	}
	if group != nil {
		r, err := group.NewReader()
		if err != nil {
			g.log.Warn("memory cgroup usage unreadable; using process memory", slog.String("cgroup", group.Dir), slog.Any("error", err))
			group = nil
		} else {
			s.group, s.cg = group, r
		}
	}
	l, err := detectLimit(g.cfg.Limit, s.group)
	if err != nil {
		s.close()
		return err
	}
	s.limit, s.limitAt = l, time.Now()
	s.usage(s.rt.Read(), s.limitAt) // sets usageSource
	return nil
}

func (s *sampler) close() {
	if s.cg != nil {
		s.cg.Close()
		s.cg = nil
	}
}

// run is the sampler loop: a quick reading of the Go runtime every
// quickEvery while there is work or allocation (idleQuickEvery when idle),
// and a full sample (the kernel's figures too) at an interval that shrinks
// with headroom, after every GC cycle, and at once when a quick reading
// would move the level.
func (g *Guard) run() {
	defer g.wg.Done()
	s := &g.sampler
	timer := time.NewTimer(quickEvery)
	defer timer.Stop()
	gc := false // a GC cycle ended since the last full sample
	// The channels of the notifier in force; refind replaces it when the
	// cgroup is found again.
	taken := g.notify
	th, events, local, psi, systemd := taken.chans()
	for {
		kernel := false // a kernel notification: sample at once
		select {
		case <-g.done:
			return
		case <-timer.C:
		case <-g.gcWatch.c:
			gc = true
		case <-g.kick:
		case <-th[0]:
			kernel = true
		case <-th[1]:
			kernel = true
		case <-th[2]:
			kernel = true
		case <-events:
			kernel = true
		case <-local:
			kernel = true
		case <-psi:
			kernel = true
		case <-systemd:
			kernel = true
			g.onSystemd(time.Now())
		}
		now := time.Now()
		if kernel {
			s.kernelAt = time.Time{} // read events and pressure now
		}
		// A burst of GC cycles (a GC pinned at GOMEMLIMIT ends one every
		// few ms) samples no faster than stillEvery, or the interval if
		// shorter (memory climbs); a quick reading still sees a step, and
		// the next full sample still knows a cycle ended.
		full := kernel || !now.Before(s.nextFull) || (gc && now.Sub(s.last) >= min(s.interval, stillEvery))
		if !full && s.quick(now) {
			full = true
		}
		if full {
			s.sample(now, gc)
			gc = false
		}
		if g.notify != taken {
			taken = g.notify
			th, events, local, psi, systemd = taken.chans()
		}
		pace := s.pace(now)
		g.idlePace.Store(pace > quickEvery)
		timer.Reset(max(0, min(pace, time.Until(s.nextFull))))
	}
}

// sample takes one reading of every signal, moves the level, publishes the
// Snapshot and picks the next interval.
func (s *sampler) sample(wall time.Time, afterGC bool) {
	g := s.g
	now := s.clock.at(wall)
	if now.Sub(s.limitAt) >= limitRefresh {
		s.refreshLimit(now)
	}
	rs := s.rt.Read()
	usage := s.withGo(s.usage(rs, now), rs, now)
	if rs.GCCycles != s.gcCycles || s.lastGC.IsZero() {
		s.gcCycles, s.lastGC = rs.GCCycles, now
	}

	if !s.last.IsZero() {
		if dt := now.Sub(s.last).Seconds(); dt > 0 {
			inst := float64(usage-s.lastUsage) / dt
			s.rate += (1 - math.Exp(-dt/growthTau.Seconds())) * (inst - s.rate)
			s.burstRate += (1 - math.Exp(-dt/burstTau.Seconds())) * (inst - s.burstRate)
		}
	}
	s.last, s.lastUsage = now, usage

	ttl := timeTo(s.limit.bytes-usage, s.rate)
	// The time to the limit at the growth rate smoothed over burstTau, which
	// a burst moves within milliseconds: it paces sampling, not the Snapshot.
	fastTTL := timeTo(s.limit.bytes-usage, s.burstRate)
	gcFrac := s.gcCPU.Update(rs, now)
	// A sustained full stall on memory (v2 PSI) is thrashing too, and
	// like the limiter a sign that the GC is behind, not only busy.
	s.behind = s.limiterEngaged(rs, now) || s.pressure.FullAvg10 >= fullStallThrash
	thrash := s.behind || gcFrac >= g.cfg.GCThrashFraction
	s.thrash = thrash

	pressure := float64(usage) / float64(s.limit.bytes)
	prev := Level(g.level.Load())
	lvl := s.levels.next(pressure, thrash, now)
	s.interval = s.nextInterval(pressure, minTTL(ttl, fastTTL))
	s.nextFull = now.Add(s.interval)

	if s.cg != nil && now.Sub(s.kernelAt) >= oomRefresh {
		s.kernelAt = now
		if e, ok := s.cg.Events(); ok {
			s.events, s.hasEvents = MemoryEvents{High: e.High, Max: e.Max, OOM: e.OOM, OOMKill: e.OOMKill}, true
		}
		if p, ok := s.cg.Pressure(); ok {
			s.pressure, s.hasPSI = MemoryPressure{SomeAvg10: p.Some.Avg10, FullAvg10: p.Full.Avg10, Some: p.Some.Total, Full: p.Full.Total}, true
		}
		if n, ok := s.cg.OOMKills(); ok {
			if s.oomKills >= 0 && n > s.oomKills {
				g.sayOOMKills(s.oomKills, n)
			}
			s.oomKills = n
		}
	}
	snap := &Snapshot{
		Time:              wall,
		Level:             lvl,
		Limit:             s.limit.bytes,
		LimitSource:       s.limit.source,
		LimitDetail:       s.limit.detail,
		GoMemLimit:        rs.GoMemLimit,
		GoMemLimitSource:  g.gml.source,
		Usage:             usage,
		UsageSource:       s.usageSource,
		Committed:         min(usage, max(0, usage-rs.Reclaimable())),
		HeapLive:          rs.HeapLive,
		HeapGoal:          rs.HeapGoal,
		GoResident:        rs.GoResident(),
		GCCPUFraction:     gcFrac,
		GCThrashing:       thrash,
		GrowthRate:        s.rate,
		TimeToLimit:       ttl,
		OOMKills:          s.oomKills,
		Notifications:     g.notify.names(),
		MemoryEvents:      s.events,
		MemoryPressure:    s.pressure,
		HasMemoryEvents:   s.hasEvents,
		HasMemoryPressure: s.hasPSI,
		Interval:          s.interval,
		InFlight:          max(0, g.inFlight()),
	}
	s.admit(now, rs, usage, true)
	d := s.shed.decision
	g.fitGoMemLimit(d.TailRoom)
	snap.InFlightLimit, snap.WorkCost, snap.AdmissionTarget = d.Limit, d.Cost, d.Target
	if t := s.shed.timeDec; t.Limit > 0 {
		snap.InFlightLimit = min(snap.InFlightLimit, t.Limit)
		snap.TimeLimit = t.Limit
	}
	snap.CPUQueue = s.shed.timeDec.Queue
	snap.TimeInFlight, snap.UncongestedTimeInFlight = s.shed.timeDec.TimeInFlight, s.shed.timeDec.Uncongested
	snap.LeakSuspected = d.Leak
	if d.Leak && !s.leakSaid {
		g.sayLeak(d.LeakRate)
	}
	s.leakSaid = d.Leak
	s.recommend(now, snap, d)
	g.snap.Store(snap)
	g.level.Store(int32(lvl))
	if lvl >= LevelCritical {
		s.shed.atCritical(g, now)
	}
	if g.rec != nil {
		g.rec.Triggers(level.Level(prev), reading(snap), now, afterGC)
	}
	if lvl != prev {
		g.sayLevel(prev, snap)
		g.publish(Event{Type: EventLevel, Level: lvl, Previous: prev, Snapshot: *snap})
	}
	g.addHistory(snap, now)
}

// quick takes the quick reading between full samples: the Go runtime's
// figures alone, with the kernel's carried from the last full sample. It
// reports whether the level would rise on them, when a full sample must
// follow at once.
func (s *sampler) quick(wall time.Time) (levelUp bool) {
	now := s.clock.at(wall)
	rs := s.rt.Read()
	usage := max(s.fullUsage, rs.GoResident()+int64(s.offHeap))
	s.admit(now, rs, usage, false)
	p := float64(usage) / float64(s.limit.bytes)
	return s.levels.at(p, 0) > Level(s.g.level.Load())
}

// admit feeds one reading to the admission policy and publishes its
// decision.
func (s *sampler) admit(now time.Time, rs runtimestats.Stats, usage int64, fresh bool) {
	g := s.g
	r := admission.Reading{
		Now:         now,
		LimitBytes:  s.limit.bytes,
		GoMemLimit:  rs.GoMemLimit,
		Usage:       usage,
		Fresh:       fresh,
		OffHeap:     int64(s.offHeap),
		OffHeapNow:  s.offHeapNow,
		GoOther:     max(0, rs.GoResident()-rs.HeapObjects-rs.HeapFree),
		HeapLive:    rs.HeapLive,
		GCCycles:    rs.GCCycles,
		Alloc:       rs.Alloc,
		LargeAllocs: rs.LargeAllocs,
		LargeBytes:  rs.LargeBytes,
		Critical:    float64(usage) >= g.cfg.Thresholds.Critical*float64(s.limit.bytes),
		GCThrashing: s.thrash,
		GCBehind:    s.behind,
		// The runtime keeps the goal at least at the live heap; within
		// 1/128 of it, GOMEMLIMIT has taken the GC's room.
		GCPinned: rs.HeapLive > 0 && rs.HeapGoal <= rs.HeapLive+rs.HeapLive/128,
		Runnable: float64(rs.Runnable) / float64(max(1, rs.Procs)),
	}
	g.workReading(&r)
	t := latency.Reading{
		Now:      now,
		InFlight: r.InFlight(),
		Done:     r.Done,
		Refused:  uint64(g.shed[0].Load() + g.shed[1].Load() + g.shedLate.Load()),
		Runnable: float64(rs.Runnable),
		Idle:     time.Duration(rs.IdleCPU * float64(time.Second)),
		Procs:    rs.Procs,
	}
	if s.shed.time != nil {
		t.CPUs, t.Throttled = s.cpu.read(now, rs.Procs)
		t.Took = g.tookRing.drain()
		if s.shed.timeDec.Limit > 0 {
			t.Ages = g.starts.ages(time.Now()) // the hot path's clock, not the sampler's steadied one
		}
	}
	s.shed.apply(g, r, t)
	if r.Admitted != s.seenAdm || r.InFlight() > 0 || r.Alloc-s.seenAlloc >= busyAlloc {
		s.busyUntil, s.seenAdm, s.seenAlloc = now.Add(busyFor), r.Admitted, r.Alloc
	}
}

// pace is the wait until the next quick reading.
func (s *sampler) pace(now time.Time) time.Duration {
	if now.Before(s.busyUntil) {
		return quickEvery
	}
	return idleQuickEvery
}

// withGo takes the kernel's figure for usage, kernel, and returns the
// larger of it and what the Go runtime holds plus the memory outside Go: a
// step of the Go heap counts at once, before its pages are touched.
func (s *sampler) withGo(kernel int64, rs runtimestats.Stats, now time.Time) int64 {
	goRes := rs.GoResident()
	s.offHeapNow = max(0, kernel-goRes)
	if raw := float64(kernel - goRes); raw >= s.offHeap || s.last.IsZero() {
		s.offHeap = max(0, raw)
	} else if dt := now.Sub(s.last).Seconds(); dt > 0 {
		s.offHeap += (1 - math.Exp(-dt/offHeapTau.Seconds())) * (raw - s.offHeap)
		s.offHeap = max(0, s.offHeap)
	}
	s.fullUsage = kernel
	return max(kernel, goRes+int64(s.offHeap))
}

// limiterEngaged reports the GC CPU limiter on in the current or the
// previous cycle: the GC wants more CPU than it may have, the death spiral's
// first sign. The runtime records the cycle in progress when the limiter
// turns on (numgc+1), so the difference is signed. The runtime writes it only
// when the limiter turns on; once no cycle has moved it for gcStale, the
// signal has expired.
func (s *sampler) limiterEngaged(rs runtimestats.Stats, now time.Time) bool {
	if rs.LimiterCycle != s.limiterCycle {
		s.limiterCycle, s.limiterAt = rs.LimiterCycle, now
	}
	return rs.LimiterCycle != 0 &&
		int64(rs.GCCycles)-int64(rs.LimiterCycle) <= 1 &&
		now.Sub(s.limiterAt) < s.gcCPU.StaleAfter
}

// usage is the memory measured against the limit: the cgroup's working
// set where a cgroup sets the limit, else this process's resident set, else
// what the Go runtime holds. It sets s.usageSource to the one it used.
func (s *sampler) usage(rs runtimestats.Stats, now time.Time) int64 {
	if s.cg != nil && (s.limit.source == LimitFromCgroup || s.limit.source == LimitFromCgroupHigh) {
		u, err := s.cg.Usage()
		if err == nil {
			err = believable(u, s.machine)
		}
		if err == nil {
			s.usageFault.OK(s.g.log, now)
			s.usageSource = UsageFromCgroup
			return u.WorkingSet()
		}
		s.g.readErrors.Add(1)
		s.usageFault.Fail(s.g.log, now, err, "using this process's resident memory until it works")
	}
	if rss, ok := processRSS(); ok {
		s.usageSource = UsageFromRSS
		return rss
	}
	s.usageSource = UsageFromRuntime
	return rs.GoResident()
}

// refreshLimit reads the limit again; a change moves GOMEMLIMIT with it.
// A limit that cannot be read keeps its last value.
func (s *sampler) refreshLimit(now time.Time) {
	s.limitAt = now
	if s.shed.time != nil {
		s.cpu.refind()
	}
	if (s.usageFault.Failing() || s.limitFault.Failing()) && now.Sub(s.refindAt) >= refindEvery {
		s.refindAt = now
		s.refind()
	}
	l, err := detectLimit(s.g.cfg.Limit, s.group)
	if err != nil {
		s.g.readErrors.Add(1)
		s.limitFault.Fail(s.g.log, now, err, "keeping the last one, "+humanize.Bytes(s.limit.bytes)+" from "+string(s.limit.source))
		return
	}
	s.limitFault.OK(s.g.log, now)
	if l == s.limit {
		return
	}
	old := s.limit
	s.limit = l
	s.g.log.Info("memory limit changed", slog.Int64("from", old.bytes), slog.Int64("to", l.bytes), slog.String("source", string(l.source)))
	s.g.setGoMemLimit(l)
	s.g.notify.rearm(s.g, s.group, l.bytes)
	if snap := s.g.snap.Load(); snap != nil {
		e := *snap
		e.Limit, e.LimitSource, e.LimitDetail = l.bytes, l.source, l.detail
		s.g.publish(Event{Type: EventLimit, Level: e.Level, Previous: e.Level, Snapshot: e})
	}
}

// refind looks for the process's memory cgroup again, and takes it when its
// usage reads: the same directory made again, or another.
func (s *sampler) refind() {
	group, err := s.find()
	if err != nil || group == nil {
		return
	}
	r, err := group.NewReader()
	if err != nil {
		return
	}
	if u, err := r.Usage(); err != nil || believable(u, s.machine) != nil {
		r.Close()
		return
	}
	if s.cg != nil {
		s.cg.Close()
	}
	s.group, s.cg = group, r
	s.oomKills = -1 // a new counter: its kills are not new
	s.g.log.Info("memory cgroup found again", slog.String("cgroup", group.Dir))
	s.g.notify.close()
	s.g.notify = s.g.startNotify(group)
}

// believable checks a cgroup's usage against the machine's memory in bytes
// (0 = unknown): no cgroup holds more than the machine has, and a file that
// says so is broken.
func believable(u cgroup.Usage, machine int64) error {
	if machine <= 0 || u.Current <= machine {
		return nil
	}
	return fmt.Errorf("cgroup usage %d bytes is more than the machine's memory, %d", u.Current, machine)
}

// steadyClock turns the readings of a clock that may step back into times
// that never do: a step back becomes an offset, and time goes on from where
// it was. time.Now's monotonic reading never steps back, so in a running
// guard this changes nothing; a clock without one (a wall clock set back,
// a test's) would otherwise hold every "at least d since" for the length
// of the step: the level stuck above Normal, the limit never read again.
type steadyClock struct {
	last   time.Time
	offset time.Duration
}

func (c *steadyClock) at(now time.Time) time.Time {
	t := now.Add(c.offset)
	if !c.last.IsZero() && t.Before(c.last) {
		c.offset += c.last.Sub(t)
		t = c.last
	}
	c.last = t
	return t
}

// nextInterval shortens the base interval as pressure rises past half the
// Elevated threshold, halving it every halvingSpan, and so that a climb at
// its current rate is seen at least ten times before it reaches the limit.
func (s *sampler) nextInterval(pressure float64, ttl time.Duration) time.Duration {
	cfg := &s.g.cfg
	iv := cfg.Interval
	if over := pressure - cfg.Thresholds.Elevated/2; over > 0 {
		iv = max(stillEvery, time.Duration(float64(iv)*math.Exp2(-over/halvingSpan)))
	}
	if ttl >= 0 && ttl/10 < iv {
		iv = ttl / 10
	}
	return max(cfg.MinInterval, min(iv, cfg.Interval))
}

// timeTo is how long headroom lasts at rate bytes per second; negative
// when usage is not growing.
func timeTo(headroom int64, rate float64) time.Duration {
	if rate <= 0 {
		return -1
	}
	secs := math.Min(math.Max(float64(headroom)/rate, 0), float64(math.MaxInt64/2)/1e9)
	return time.Duration(secs * 1e9)
}

// minTTL is the sooner of two times to the limit, ignoring negatives.
func minTTL(a, b time.Duration) time.Duration {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}

// gcWatch signals on c after every GC cycle, through a finalizer on a
// sentinel that re-arms itself; the signal never blocks the runtime's
// finalizer goroutine.
type gcWatch struct {
	c       chan struct{}
	stopped atomic.Bool
}

// gcSentinel is large enough not to be a tiny allocation, whose finalizer
// might never run.
type gcSentinel struct {
	w *gcWatch
	_ [16]byte
}

func watchGC() *gcWatch {
	w := &gcWatch{c: make(chan struct{}, 1)}
	runtime.SetFinalizer(&gcSentinel{w: w}, onGC)
	return w
}

func onGC(s *gcSentinel) {
	if s.w.stopped.Load() {
		return
	}
	select {
	case s.w.c <- struct{}{}:
	default:
	}
	runtime.SetFinalizer(s, onGC)
}

func (w *gcWatch) stop() {
	if w != nil {
		w.stopped.Store(true)
	}
}
