package guard

import (
	"context"
	"errors"
	"sync/atomic"
)

// ErrNoHeadroom is returned by Reserve when the bytes asked for would not
// fit below the Critical threshold.
var ErrNoHeadroom = errors.New("guard: not enough memory headroom")

// Reserve asks for room for a large allocation of n bytes that a handler is
// about to make, such as a buffer for a request body. It fails fast with
// ErrNoHeadroom when usage plus outstanding reservations plus n would pass
// the Critical threshold. Outstanding reservations count against headroom
// for admission until released; calling release more than once is harmless.
//
// A reservation made with the context of a Sheddable request makes that
// request a first candidate for cancellation at Critical.
func (g *Guard) Reserve(ctx context.Context, n int64) (release func(), err error) {
	if n < 0 {
		return nil, errors.New("guard: Reserve of a negative number of bytes")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	budget := g.headroom()
	for {
		r := g.reserved.Load()
		if n > budget-r { // not r+n > budget: that overflows for a huge n
			return nil, ErrNoHeadroom
		}
		if g.reserved.CompareAndSwap(r, r+n) {
			break
		}
	}
	e, _ := ctx.Value(inflightKey{}).(*inflightEntry)
	if e != nil {
		e.reserved.Add(n)
	}
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			g.reserved.Add(-n)
			if e != nil {
				e.reserved.Add(-n)
			}
		}
	}, nil
}
