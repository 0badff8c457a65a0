package guard

import (
	"sync"
	"time"
)

const (
	// historyLen and historyEvery make the status page's history: ten
	// minutes at one point a second, in a ring that never grows.
	historyLen   = 600
	historyEvery = time.Second
)

// point is one reading of the history, kept small and fixed-size so that
// the ring is one allocation of about 40 KB for the guard's life. The
// thresholds are not kept: they are Config.Thresholds times the point's
// limit.
type point struct {
	t          int64 // unix nanoseconds
	usage      int64
	committed  int64
	heap       int64
	goMemLimit int64
	limit      int64
	shedRate   float32 // requests refused per second since the previous point
	inFlight   int32
	level      Level
}

// history is the ring of points the status page draws. The sampler adds to
// it at most once a second; the debug handler reads it, hence the mutex.
type history struct {
	lastAt   time.Time // the newest point's steady time; sampler-owned
	lastShed int64     // the shed count at the newest point; sampler-owned

	mu     sync.Mutex
	ring   [historyLen]point
	next   int // where the next point goes
	filled int // points held, up to historyLen
}

// add records s when at least historyEvery passed since the last point,
// with the guard's request counters as of now (the sampler's Snapshot
// leaves them zero).
//
// now is the sampler's steady clock, which spaces the points; a point's time
// is the wall clock's, for people.
func (h *history) add(g *Guard, s *Snapshot, now time.Time) {
	if h.filled > 0 && now.Sub(h.lastAt) < historyEvery {
		return
	}
	t := s.Time.UnixNano()
	shed := g.shed[0].Load() + g.shed[1].Load() + g.shed[2].Load()
	p := point{
		t: t, usage: s.Usage, committed: s.Committed, heap: s.HeapLive,
		goMemLimit: s.GoMemLimit, limit: s.Limit,
		inFlight: int32(min(max(0, g.inFlight()), 1<<31-1)), level: s.Level,
	}
	if h.filled > 0 {
		p.shedRate = float32(float64(shed-h.lastShed) / now.Sub(h.lastAt).Seconds())
	}
	h.lastAt, h.lastShed = now, shed
	h.mu.Lock()
	h.ring[h.next] = p
	h.next = (h.next + 1) % historyLen
	h.filled = min(h.filled+1, historyLen)
	h.mu.Unlock()
}

// points appends the points held to dst, oldest first.
func (h *history) points(dst []point) []point {
	h.mu.Lock()
	defer h.mu.Unlock()
	start := (h.next - h.filled + historyLen) % historyLen
	for i := range h.filled {
		dst = append(dst, h.ring[(start+i)%historyLen])
	}
	return dst
}
