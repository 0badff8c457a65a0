package guard

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrNoHeadroom is returned by Reserve when the bytes asked for do not fit
// in the memory the guard admits work into.
var ErrNoHeadroom = errors.New("guard: not enough memory headroom")

// ErrTooLarge is returned by Reserve when the bytes asked for exceed the
// admission target: they could never fit, at any priority.
var ErrTooLarge = errors.New("guard: more bytes than the service can ever hold")

// Reserve asks for room for a large allocation of n bytes that a handler is
// about to make, such as a buffer for a request body. It fails fast with
// ErrNoHeadroom when n does not fit below the admission target with the
// bytes already declared in flight (Reserve, Config.Cost, Content-Length,
// EnterBytes). Reserved bytes count against the room for other work until
// released; calling release more than once is harmless. The priority is
// the one ctx carries (WithPriority); Critical reservations succeed
// whenever n is within the admission target. More than the target fails
// with ErrTooLarge at every priority: it could never fit.
//
// A reservation made with the context of a Sheddable request makes that
// request a first candidate for cancellation at Critical.
func (g *Guard) Reserve(ctx context.Context, n int64) (release func(), err error) {
	if n < 0 {
		return nil, fmt.Errorf("guard: Reserve(%d): negative byte count", n)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	counted, large, f := g.declare(n, PriorityFrom(ctx))
	switch f {
	case noRoom:
		return nil, ErrNoHeadroom
	case neverFits:
		return nil, fmt.Errorf("%w: Reserve(%d) asks for more than the admission target of %d bytes", ErrTooLarge, n, g.ceiling.Load())
	}
	e, _ := ctx.Value(inflightKey{}).(*inflightEntry)
	if e != nil {
		e.reserved.Add(counted)
	}
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			g.undeclare(counted, large)
			if e != nil {
				e.reserved.Add(-counted)
			}
		}
	}, nil
}
