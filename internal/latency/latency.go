// Package latency bounds the work a service has in flight by the time that
// work waits for a CPU.
//
// Memory decides how much work can be held at once; the CPU decides how
// fast it finishes. Work admitted past what the CPUs can run waits in line,
// and on a CPU-bound service it waits until its clients have given up. The
// Policy watches that line directly: the goroutines that are ready to run
// and wait for a P, and the time the CPU quota holds the process's threads
// back. Neither grows because one request is large: a large request keeps
// one CPU busy for longer, and the others still find theirs. Both grow when
// more work is admitted than the CPUs can run, whatever the work's mix.
//
// On one CPU or less, the least bound of two puts two requests on one
// CPU, and a long request shares it for its whole life. There the Policy
// lets a request that has been in flight longer than half of recent work
// took finish alone: long requests then take about their own time, not
// twice it, while short ones still pair up.
//
// The Policy is pure: OnSample takes a Reading, with its time, and returns
// a Decision, so that tests drive it with a simulated clock.
package latency

import (
	"math"
	"slices"
	"time"
)

const (
	// window is the span over which the line is averaged before the bound
	// moves: several of the scheduler's time slices, so that one slice's
	// wait is not read as a line.
	window = 100 * time.Millisecond
	// queuePerCPU is the line tolerated, in goroutines waiting per CPU:
	// enough that CPUs freed by requests finishing close together find the
	// next requests ready rather than idling until more arrive, as
	// arrivals come in bursts and gaps. A line is also tolerated
	// while it holds at most half the work in flight: by Little's law that
	// work then waits for a CPU at most as long as it spends on everything
	// else, and a line of short requests costs them little.
	queuePerCPU = 2
	// idlePerCPU is the share of the CPUs that may go unused in a window
	// that still counts as a line: a line beside idle CPUs is goroutines
	// between two slices, or work fanned out within a request, and more
	// work in flight would use what is idle.
	idlePerCPU = 0.05
	// stretchMax is how much longer than uncongested the mean time in
	// flight may grow before a line of the run queue is cut: a line that
	// does not slow the work down costs its clients nothing.
	stretchMax = 1.5
	// uncongestedTau smooths the uncongested time in flight, and calmLeast
	// is the work done in windows with no more in flight than CPUs that it
	// needs first.
	uncongestedTau = 30 * time.Second
	calmLeast      = 20
	// quietShare is the share of the work in flight a window's line may
	// hold and the window still count as uncongested: by Little's law the
	// work then spends that share of its time in flight waiting for a CPU
	// at most, so its time in flight is near its time alone.
	quietShare = 1.0 / 8
	// drainMax bounds a drain: the bound held at the CPUs, while the
	// uncongested time in flight is unknown, until enough work is done
	// with no more in flight than CPUs to learn it. drainEvery spaces
	// drains that learned nothing, so that a service whose work is never
	// done in time is not held at the CPUs for long.
	drainMax   = 3 * time.Second
	drainEvery = 30 * time.Second
	// drainLongest bounds a drain whose work in flight never falls to
	// its bound: drainMax counts from when it does, as the work admitted
	// before the drain must end first.
	drainLongest = 10 * time.Second
	// stallFor is how long a line must stand, while the uncongested time
	// in flight is unknown, before a drain starts on it alone: a closed
	// loop of clients congested from its first request keeps its time in
	// flight as long as it was at the start, or finishes nothing at all,
	// so the least time seen is no reference, and only a drain tells
	// whether the line is the work's.
	stallFor = time.Second
	// drainFaster is how much faster the work done in a drain's calm
	// windows must be than the least mean time in flight seen for a line
	// beside it not to end the drain: the work in flight was then its own
	// congestion, whatever else waits.
	drainFaster = 2
	// drainWait is how long a drain, once the work in flight has fallen
	// to its bound, may go with too little work done in its calm windows
	// to judge its pace before a line beside them ends it.
	drainWait = 5 * window
	// drainJudge is the work done in a drain's calm windows that judges
	// its pace.
	drainJudge = 3
	// foreignTau smooths the line seen while no more work was in flight
	// than CPUs: the goroutines that wait and are not requests waiting.
	foreignTau = 5 * time.Second
	// releaseAfter is how long the line must stay short, with the bound
	// not reached, before the bound is lifted: the memory bound alone
	// then rules.
	releaseAfter = 5 * time.Second
	// took is how many recent times in flight the deadline estimate keeps.
	took = 256
	// shortestQuantile is the share of recent work that finished faster
	// than Decision.Shortest: a deadline below it would most likely be
	// missed.
	shortestQuantile = 0.05
	// longQuantile is the share of recent work that finished sooner than
	// nearly all: a hold lasts at most holdFor times that (see hold).
	longQuantile = 0.95
	holdFor      = 2
	// holdEvery spaces holds after one that found the CPUs unused beside
	// the work held for: that work was waiting, not computing, and a
	// service with such work in flight is not held at the CPUs often.
	// unusedFor is how long the CPUs must go unused for that: several of
	// the quota's periods, as the kernel counts throttling once a period.
	holdEvery = 30 * time.Second
	unusedFor = 3 * window
	// holdLeast is the times in flight the hold's median needs: fewer
	// than the 5th percentile does, so that a service overloaded from its
	// start holds for its long requests soon.
	holdLeast = 10
	// flightTau smooths the mean time in flight over many requests, so
	// that a mix of sizes averages out.
	flightTau = 2 * time.Second
)

// Reading is what the Policy sees at one moment. Counters are cumulative
// since the process started; the Policy takes their differences.
type Reading struct {
	Now time.Time
	// CPUs is the CPUs the process may use at once: GOMAXPROCS, or the
	// CPU quota where that is lower. It sets the least bound and the line
	// tolerated.
	CPUs float64
	// Procs is GOMAXPROCS: the threads that run Go code at once, and so
	// the most a CPU quota can hold back. 0: CPUs, rounded up.
	Procs int64
	// InFlight is the work admitted and not yet done.
	InFlight int64
	// Done counts the work done.
	Done uint64
	// Refused counts the work refused, for any reason.
	Refused uint64
	// Runnable is the goroutines ready to run and waiting for a P now.
	Runnable float64
	// Idle is the CPU time the runtime's Ps had and no goroutine used;
	// 0 where unknown.
	Idle time.Duration
	// Throttled is the time the cgroup's CPU quota held the process's
	// threads back, summed over CPUs; 0 where unknown.
	Throttled time.Duration
	// Took holds the times in flight of some of the work done since the
	// previous Reading; the Policy copies what it keeps.
	Took []time.Duration
	// Ages holds how long some of the work in flight has been in flight
	// so far; the Policy keeps none of it.
	Ages []time.Duration
}

// Decision is what the caller enforces until the next Reading.
type Decision struct {
	// Limit bounds the work in flight of every priority below Critical; 0
	// means no bound for time.
	Limit int64
	// Queue is the mean count of goroutines and threads that waited for a
	// CPU over the last window.
	Queue float64
	// Shortest is a time in flight that all but a few recent requests
	// took longer than; while Limit is set, work whose deadline is nearer
	// than that would most likely miss it, and is refused at once. 0:
	// unknown.
	Shortest time.Duration
	// TimeInFlight is the mean time in flight of recent work, and
	// Uncongested the same learned while nothing waited for a CPU (until
	// then, the least mean time in flight seen); 0: unknown.
	TimeInFlight, Uncongested time.Duration
	// Held reports that Limit is held at one, below the least bound: on
	// one CPU or less, the oldest work in flight has been in flight longer
	// than half of recent work took, and finishes without sharing the CPU.
	Held bool
}

// Policy is the state between Readings. The zero value is ready to use.
// It is not safe for concurrent use.
type Policy struct {
	prev    Reading
	started bool

	// The window in progress: integrals over time of the work in flight
	// and of the line, and where it began.
	from                  time.Time
	doneAt, refusedAt     uint64
	throttledAt, idleAt   time.Duration
	flightArea, queueArea float64 // unit-seconds
	limit                 int64
	quietSince            time.Time // the line short and the bound not reached since; zero while not
	flight, flightDone    float64   // smoothed integrals, for the mean time in flight
	uncongested           float64   // seconds; 0 unknown
	calmFlight, calmDone  float64   // smoothed integrals over the windows with no more in flight than CPUs, or a line under quietShare of it
	foreign               float64   // goroutines: the line while no more was in flight than CPUs, smoothed over foreignTau
	leastMean             float64   // seconds: the least mean time in flight seen, forgetting over uncongestedTau; 0 unknown
	drainFrom             time.Time // the last drain's start; zero before the first
	draining              bool
	drainLow              time.Time // the drain's first window with no more in flight than its bound; zero before
	drainFlight           float64   // unit-seconds in flight over the drain's calm windows
	drainDone             float64   // work done in the drain's calm windows
	lineSince             time.Time // the line has stood since; zero while not
	holding               bool
	heldSince             time.Time // the hold's start, while holding
	unusedSince           time.Time // the CPUs unused beside the hold since; zero while used
	holdOff               time.Time // no hold starts before this
	exempt                time.Time // work in flight since before this is not held for
	took                  [took]time.Duration
	tookN                 int                 // times in took, up to len(took)
	tookAt                int                 // next slot
	sorted                [took]time.Duration // scratch for shortest
	dec                   Decision
}

// OnSample takes a Reading and returns the Decision in force until the next.
func (p *Policy) OnSample(r Reading) Decision {
	for _, d := range r.Took {
		p.took[p.tookAt] = d
		p.tookAt = (p.tookAt + 1) % len(p.took)
		p.tookN = min(p.tookN+1, len(p.took))
	}
	if !p.started || r.Now.Before(p.prev.Now) {
		p.started = true
		p.prev = r
		p.restart(r)
		return p.dec
	}
	dt := r.Now.Sub(p.prev.Now).Seconds()
	p.flightArea += float64(p.prev.InFlight) * dt
	p.queueArea += p.prev.Runnable * dt
	p.prev = r
	if r.Now.Sub(p.from) < window {
		return p.dec
	}
	p.close(r)
	p.restart(r)
	return p.dec
}

// restart begins a window at r.
func (p *Policy) restart(r Reading) {
	p.from = r.Now
	p.doneAt, p.refusedAt, p.throttledAt, p.idleAt = r.Done, r.Refused, r.Throttled, r.Idle
	p.flightArea, p.queueArea = 0, 0
}

// close ends the window at r and moves the bound.
func (p *Policy) close(r Reading) {
	span := r.Now.Sub(p.from)
	secs := span.Seconds()
	inFlight := p.flightArea / secs
	queue := (p.queueArea + max(0, r.Throttled-p.throttledAt).Seconds()) / secs
	done := float64(r.Done - p.doneAt)
	refused := r.Refused != p.refusedAt
	idle := max(0, r.Idle-p.idleAt).Seconds() / secs // CPUs
	// A quota of a fraction of a CPU tolerates a line in proportion: the
	// requests the least bound admits already wait on it.
	cpus := math.Max(0.01, r.CPUs)
	tolerated := queuePerCPU * cpus
	// Two at least, even on less than two CPUs: one long request alone in
	// flight holds every short one out until it is done, and beside one
	// other a request takes at most twice as long.
	least := max(2, int64(math.Ceil(cpus)))
	procs := float64(r.Procs)
	if procs <= 0 {
		procs = math.Ceil(cpus)
	}

	// The mean time in flight, by Little's law over a horizon long enough
	// to hold many requests.
	keep := math.Exp(-secs / flightTau.Seconds())
	p.flight = p.flight*keep + p.flightArea
	p.flightDone = p.flightDone*keep + done
	var mean float64
	if p.flightDone >= 1 {
		mean = p.flight / p.flightDone
	}
	// The uncongested time in flight, by Little's law over the windows
	// with no more work in flight than CPUs alone, where no request waits
	// for another's CPU, so that a congested stretch does not leak into it.
	// A window whose line is a small share of the work in flight is as
	// uncongested, whatever that work: work that mostly waits off the
	// CPUs keeps far more in flight than CPUs without a line to speak of,
	// and only such windows show its time alone.
	slow := math.Exp(-secs / uncongestedTau.Seconds())
	p.calmFlight *= slow
	p.calmDone *= slow
	calm := inFlight < cpus+0.5
	if calm || queue < quietShare*inFlight {
		p.calmFlight += p.flightArea
		p.calmDone += done
	}
	if calm {
		if p.draining {
			p.drainFlight += p.flightArea
			p.drainDone += done
		}
		// No request waits for another's CPU here: what waits is work
		// fanned out within requests, the answers to refusals, the GC, a
		// background job. A bound cannot shorten that part of the line,
		// only starve the work beside it.
		f := math.Exp(-secs / foreignTau.Seconds())
		p.foreign = p.foreign*f + queue*(1-f)
	}
	if p.calmDone >= calmLeast {
		p.uncongested = p.calmFlight / p.calmDone
	}
	// Until such windows come, as for a service overloaded from its first
	// request, the least mean time in flight seen stands in for it: a
	// line that has not slowed the work since then was never the work's.
	if p.flightDone >= calmLeast && mean > 0 {
		if p.leastMean == 0 || mean < p.leastMean/slow {
			p.leastMean = mean
		} else {
			p.leastMean /= slow
		}
	}
	uncongested := p.uncongested
	if uncongested == 0 {
		uncongested = p.leastMean
	}
	// The quota's throttling, holding back a good part of the threads
	// that wait or of the Ps, is the kernel's own word that the CPUs ran
	// out: the whole line is then the work's, and a P idle beside it
	// has no quota left to run more. Throttling is measured against the
	// Ps as well as the line, as it holds back at most one thread a P
	// while the run queue grows with the work admitted. A run queue
	// alone may be work fanned out within requests, the GC's workers, or
	// the refusals of a storm of retries, none of which a lower bound
	// shortens: it counts only once it has slowed the admitted work past
	// stretchMax times its uncongested time in flight.
	throttledLine := max(0, r.Throttled-p.throttledAt).Seconds() / secs
	quotas := throttledLine > 0 && throttledLine >= min(queue, procs)/3
	stretched := uncongested > 0 && mean >= stretchMax*uncongested
	slowed := quotas || stretched

	own := max(0, queue-p.foreign) // the requests' part of the line
	line := own > tolerated && own > inFlight/2 && (quotas || idle < idlePerCPU*r.CPUs)
	if !line {
		p.lineSince = time.Time{}
	} else if p.lineSince.IsZero() {
		p.lineSince = r.Now
	}
	stalled := line && r.Now.Sub(p.lineSince) >= stallFor
	if p.draining && p.drainLow.IsZero() && inFlight < float64(least)+0.5 {
		p.drainLow = r.Now
	}
	draining := p.drain(r.Now, line && !quotas && (stretched || stalled) && p.uncongested == 0, calm && queue > tolerated)
	switch {
	case draining:
	case line && slowed && p.limit > 0 && inFlight >= float64(p.limit)+0.5:
		// The work admitted before the last cut is still in flight, and
		// the line is still its: cutting again before it ends would cut
		// for a line the bound has already answered, down to the least.
		p.quietSince = time.Time{}
	case line && slowed:
		// More is admitted than the CPUs run: keep what was not waiting,
		// and the line tolerated, and cut by at most half a window.
		from := p.limit
		if from == 0 {
			from = int64(math.Ceil(inFlight))
		}
		want := int64(math.Round(inFlight - own + tolerated))
		p.limit = max(least, want, from/2)
		p.limit = min(p.limit, max(least, from))
		p.quietSince = time.Time{}
	case p.limit > 0 && (refused || inFlight >= float64(p.limit)-1):
		// The line is short and the bound is reached: probe for more, in
		// steps that grow with the bound, so that a service of many
		// requests in flight gets back in a few windows.
		p.limit += max(1, p.limit/8)
		p.quietSince = time.Time{}
	case p.limit > 0:
		if p.quietSince.IsZero() {
			p.quietSince = r.Now
		} else if r.Now.Sub(p.quietSince) >= releaseAfter {
			p.limit, p.quietSince = 0, time.Time{}
		}
	}
	limit := p.limit
	if draining {
		limit = least
	}
	shortest, half, long := p.quantiles()
	held := false
	if alone := int64(math.Ceil(cpus)); alone < least && limit > 0 {
		// Under a quota its throttling says whether the CPUs were used;
		// the Ps' idle time, which the runtime counts as they wake,
		// cannot, as all but one idle beside one request.
		busy := quotas || (cpus >= procs && idle < idlePerCPU*r.CPUs)
		held = p.hold(r.Now, r.Ages, half, long, busy)
		if held {
			limit = min(limit, alone)
		}
	} else {
		p.holding = false
	}
	p.dec = Decision{
		Limit:        limit,
		Held:         held,
		Queue:        queue,
		Shortest:     shortest,
		TimeInFlight: seconds(mean),
		Uncongested:  seconds(uncongested),
	}
}

// drain reports whether the bound is held at the CPUs for a drain, now.
// While the uncongested time in flight is unknown, the least mean time in
// flight seen stands in for it, and may itself be congested: a line that
// has slowed the work past that starts a drain, as BBR drains its queue to
// learn the path's round trip, and so does a line that has stood stallFor,
// as a closed loop congested from its first request slows nothing past its
// start. It lasts until the uncongested time is learned; until a line
// outlasts it beside work no faster than before (work in flight no more
// than the CPUs cannot make a line, so that one is not the admitted
// work's); or until drainMax has passed since the work in flight fell to
// the drain's bound. Without a drain, a service overloaded from its first request
// would judge its line by a time in flight that was already congested, and
// leave it long.
func (p *Policy) drain(now time.Time, start, foreign bool) bool {
	switch {
	case p.draining && (p.uncongested > 0 || foreign && !p.drainPays(now) || p.drainSpent(now)):
		p.draining = false
	case !p.draining && start &&
		(p.drainFrom.IsZero() || now.Sub(p.drainFrom) >= drainEvery):
		p.draining, p.drainFrom = true, now
		p.drainLow, p.drainFlight, p.drainDone = time.Time{}, 0, 0
	}
	return p.draining
}

// drainPays reports whether a drain goes on beside a line that is not the
// admitted work's: while too little is done in its calm windows to tell,
// for at most drainWait, and after that while the work done there is
// drainFaster times as fast as the least mean time in flight seen (or
// none was known), as when a closed loop's refused clients make the line
// and the work was slowed by its own numbers all the same.
func (p *Policy) drainPays(now time.Time) bool {
	if p.drainDone < drainJudge {
		return now.Sub(p.drainLow) < drainWait
	}
	return p.leastMean == 0 || drainFaster*p.drainFlight/p.drainDone <= p.leastMean
}

// drainSpent reports whether a drain has lasted its time: drainMax from
// when the work in flight first fell to its bound, or drainLongest from
// its start.
func (p *Policy) drainSpent(now time.Time) bool {
	if p.drainLow.IsZero() {
		return now.Sub(p.drainFrom) >= drainLongest
	}
	return now.Sub(p.drainLow) >= drainMax
}

// hold reports whether the bound is held at the CPUs now, for the oldest
// work in flight. On fewer CPUs than the least bound, work admitted beside
// a long request shares its CPU for the whole of that request's life, and
// stretches it however few are admitted. Once the request has been in
// flight longer than half of recent work took, it is likely one of the
// long ones, and the one nearest its client's deadline: nothing more is
// admitted until it is done, as a line served in order would give it the
// CPUs. Short requests still pair up, so that the CPUs find the next one
// ready when one ends. A hold lasts at most holdFor times as long as
// nearly all recent work took, so that a request longer than any does not
// keep the CPUs to itself for long; each request is held for once. Work
// beside which the CPUs go unused for unusedFor while it is held for is
// waiting, not computing (a long poll, a stream): the hold ends, and holds
// stay off for holdEvery.
func (p *Policy) hold(now time.Time, ages []time.Duration, half, long time.Duration, busy bool) bool {
	var oldest time.Duration
	if half > 0 {
		for _, a := range ages {
			if a > half && now.Add(-a).After(p.exempt) {
				oldest = max(oldest, a)
			}
		}
	}
	if busy || !p.holding {
		p.unusedSince = time.Time{}
	} else if p.unusedSince.IsZero() {
		p.unusedSince = now
	}
	switch {
	case !p.holding:
		if oldest > 0 && busy && !now.Before(p.holdOff) {
			p.holding, p.heldSince = true, now
		}
	case oldest == 0:
		p.holding = false
	case !p.unusedSince.IsZero() && now.Sub(p.unusedSince) >= unusedFor:
		p.holding, p.exempt, p.holdOff = false, now.Add(-oldest), now.Add(holdEvery)
	case now.Sub(p.heldSince) >= holdFor*long:
		p.holding, p.exempt = false, now.Add(-oldest)
	}
	return p.holding
}

// quantiles returns the shortestQuantile, the median and the
// longQuantile of the times in flight kept; each zero while too few are
// kept for it.
func (p *Policy) quantiles() (shortest, half, long time.Duration) {
	if p.tookN < holdLeast {
		return 0, 0, 0
	}
	s := p.sorted[:p.tookN]
	copy(s, p.took[:p.tookN])
	slices.Sort(s)
	if p.tookN >= 20 {
		shortest = s[int(shortestQuantile*float64(len(s)))]
	}
	return shortest, s[len(s)/2], s[int(longQuantile*float64(len(s)))]
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
