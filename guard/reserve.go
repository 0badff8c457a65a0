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

// Reserve asks for room for a large allocation of n bytes that a handler is
// about to make, such as a buffer for a request body. It fails fast with
// ErrNoHeadroom when n does not fit below the admission target with the
// bytes already declared in flight (Reserve, Config.Cost, Content-Length,
// EnterBytes). Reserved bytes count against the room for other work until
// released; calling release more than once is harmless. The priority is
// the one ctx carries (WithPriority); Critical reservations always succeed.
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
	large, ok := g.declare(n, PriorityFrom(ctx))
	if !ok {
		return nil, ErrNoHeadroom
	}
	e, _ := ctx.Value(inflightKey{}).(*inflightEntry)
	if e != nil {
		e.reserved.Add(n)
	}
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			g.undeclare(n, large)
			if e != nil {
				e.reserved.Add(-n)
			}
		}
	}, nil
}
