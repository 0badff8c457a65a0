package rightsize

import (
	"math"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/admission"
)

const mib = 1 << 20

// sizing is a memory model of 100 MiB of base and 1 MiB a unit, with no
// tail: the limit 150 units need is (100 + 150) MiB over 0.925.
var sizing = admission.Sizing{
	Base: 100 * mib, Unit: mib, Critical: 0.95, SheddableGap: 0.05,
	TailFree: math.Inf(1), TailOne: math.Inf(1),
}

// service feeds a Policy readings of a service every step, in a simulated
// clock.
type service struct {
	t     *testing.T
	p     Policy
	start time.Time
	now   time.Time
	r     Reading
	says  []time.Duration // when Say was set, since start
	last  Decision
}

func newService(t *testing.T) *service {
	start := time.Unix(1e9, 0)
	s := &service{t: t, start: start, now: start}
	s.r.Sizing = sizing
	s.feed()
	return s
}

func (s *service) feed() {
	s.r.Now = s.now
	s.last = s.p.OnSample(s.r)
	if s.last.Say {
		s.says = append(s.says, s.now.Sub(s.start))
	}
}

// load is the work of one 20 ms step: inFlight in flight; admitted units
// admitted, shed refused for memory, forTime for time, sheddable of them
// Sheddable.
type load struct {
	inFlight                           int64
	admitted, shed, forTime, sheddable uint64
}

// run feeds a step of l every 20 ms for d.
func (s *service) run(d time.Duration, l load) {
	const step = 20 * time.Millisecond
	for end := s.now.Add(d); s.now.Before(end); {
		s.now = s.now.Add(step)
		s.r.InFlight = l.inFlight
		s.r.Admitted += l.admitted
		s.r.Shed += l.shed
		s.r.ShedForTime += l.forTime
		s.r.ShedSheddable += l.sheddable
		s.feed()
	}
}

// overload is 50 units in flight, 100 admitted a second and 200 refused
// for memory: each unit is in flight for half a second, and 150 units are
// offered.
var overload = load{inFlight: 50, admitted: 2, shed: 4}

func within(got, want int64) bool { return got >= want-1 && got <= want+1 }

// TestSteadyOverload: a steady overload gets the limit at which the model
// admits the offered concurrency, said at once and then once a minute.
func TestSteadyOverload(t *testing.T) {
	s := newService(t)
	s.run(200*time.Second, overload)
	want := sizing.LimitFor(150, false)
	if d := s.last; !within(d.Limit, want) || d.Reason != "" || math.Abs(d.Offered-150) > 1e-9 {
		t.Errorf("decision %+v, want a limit of %d bytes for 150 units offered", d, want)
	}
	wantSays := []time.Duration{time.Second, 61 * time.Second, 121 * time.Second, 181 * time.Second}
	if !equal(s.says, wantSays) {
		t.Errorf("said at %v, want %v", s.says, wantSays)
	}
}

// TestTimeInFlightFromLittle: the time in flight comes from the work in
// flight and its rate; a unit that takes twice as long offers twice the
// concurrency.
func TestTimeInFlightFromLittle(t *testing.T) {
	s := newService(t)
	// 100 in flight at 100 admitted a second: a second in flight each, and
	// 300 offered.
	s.run(30*time.Second, load{inFlight: 100, admitted: 2, shed: 4})
	if want := sizing.LimitFor(300, false); !within(s.last.Limit, want) || math.Abs(s.last.Offered-300) > 1e-9 {
		t.Errorf("decision %+v, want %d bytes for 300 units offered", s.last, want)
	}
}

// TestShortSpikeAtItsHeight: a spike of a few seconds, between spans of a
// load the limit serves, is recommended for at its height, not at its
// mean over a longer span.
func TestShortSpikeAtItsHeight(t *testing.T) {
	s := newService(t)
	s.run(20*time.Second, load{inFlight: 50, admitted: 2})
	s.run(4*time.Second, overload)
	s.run(20*time.Second, load{inFlight: 50, admitted: 2})
	want := sizing.LimitFor(150, false)
	if d := s.last; !within(d.Limit, want) || math.Abs(d.Offered-150) > 1e-9 {
		t.Errorf("decision %+v, want a limit of %d bytes for the spike's 150 units offered", d, want)
	}
}

// TestSlowLoadOverTheHorizon: a load too slow for horizonUnits to arrive
// within shortHorizon is averaged over the whole horizon: one second's
// clump is not the load.
func TestSlowLoadOverTheHorizon(t *testing.T) {
	s := newService(t)
	// 5 in flight, 5 admitted and 5 refused a second, in one step each:
	// one second in flight each, 10 offered; then a clump of 45 refused
	// in one second.
	slow := load{inFlight: 5}
	for range 30 {
		s.run(980*time.Millisecond, slow)
		s.run(20*time.Millisecond, load{inFlight: 5, admitted: 5, shed: 5})
	}
	s.run(980*time.Millisecond, slow)
	s.run(20*time.Millisecond, load{inFlight: 5, admitted: 5, shed: 45})
	s.run(time.Second, slow)
	want := sizing.LimitFor(10, false)
	if d := s.last; d.Limit > sizing.LimitFor(20, false) || d.Limit < want-1 {
		t.Errorf("decision %+v, want about %d bytes for 10 units offered: a clump of one second is not the load", d, want)
	}
}

// TestNotShedding: work served in full gets no recommendation and no line.
func TestNotShedding(t *testing.T) {
	s := newService(t)
	s.run(100*time.Second, load{inFlight: 50, admitted: 2})
	if d := s.last; d.Limit != 0 || d.Reason != NotShedding {
		t.Errorf("decision %+v, want none, %q", d, NotShedding)
	}
	if len(s.says) != 0 {
		t.Errorf("said at %v, want never", s.says)
	}
}

// TestLeak: a leak gets no recommendation, whatever was shed, and the
// reason is said once a minute while it lasts.
func TestLeak(t *testing.T) {
	s := newService(t)
	s.r.Leak = true
	s.run(150*time.Second, overload)
	if d := s.last; d.Limit != 0 || d.Reason != Leak {
		t.Errorf("decision %+v, want none, %q", d, Leak)
	}
	if want := []time.Duration{time.Second, 61 * time.Second, 121 * time.Second}; !equal(s.says, want) {
		t.Errorf("said at %v, want %v", s.says, want)
	}
	// Once the leak is gone, the shedding is the load's again.
	s.r.Leak = false
	s.run(2*time.Second, overload)
	if want := sizing.LimitFor(150, false); !within(s.last.Limit, want) {
		t.Errorf("after the leak, decision %+v, want %d bytes", s.last, want)
	}
}

// TestShedForTime: where the time bound refuses as much as the memory
// bound, more memory would not serve the load: no recommendation, and a
// reason said. Where memory refuses most, the work refused for time is
// offered load too.
func TestShedForTime(t *testing.T) {
	s := newService(t)
	s.run(30*time.Second, load{inFlight: 50, admitted: 2, shed: 2, forTime: 2})
	if d := s.last; d.Limit != 0 || d.Reason != Time {
		t.Errorf("decision %+v, want none, %q", d, Time)
	}
	if want := []time.Duration{time.Second}; !equal(s.says, want) {
		t.Errorf("said at %v, want %v", s.says, want)
	}

	s = newService(t)
	s.run(30*time.Second, load{inFlight: 50, admitted: 2, shed: 3, forTime: 1})
	if want := sizing.LimitFor(150, false); !within(s.last.Limit, want) || s.last.Reason != "" {
		t.Errorf("memory refusing most: decision %+v, want %d bytes", s.last, want)
	}
}

// TestSheddableGap: Sheddable work refused asks for the limit at which it
// is admitted too, SheddableGap of the limit earlier.
func TestSheddableGap(t *testing.T) {
	s := newService(t)
	s.run(30*time.Second, load{inFlight: 50, admitted: 2, shed: 4, sheddable: 1})
	want := sizing.LimitFor(150, true)
	if !within(s.last.Limit, want) || want <= sizing.LimitFor(150, false) {
		t.Errorf("decision %+v, want %d bytes, above the %d without the gap", s.last, want, sizing.LimitFor(150, false))
	}
}

// TestForgetsPeak: the recommendation holds the peak for Window after the
// last second at it; the seconds whose horizon saw part of it ask for less,
// and are forgotten a horizon later; then the load since rules.
func TestForgetsPeak(t *testing.T) {
	s := newService(t)
	// 300 offered for 30 s, then 150.
	s.run(30*time.Second, load{inFlight: 50, admitted: 2, shed: 10})
	high, low := sizing.LimitFor(300, false), sizing.LimitFor(150, false)
	if !within(s.last.Limit, high) {
		t.Fatalf("at the peak, decision %+v, want %d bytes", s.last, high)
	}
	s.run(Window-time.Second, overload)
	if !within(s.last.Limit, high) {
		t.Errorf("%v after the peak, decision %+v, want the peak's %d bytes", Window-time.Second, s.last, high)
	}
	// The buckets whose offered load reached back into the peak are
	// forgotten a short horizon later.
	s.run(shortHorizon+time.Second, overload)
	if !within(s.last.Limit, low) {
		t.Errorf("%v after the peak, decision %+v, want the load's %d bytes", Window+shortHorizon, s.last, low)
	}
}

// TestShedStops: once the shedding stops, the recommendation holds for
// the window, unsaid, then there is none.
func TestShedStops(t *testing.T) {
	s := newService(t)
	s.run(30*time.Second, overload)
	want := sizing.LimitFor(150, false)
	s.run(Window-time.Second, load{inFlight: 50, admitted: 2})
	if d := s.last; !within(d.Limit, want) || d.Reason != "" {
		t.Errorf("%v after the shedding stopped: decision %+v, want %d bytes", Window-time.Second, d, want)
	}
	if want := []time.Duration{time.Second}; !equal(s.says, want) {
		t.Errorf("said at %v, want %v: not once the shedding stopped", s.says, want)
	}
	s.run(horizon+time.Second, load{inFlight: 50, admitted: 2})
	if d := s.last; d.Limit != 0 || d.Reason != NotShedding {
		t.Errorf("decision %+v, want none, %q", d, NotShedding)
	}
}

// TestClockBack: a clock that goes back starts over, and the
// recommendation is learned again from the readings after it.
func TestClockBack(t *testing.T) {
	s := newService(t)
	s.run(30*time.Second, overload)
	s.now = s.now.Add(-time.Hour)
	s.feed()
	if d := s.last; d.Limit != 0 || d.Reason != NotShedding {
		t.Errorf("after the clock went back, decision %+v, want none yet", d)
	}
	s.run(15*time.Second, overload)
	if want := sizing.LimitFor(150, false); !within(s.last.Limit, want) {
		t.Errorf("decision %+v, want %d bytes", s.last, want)
	}
}

// TestAtTheLimit: a recommendation at or below the limit in force is made
// but not said: the limit would have served the load.
func TestAtTheLimit(t *testing.T) {
	s := newService(t)
	s.r.LimitBytes = sizing.LimitFor(150, false)
	s.run(100*time.Second, overload)
	if want := sizing.LimitFor(150, false); !within(s.last.Limit, want) {
		t.Errorf("decision %+v, want %d bytes", s.last, want)
	}
	if len(s.says) != 0 {
		t.Errorf("said at %v, want never", s.says)
	}
}

// TestNoneAdmitted: refusals with nothing admitted tell no time in flight,
// and no limit.
func TestNoneAdmitted(t *testing.T) {
	s := newService(t)
	s.run(30*time.Second, load{inFlight: 4, shed: 4})
	if d := s.last; d.Limit != 0 || d.Reason != NotShedding {
		t.Errorf("decision %+v, want none", d)
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
