package guard

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Admission state, packed in one uint64 so that the hot path is one atomic
// load: the shed share of Sheddable work (bits 0-15) and of Default work
// (bits 16-31), each 0 (admit all) to shareAll (shed all), and the limit on
// requests in flight (bits 32-63; 0 = none).
const (
	shareBits = 16
	shareAll  = 1<<shareBits - 1
)

func packAdmission(sheddable, def uint64, inflight uint64) uint64 {
	return sheddable | def<<shareBits | min(inflight, math.MaxUint32)<<32
}

// Admit reports whether work of priority p may start now. It is the hot
// path: one atomic load and arithmetic, no lock, allocation or file read.
// Inside a band where only a share is shed, the draw is math/rand/v2's
// per-thread generator. Critical work is always admitted.
//
// Admit does not count the work in flight; Enter does, and the middleware
// and interceptors use it.
func (g *Guard) Admit(p Priority) bool {
	return admits(g.admission.Load(), p, &g.inflight)
}

func admits(st uint64, p Priority, inflight *atomic.Int64) bool {
	if st == 0 || p == PriorityCritical {
		return true
	}
	share := st & shareAll
	if p != PrioritySheddable {
		share = st >> shareBits & shareAll
	}
	switch {
	case share >= shareAll:
		return false
	case share > 0 && rand.Uint32()&shareAll < uint32(share):
		return false
	}
	if limit := int64(st >> 32); limit > 0 && inflight.Load() >= limit {
		return false
	}
	return true
}

// Ticket is admitted work in flight; call Done when it ends.
type Ticket struct {
	g       *Guard
	e       *inflightEntry // only for Sheddable work, which may be cancelled
	counted bool           // counted in flight
}

// Done ends the work. Calling Done on a zero Ticket does nothing.
func (t Ticket) Done() {
	if t.counted {
		t.g.inflight.Add(-1)
	}
	if t.e != nil {
		t.g.unregister(t.e)
	}
}

// Enter asks to start one unit of work of priority p, such as a request.
// When admitted it returns a Ticket to end the work; Sheddable work also
// gets a context the guard cancels at Critical. When shed it counts the
// refusal and returns ok false.
//
// Work is counted in flight only when it starts above Normal: at Normal,
// Enter is two atomic loads and no write, which keeps the middleware's
// overhead within a few nanoseconds. The in-flight limit that matters under
// pressure therefore sees at most the work started since pressure rose,
// which errs on the side of shedding.
func (g *Guard) Enter(ctx context.Context, p Priority) (_ context.Context, t Ticket, ok bool) {
	st := g.admission.Load()
	if st == 0 && Level(g.level.Load()) == LevelNormal {
		t = Ticket{g: g}
	} else {
		if !admits(st, p, &g.inflight) {
			g.shed[p.index()].Add(1)
			return ctx, Ticket{}, false
		}
		n := g.inflight.Add(1)
		// Admit and Add race with other requests; the limit holds after Add.
		if limit := int64(st >> 32); limit > 0 && n > limit && p != PriorityCritical {
			g.inflight.Add(-1)
			g.shed[p.index()].Add(1)
			return ctx, Ticket{}, false
		}
		t = Ticket{g: g, counted: true}
	}
	if p == PrioritySheddable {
		ctx, t.e = g.register(ctx)
	}
	return ctx, t, true
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
