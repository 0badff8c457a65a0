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

// Admit reports whether work of priority p would be admitted now. It is
// the hot path: one atomic load and arithmetic, plus a load of the
// in-flight count when an in-flight limit is in force and a draw from
// math/rand/v2's per-thread generator inside a band where only a share is
// shed; no lock, allocation or file read. Critical work is always admitted.
//
// Admit is a question, not a reservation: it neither counts the work in
// flight nor counts a refusal. Enter does both, and the middleware and the
// gRPC interceptors use it.
func (g *Guard) Admit(p Priority) bool {
	return admits(g.admission.Load(), p, &g.inflight)
}

func admits(st uint64, p Priority, inflight *atomic.Int64) bool {
	if st == 0 || p >= PriorityCritical {
		return true
	}
	share := st & shareAll
	if p > PrioritySheddable {
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

// quiet reports Normal with nothing shed or limited, where every request is
// admitted uncounted: two atomic loads.
func (g *Guard) quiet() bool {
	return g.admission.Load() == 0 && g.level.Load() == int32(LevelNormal)
}

// Ticket is admitted work in flight; call Done when it ends. Copies of a
// Ticket share its state: Done more than once, on any copy, is harmless.
type Ticket struct {
	s *ticketState // nil when there is nothing to undo (work started at Normal)
}

type ticketState struct {
	g    *Guard
	e    *inflightEntry // Sheddable work the guard may cancel
	done atomic.Bool
}

// Done ends the work. Calling Done on a zero Ticket does nothing.
func (t Ticket) Done() {
	if t.s == nil || !t.s.done.CompareAndSwap(false, true) {
		return
	}
	t.s.g.inflight.Add(-1)
	if t.s.e != nil {
		t.s.g.unregister(t.s.e)
	}
}

// Enter asks to start one unit of work of priority p, such as a request.
// When admitted it returns a Ticket to end the work; when shed it counts
// the refusal and returns ok false.
//
// At Normal with nothing shed or limited, Enter is two atomic loads: the
// work is neither counted in flight nor made cancellable, which keeps the
// middleware within a few nanoseconds and free of allocation. Otherwise
// admitted work is counted (one small allocation), and Sheddable work gets
// a context the guard cancels at Critical. The in-flight limit therefore
// sees the work started since pressure rose, which errs on the side of
// shedding; work that started at Normal finishes as it would have.
func (g *Guard) Enter(ctx context.Context, p Priority) (_ context.Context, t Ticket, ok bool) {
	if g.quiet() {
		return ctx, Ticket{}, true
	}
	st := g.admission.Load()
	if !admits(st, p, &g.inflight) {
		g.shed[p.index()].Add(1)
		return ctx, Ticket{}, false
	}
	n := g.inflight.Add(1)
	// Admit and Add race with other requests; the limit holds after Add.
	if limit := int64(st >> 32); limit > 0 && n > limit && p < PriorityCritical {
		g.inflight.Add(-1)
		g.shed[p.index()].Add(1)
		return ctx, Ticket{}, false
	}
	ts := &ticketState{g: g}
	if p <= PrioritySheddable {
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
