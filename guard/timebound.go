package guard

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oomguard/oomguard/internal/cgroup"
)

// The time bound: while work waits for a CPU, the guard bounds the work in
// flight by that line as well as by memory (internal/latency), and refuses
// at once work whose deadline is nearer than nearly all recent work took.

// tookSlots is how many times in flight the hot path can hand the sampler
// between two readings; more are overwritten, which only thins the sample.
const tookSlots = 64

// tookRing passes sampled times in flight from the hot path to the sampler
// without a lock: writers claim a slot with one atomic add.
type tookRing struct {
	next  atomic.Uint64
	slots [tookSlots]atomic.Int64
	read  uint64 // owned by the sampler
	buf   []time.Duration
}

// took records the time in flight of work admitted at start.
func (g *Guard) took(start time.Time) {
	d := time.Since(start)
	i := g.tookRing.next.Add(1) - 1
	g.tookRing.slots[i%tookSlots].Store(int64(d))
}

// drain returns the times recorded since the last drain, at most
// tookSlots of them; the slice is reused by the next call.
func (t *tookRing) drain() []time.Duration {
	end := t.next.Load()
	from := max(t.read, end-min(end, tookSlots))
	t.buf = t.buf[:0]
	for i := from; i < end; i++ {
		t.buf = append(t.buf, time.Duration(t.slots[i%tookSlots].Load()))
	}
	t.read = end
	return t.buf
}

// startSlots is how many starts of work in flight the hot path keeps for
// the sampler, and startProbe how many slots a writer tries: work admitted
// while all of those are in use is not kept, which only thins the sample.
const (
	startSlots = 256
	startProbe = 4
)

// startTable keeps when some of the work in flight under the time bound
// was admitted, without a lock: a writer claims a free slot with one
// compare-and-swap and frees it with another. A slot holds nanoseconds
// since base plus one; zero is free.
type startTable struct {
	base  time.Time
	next  atomic.Uint64
	slots [startSlots]atomic.Int64
	buf   []time.Duration // the sampler's
}

// value is what a slot holds for start; 0 for a start before base.
func (t *startTable) value(start time.Time) int64 { return max(0, int64(start.Sub(t.base))+1) }

// put keeps start and returns its slot, plus one; 0 when none was free.
func (t *startTable) put(start time.Time) (slot uint32) {
	v := t.value(start)
	if v == 0 {
		return 0
	}
	i := t.next.Add(1)
	for k := range uint64(startProbe) {
		j := (i + k) % startSlots
		if t.slots[j].CompareAndSwap(0, v) {
			return uint32(j) + 1
		}
	}
	return 0
}

// drop frees the slot that put returned for start.
func (t *startTable) drop(slot uint32, start time.Time) {
	if slot > 0 {
		t.slots[slot-1].CompareAndSwap(t.value(start), 0)
	}
}

// ages returns how long the work kept has been in flight at now; the
// slice is reused by the next call.
func (t *startTable) ages(now time.Time) []time.Duration {
	at := int64(now.Sub(t.base)) + 1
	t.buf = t.buf[:0]
	for i := range t.slots {
		if v := t.slots[i].Load(); v != 0 {
			t.buf = append(t.buf, time.Duration(max(0, at-v)))
		}
	}
	return t.buf
}

// late reports whether work with ctx, arriving now, has a deadline nearer
// than the shortest time recent work took in flight: it would most likely
// time out after holding a place and a CPU. header, if not zero, is a
// deadline the request's header gave; the nearer one counts.
func (g *Guard) late(ctx context.Context, header time.Time) bool {
	deadline, ok := ctx.Deadline()
	if !header.IsZero() && (!ok || header.Before(deadline)) {
		deadline, ok = header, true
	}
	if !ok {
		return false
	}
	return time.Until(deadline) < time.Duration(g.shortest.Load())
}

// untakeLate withdraws a unit of work that was counted in flight but whose
// deadline cannot be met, and counts it.
func (g *Guard) untakeLate() {
	g.admitted.Add(^uint64(0))
	g.shedLate.Add(1)
}

// headerDeadline is the deadline the request's Config.DeadlineHeader gives,
// counted from now; zero when there is none or it does not parse. The value
// is whole milliseconds, as Envoy's x-envoy-expected-rq-timeout-ms, or a Go
// duration such as "1.5s". A client can only shorten its own deadline with
// it, so a value is believed as it is.
func (g *Guard) headerDeadline(r *http.Request, now time.Time) time.Time {
	if g.cfg.DeadlineHeader == "" {
		return time.Time{}
	}
	v := strings.TrimSpace(r.Header.Get(g.cfg.DeadlineHeader))
	if v == "" {
		return time.Time{}
	}
	var d time.Duration
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms < 0 || ms > int64(365*24*time.Hour/time.Millisecond) {
			return time.Time{}
		}
		d = time.Duration(ms) * time.Millisecond
	} else if d, err = time.ParseDuration(v); err != nil || d < 0 {
		return time.Time{}
	}
	return now.Add(d)
}

// throttledEvery is how often the quota's throttling is read: a file read,
// where the run queue is a runtime metric.
const throttledEvery = 20 * time.Millisecond

// cpuQuota reads the cgroup's CPU quota for the time bound. It belongs to
// the sampler goroutine.
type cpuQuota struct {
	cg        *cgroup.CPU // nil without a cpu cgroup
	throttled time.Duration
	offset    time.Duration // carries throttled across a change of cgroup
	at        time.Time
}

// refind finds the process's cpu cgroup and its quota again: a process
// may be moved into another cgroup, and a pod resized in place. The
// throttled time goes on from where it was, so that a new cgroup's count
// does not read as a line.
func (c *cpuQuota) refind() {
	cg, err := cgroup.SelfCPU()
	if err != nil {
		return
	}
	if c.cg == nil || cg.QuotaDir != c.cg.QuotaDir {
		now, _ := cg.Throttled()
		c.offset = c.throttled - now
	}
	c.cg = cg
}

// read returns the CPUs the process may use at once, the lower of
// GOMAXPROCS and the quota, and the time the quota held it back, read at
// most every throttledEvery. A file that stops reading keeps the last
// figure.
func (c *cpuQuota) read(now time.Time, procs int64) (cpus float64, throttled time.Duration) {
	cpus = float64(max(1, procs))
	if c.cg == nil {
		return cpus, 0
	}
	if c.cg.Quota > 0 {
		cpus = min(cpus, c.cg.Quota)
	}
	if now.Sub(c.at) >= throttledEvery {
		c.at = now
		if d, err := c.cg.Throttled(); err == nil {
			c.throttled = d + c.offset
		}
	}
	return cpus, c.throttled
}
