package statuspage

import (
	"sync"
	"time"

	"github.com/oomguard/oomguard/guard/internal/level"
)

const (
	// historyLen and historyEvery make the status page's history: ten
	// minutes at one point a second, in a ring that never grows.
	historyLen   = 600
	historyEvery = time.Second
)

// Point is one reading of the history, kept small and fixed-size so that
// the ring is one allocation of about 40 KB for the guard's life. The
// thresholds are not kept: they are Config.Thresholds times the point's
// limit. Sizes are in bytes.
type Point struct {
	T          int64 // unix nanoseconds, the wall clock's
	Usage      int64
	Committed  int64
	Heap       int64 // the live Go heap
	GoMemLimit int64
	Limit      int64
	InFlight   int32 // requests in flight
	Level      level.Level

	shedRate float32 // requests refused per second since the previous point; set by History.Add
}

// History is the ring of points the status page draws. One goroutine, the
// guard's sampler, adds to it, at most once a second; the page reads it
// from any, hence the mutex.
type History struct {
	lastAt   time.Time // the newest point's steady time; the adder's
	lastShed int64     // the shed count at the newest point; the adder's

	mu     sync.Mutex
	ring   [historyLen]Point
	next   int // where the next point goes
	filled int // points held, up to historyLen
}

// Due reports whether a point taken at now would be kept: at least
// historyEvery passed since the last.
//
// now is the sampler's steady clock, which spaces the points; a point's time
// is the wall clock's, for people.
func (h *History) Due(now time.Time) bool {
	return h.filled == 0 || now.Sub(h.lastAt) >= historyEvery
}

// Add records p, taken at now, when it is Due; shed is the count of
// requests refused since the guard started, from which the point's rate
// of refusals comes.
func (h *History) Add(now time.Time, p Point, shed int64) {
	if !h.Due(now) {
		return
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

// Points appends the points held to dst, oldest first.
func (h *History) Points(dst []Point) []Point {
	h.mu.Lock()
	defer h.mu.Unlock()
	start := (h.next - h.filled + historyLen) % historyLen
	for i := range h.filled {
		dst = append(dst, h.ring[(start+i)%historyLen])
	}
	return dst
}
