package guard

import (
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// loadTau is the time constant over which Load's utilization and rates
// are smoothed: the period at which grpc-go's weighted_round_robin
// recomputes its weights by default, so that each weight sees about one
// time constant of fresh readings.
const loadTau = time.Second

// Load is how loaded the service is, as the guard sees it: what a load
// balancer needs to send work elsewhere before the guard must refuse it.
// Package grpcguard reports it as ORCA load reports (RecordLoad and the
// interceptors), and Middleware as the endpoint-load-metrics header with
// Config.ReportLoad. Every field is finite and at least 0; all are 0 for
// a guard that is off, stopped or not yet sampled.
//
// Utilization and the rates are smoothed over about a second, from the
// sampler's readings (every few milliseconds while work runs); Memory is
// as of the last reading.
type Load struct {
	// Utilization is how full the service is: the work in flight against
	// the most the guard admits, the tighter of memory and time. For
	// memory, it is the committed memory the work in flight holds (the
	// learned cost of each unit, and the bytes it declared) against the
	// room that the admission target leaves above the memory that is not
	// the work's (Snapshot.AdmissionTarget less caches, the runtime,
	// leaks); for time, while the time bound is in force, the work in
	// flight against Snapshot.TimeLimit. It is near 1 when the guard
	// starts refusing Default work, and past 1 when more is in flight, as
	// Critical work may be. It grows in proportion to the work, from 0 at
	// idle: memory that the work does not hold makes the room smaller, not
	// the utilization larger, so that a balancer that divides the work's
	// rate by it (weighted round robin) gets a weight that does not depend
	// on the load: the units of work the room holds over the time each is
	// held, the rate the service can sustain.
	Utilization float64

	// MemoryUtilization is Snapshot.Pressure, the memory usage against
	// the limit, at most 1.
	MemoryUtilization float64

	// Admitted is the work admitted a second, and Refused the work refused
	// a second, for memory or time, or for a deadline that could not be
	// met. Work refused for declaring more bytes than the service can ever
	// hold (Snapshot.TooLarge) is not counted: it says nothing of the load.
	Admitted, Refused float64
}

// Load returns the guard's load as of its last reading: four atomic loads.
func (g *Guard) Load() Load { return g.load.get() }

// loadGauge publishes Load from the sampler to every reader. The fields
// are stored one by one: a reader may see two readings' values mixed,
// which differ by one reading's step.
type loadGauge struct {
	utilization, memory, admitted, refused atomic.Uint64 // float64 bits
}

func (p *loadGauge) get() Load {
	return Load{
		Utilization:       math.Float64frombits(p.utilization.Load()),
		MemoryUtilization: math.Float64frombits(p.memory.Load()),
		Admitted:          math.Float64frombits(p.admitted.Load()),
		Refused:           math.Float64frombits(p.refused.Load()),
	}
}

func (p *loadGauge) set(l Load) {
	p.utilization.Store(math.Float64bits(l.Utilization))
	p.memory.Store(math.Float64bits(l.MemoryUtilization))
	p.admitted.Store(math.Float64bits(l.Admitted))
	p.refused.Store(math.Float64bits(l.Refused))
}

// loadReading is what one reading of the sampler tells of the load. Sizes
// are in bytes; counters are cumulative.
type loadReading struct {
	now                time.Time
	admitted, refused  uint64 // work admitted and refused since Start
	inFlight, declared int64  // units of work in flight, and the bytes they declared
	cost, target, base int64  // the memory model: bytes a unit holds, the target, the base
	timeLimit          int64  // the time bound on work in flight; 0 when not in force
	usage, limit       int64
}

// loadMeter smooths the readings into Load. It belongs to the sampler
// goroutine.
type loadMeter struct {
	at                time.Time // the last reading; zero before the first
	admitted, refused uint64
	l                 Load
}

// next takes one reading and returns the load after it. Utilization and
// the rates are exponentially weighted moving averages over loadTau, each
// reading weighted by the time since the one before.
func (m *loadMeter) next(r loadReading) Load {
	if m.at.IsZero() || !r.now.After(m.at) {
		if m.at.IsZero() {
			m.at, m.admitted, m.refused = r.now, r.admitted, r.refused
		}
		m.l.MemoryUtilization = memoryUtilization(r.usage, r.limit)
		return m.l
	}
	dt := r.now.Sub(m.at).Seconds()
	w := -math.Expm1(-dt / loadTau.Seconds())
	// A counter that went back (it cannot, but a test's can) counts as
	// no change, not as a wrapped-around flood.
	admitted := float64(r.admitted-min(r.admitted, m.admitted)) / dt
	refused := float64(r.refused-min(r.refused, m.refused)) / dt
	m.l.Utilization += w * (utilization(r) - m.l.Utilization)
	m.l.Admitted += w * (admitted - m.l.Admitted)
	m.l.Refused += w * (refused - m.l.Refused)
	m.l.MemoryUtilization = memoryUtilization(r.usage, r.limit)
	m.at, m.admitted, m.refused = r.now, r.admitted, r.refused
	return m.l
}

// utilization is the tighter of the memory's and the time's at reading r
// (see Load.Utilization). The memory's room is at least one unit's cost:
// with the base past the target, work in flight counts in units, not as
// infinity.
func utilization(r loadReading) float64 {
	n := float64(max(0, r.inFlight))
	u := 0.0
	if r.cost > 0 || r.declared > 0 {
		room := max(float64(r.target)-float64(r.base), float64(r.cost), 1)
		u = (n*float64(r.cost) + float64(max(0, r.declared))) / room
	}
	if r.timeLimit > 0 {
		u = max(u, n/float64(r.timeLimit))
	}
	return finite(u)
}

// memoryUtilization is usage over limit, within [0, 1].
func memoryUtilization(usage, limit int64) float64 {
	if limit <= 0 {
		return 0
	}
	return min(1, finite(float64(usage)/float64(limit)))
}

// maxLoadValue caps every value the guard reports: far past any real load,
// and far from where a reader's parser would overflow.
const maxLoadValue = 1e12

// finite returns v within [0, maxLoadValue]; NaN counts as 0.
func finite(v float64) float64 {
	if !(v > 0) { // NaN too
		return 0
	}
	return min(v, maxLoadValue)
}

// loadHeader is the response header Middleware writes with
// Config.ReportLoad, ORCA's load report as Envoy reads it, in the form
// net/http keeps header names.
const loadHeader = "Endpoint-Load-Metrics"

// appendLoadHeader appends l in the TEXT form of loadHeader that Envoy
// parses (source/common/orca/orca_parser.cc): "TEXT " and comma-separated
// name:value pairs, each value a finite decimal number.
func appendLoadHeader(b []byte, l Load) []byte {
	b = append(b, "TEXT application_utilization:"...)
	b = appendLoadValue(b, l.Utilization)
	b = append(b, ",mem_utilization:"...)
	b = appendLoadValue(b, min(1, l.MemoryUtilization))
	b = append(b, ",rps_fractional:"...)
	b = appendLoadValue(b, l.Admitted)
	b = append(b, ",eps:"...)
	return appendLoadValue(b, l.Refused)
}

// appendLoadValue appends v, made finite, with four significant digits:
// a rate of a few requests a minute still reads as more than 0.
func appendLoadValue(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, finite(v), 'g', 4, 64)
}

// loadText is a load and its header value.
type loadText struct {
	l Load
	s string
}

// reportLoad writes the load report header on w. The value is formatted
// once per load the sampler publishes, not per response.
func (g *Guard) reportLoad(w http.ResponseWriter) {
	l := g.Load()
	t := g.loadText.Load()
	if t == nil || t.l != l {
		var buf [128]byte
		t = &loadText{l, string(appendLoadHeader(buf[:0], l))}
		g.loadText.Store(t)
	}
	w.Header()[loadHeader] = []string{t.s}
}
