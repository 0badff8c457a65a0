package guard

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oomguard/oomguard/internal/admission"
	"github.com/oomguard/oomguard/internal/latency"
)

// limits is the admission word the hot path loads: the most work in flight
// of Default priority (low 32 bits) and of Sheddable priority (the next 31),
// each the tighter of the memory bound and the time bound, and whether the
// time bound is in force (the top bit): then deadlines are checked and
// times in flight sampled. The sampler publishes it after every reading.
type limits uint64

// timeBound is the top bit of limits: the time bound is in force.
const timeBound = limits(1) << 63

func packLimits(d admission.Decision, t latency.Decision) limits {
	def, shed := d.Limit, d.SheddableLimit
	if t.Limit > 0 {
		def, shed = min(def, t.Limit), min(shed, t.Limit)
	}
	c := func(v int64) uint64 { return uint64(max(0, min(v, math.MaxInt32))) }
	l := limits(c(def) | c(shed)<<32)
	if t.Limit > 0 {
		l |= timeBound
	}
	return l
}

// unlimited admits everything: a stopped guard, or one not yet sampled.
const unlimited = limits(math.MaxInt32 | math.MaxInt32<<32)

// of returns the bound on work in flight for priority p; Critical work has
// none.
func (l limits) of(p Priority) int64 {
	switch {
	case p >= PriorityCritical:
		return math.MaxInt64
	case p <= PrioritySheddable:
		return int64(l >> 32 & math.MaxInt32)
	}
	return int64(l & math.MaxUint32)
}

// least is the lower of the two bounds: work within it is admitted whatever
// its priority, without classifying it.
func (l limits) least() int64 { return min(l.of(PriorityDefault), l.of(PrioritySheddable)) }

// Admit reports whether work of priority p would be admitted now: two
// atomic loads and a comparison, with no lock, allocation or file read.
// Critical work is always admitted.
//
// Admit is a question, not a reservation: it neither counts the work in
// flight nor counts a refusal. Enter does both, and the middleware and the
// gRPC interceptors use it.
func (g *Guard) Admit(p Priority) bool {
	return g.inFlight() < limits(g.limits.Load()).of(p)
}

// inFlight is the work admitted and not yet done.
func (g *Guard) inFlight() int64 { return int64(g.admitted.Load() - g.finished.Load()) }

// untake withdraws a unit of work that take counted but that was refused,
// and counts the refusal.
func (g *Guard) untake(p Priority) {
	g.admitted.Add(^uint64(0))
	g.shed[p.index()].Add(1)
	if g.timeTighter.Load() {
		g.shedForTime.Add(1)
	}
	// Work refused while the sampler reads at its idle pace (a burst from
	// idle, past the slow start's first window): read now, so that the
	// window grows with the work and not with the idle pace. While busy
	// the sampler reads every quickEvery anyway: no kick, so that a shed
	// storm does not drive it.
	if g.idlePace.Load() {
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
}

// fit is what declare found of declared bytes.
type fit uint8

const (
	fits      fit = iota
	noRoom        // not now: the room is taken; shed, and the client may retry
	neverFits     // more than the service can ever hold: refuse for good
)

// unarmedCeiling is the ceiling of a guard that is off, stopped or not yet
// sampled: it refuses nothing, and declarations are clamped to it so that
// their sum cannot wrap around.
const unarmedCeiling = 1 << 50

// unfit withdraws a unit of work that take counted but whose declared
// bytes did not fit: a refusal for want of room now, or, for bytes that
// can never fit, no refusal at all (declare counted it as too large), so
// that a lie in a request's headers does not read as pressure.
func (g *Guard) unfit(p Priority, f fit) {
	if f == neverFits {
		g.admitted.Add(^uint64(0))
		return
	}
	g.untake(p)
}

// declare adds n declared bytes to the work in flight and reports how many
// it counted, whether they count as large, and whether they fit the room
// the sampler published for p. Every declared size may be a number a
// client chose, so none is counted past the ceiling, the admission target:
// more can never fit below it, whatever the priority. Requests smaller
// than the large size must leave free what the large reserve holds beyond
// the large requests already in flight. A refused large request records
// its size, so that the next decision keeps room for it.
func (g *Guard) declare(n int64, p Priority) (counted int64, large bool, f fit) {
	if n <= 0 {
		return 0, false, fits
	}
	if c := g.ceiling.Load(); n > c {
		if c != unarmedCeiling {
			g.tooLarge.Add(1)
			return 0, false, neverFits
		}
		n = c
	}
	d := g.declared.Add(n)
	if p >= PriorityCritical {
		g.declaredTotal.Add(uint64(n))
		return n, false, fits
	}
	room := g.room.Load()
	if p <= PrioritySheddable {
		room = g.sheddableRoom.Load()
	}
	size := g.largeSize.Load()
	large = size > 0 && n >= size
	if large {
		g.largeDeclared.Add(n)
	} else {
		room -= max(0, g.largeReserve.Load()-g.largeDeclared.Load())
	}
	if d <= room {
		g.declaredTotal.Add(uint64(n))
		return n, large, fits
	}
	g.undeclare(n, large)
	for w := g.largeWaiting.Load(); n > w && !g.largeWaiting.CompareAndSwap(w, n); w = g.largeWaiting.Load() {
	}
	return 0, false, noRoom
}

// undeclare ends n declared bytes of work; large is what declare said.
func (g *Guard) undeclare(n int64, large bool) {
	if n > 0 {
		g.declared.Add(-n)
		if large {
			g.largeDeclared.Add(-n)
		}
	}
}

// Ticket is admitted work in flight; call Done when it ends. Copies of a
// Ticket share its state: Done more than once, on any copy, is harmless.
type Ticket struct {
	s *ticketState // nil for the zero Ticket
}

type ticketState struct {
	g        *Guard
	e        *inflightEntry // Sheddable work the guard may cancel
	declared int64
	large    bool      // declared counted as large (see declare)
	start    time.Time // when admitted, if its time in flight is sampled
	slot     uint32    // its start's slot in Guard.starts, plus one; 0 none
	done     atomic.Bool
}

// Done ends the work. Calling Done on a zero Ticket does nothing.
func (t Ticket) Done() {
	if t.s == nil || !t.s.done.CompareAndSwap(false, true) {
		return
	}
	g := t.s.g
	g.undeclare(t.s.declared, t.s.large)
	if !t.s.start.IsZero() {
		g.took(t.s.start)
		g.starts.drop(t.s.slot, t.s.start)
	}
	g.finished.Add(1)
	if t.s.e != nil {
		g.unregister(t.s.e)
	}
}

// Enter asks to start one unit of work of priority p, such as a request or
// an RPC. When admitted it returns a Ticket to end the work; when shed it
// counts the refusal and returns ok false.
//
// All work is counted in flight, at every level, so that the bound on it
// holds from the first request: from idle, a burst is admitted a window at
// a time (a slow start) until the memory it uses has been seen. The bound
// is what the memory below the target holds at the learned cost per unit
// of work. Sheddable work admitted above Normal gets a context the guard
// cancels at Critical.
func (g *Guard) Enter(ctx context.Context, p Priority) (_ context.Context, t Ticket, ok bool) {
	return g.enter(ctx, p, 0)
}

// EnterBytes is Enter for work that declares it will hold n bytes while it
// runs, such as a request body it reads into memory. The bytes count
// against the memory the guard admits work into, exactly, instead of the
// learned cost; work whose bytes do not fit is shed. Ticket.Done releases
// them. Bytes past the admission target can never fit: such work is
// refused at every priority, Critical included, and counted in
// Snapshot.TooLarge rather than as shed.
func (g *Guard) EnterBytes(ctx context.Context, p Priority, n int64) (_ context.Context, t Ticket, ok bool) {
	return g.enter(ctx, p, max(0, n))
}

func (g *Guard) enter(ctx context.Context, p Priority, declared int64) (context.Context, Ticket, bool) {
	l := limits(g.limits.Load())
	if int64(g.admitted.Add(1)-g.finished.Load()) > l.of(p) {
		g.untake(p)
		return ctx, Ticket{}, false
	}
	timed := l&timeBound != 0 && p < PriorityCritical
	if timed && g.late(ctx, time.Time{}) {
		g.untakeLate()
		return ctx, Ticket{}, false
	}
	declared, large, f := g.declare(declared, p)
	if f != fits {
		g.unfit(p, f)
		return ctx, Ticket{}, false
	}
	ts := &ticketState{g: g, declared: declared, large: large}
	if timed {
		ts.start = time.Now()
		ts.slot = g.starts.put(ts.start)
	}
	if p <= PrioritySheddable && g.Level() > LevelNormal {
		ctx, ts.e = g.register(ctx)
	}
	return ctx, Ticket{ts}, true
}

// inflightEntry is cancellable work: Sheddable requests.
type inflightEntry struct {
	cancel   context.CancelCauseFunc
	start    time.Time
	reserved atomic.Int64
}

type inflightKey struct{}

// cancellable holds the in-flight Sheddable work the guard may cancel.
type cancellable struct {
	mu      sync.Mutex
	entries map[*inflightEntry]struct{}
}

func (g *Guard) register(ctx context.Context) (context.Context, *inflightEntry) {
	ctx, cancel := context.WithCancelCause(ctx)
	e := &inflightEntry{cancel: cancel, start: time.Now()}
	ctx = context.WithValue(ctx, inflightKey{}, e)
	g.cancellable.mu.Lock()
	g.cancellable.entries[e] = struct{}{}
	g.cancellable.mu.Unlock()
	return ctx, e
}

func (g *Guard) unregister(e *inflightEntry) {
	g.cancellable.mu.Lock()
	delete(g.cancellable.entries, e)
	g.cancellable.mu.Unlock()
	e.cancel(nil)
}
