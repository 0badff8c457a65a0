package admission

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestCostThroughRampDown: work that allocates 1 MiB as it starts, at a
// steady rate; then a spell in which work ends faster than it starts, or
// only ends while something else allocates; then the steady rate again.
// The cost stays at 1 MiB: the ends allocated in earlier windows, and
// allocation with no work starting has no new work to be charged to.
func TestCostThroughRampDown(t *testing.T) {
	const unit = 1 << 20
	var m costModel
	now := time.Unix(1e9, 0)
	const step = 2 * time.Millisecond
	n := 600.0
	feed := func(d time.Duration, starts, ends, other float64) {
		for end := now.Add(d); now.Before(end); now = now.Add(step) {
			n += starts - ends
			m.observeHeap(now, starts*unit+other, 0, starts, ends, int64(math.Max(1, n)))
		}
	}
	feed(2*time.Second, 2, 2, 0) // 1000 a second in, 1000 out
	if c := m.mean(int64(n), 0); math.Abs(c/unit-1) > 0.01 {
		t.Fatalf("steady cost %.3f MiB, want 1", c/unit)
	}
	for _, tt := range []struct {
		name                string
		starts, ends, other float64
	}{
		{"a tenth of the ends restart", 0.2, 2, 0},
		{"ends only, 100 MiB/s allocated elsewhere", 0, 2, 200 << 10},
	} {
		feed(250*time.Millisecond, tt.starts, tt.ends, tt.other)
		if c := m.mean(int64(n), 0); c < 0.97*unit || c > 1.03*unit {
			t.Errorf("%s: cost %.3f MiB, want 1", tt.name, c/unit)
		}
		feed(50*time.Millisecond, 2, 2, 0)
		if c := m.mean(int64(n), 0); c < 0.97*unit || c > 1.03*unit {
			t.Errorf("%s, then 50 ms steady: cost %.3f MiB, want 1", tt.name, c/unit)
		}
		feed(time.Second, 2, 2, 0)
		if c := m.mean(int64(n), 0); c < 0.97*unit || c > 1.03*unit {
			t.Errorf("%s, then steady again: cost %.3f MiB, want 1", tt.name, c/unit)
		}
	}
}

// TestCostThroughRampUp: work of 1 MiB held 300 ms, arriving at a rate that
// steps up, from idle or from a steady state. While more work starts than
// ends, a window reads up to twice the cost of work that allocates as it
// starts; the estimate must not keep that reading once the work has shown
// its cost, nor take it as news while it agrees with what is known. A
// costlier class arriving in a ramp must still raise the cost at once, and
// work that allocates over its life must not read low.
func TestCostThroughRampUp(t *testing.T) {
	const (
		unit = 1 << 20
		hold = 300 * time.Millisecond
		step = 2 * time.Millisecond
	)
	newRun := func() *rampRun { return &rampRun{now: time.Unix(1e9, 0), hold: hold, step: step} }
	t.Run("from idle", func(t *testing.T) {
		for _, gradual := range []bool{false, true} {
			r := newRun()
			// The first hold is all starts; by two holds the work has
			// shown its cost.
			hi, lo := r.feed(2*time.Second, 700, unit, gradual, 2*hold)
			t.Logf("gradual %v: cost %.3f to %.3f MiB after %v", gradual, lo/unit, hi/unit, 2*hold)
			if hi > 1.1*unit || lo < 0.95*unit {
				t.Errorf("gradual %v: cost %.3f to %.3f MiB after %v, want within [0.95, 1.1]", gradual, lo/unit, hi/unit, 2*hold)
			}
		}
	})
	t.Run("a spike of the same work", func(t *testing.T) {
		r := newRun()
		r.feed(3*time.Second, 275, unit, false, 0)
		hi, lo := r.feed(2*time.Second, 825, unit, false, 0)
		t.Logf("cost %.3f to %.3f MiB through the spike", lo/unit, hi/unit)
		if hi > 1.03*unit || lo < 0.97*unit {
			t.Errorf("cost %.3f to %.3f MiB through the spike, want within 3%% of 1", lo/unit, hi/unit)
		}
	})
	t.Run("a costlier class in a ramp", func(t *testing.T) {
		for _, gradual := range []bool{false, true} {
			r := newRun()
			r.feed(3*time.Second, 275, 32<<10, gradual, 0)
			r.feed(hold, 825, unit, gradual, 0)
			c := r.m.mean(int64(len(r.ends)), 0)
			t.Logf("gradual %v: cost %.3f MiB a hold into the ramp", gradual, c/unit)
			// The moving average's own pace: the rule that keeps an
			// estimate in a ramp's range must not slow a rise past it.
			// Large allocations set the margin at once (tailCount).
			want := 0.55 * unit
			if gradual {
				want = 0.35 * unit
			}
			if c < want {
				t.Errorf("gradual %v: cost %.3f MiB a hold into a ramp of 1 MiB work, want at least %.2f", gradual, c/unit, want/unit)
			}
		}
	})
}

// rampRun is a cost model fed work of one hold, at rates that step.
type rampRun struct {
	m          costModel
	now        time.Time
	hold, step time.Duration
	ends       []time.Time // when each unit in flight ends, in order
	ahead      float64     // fractional arrivals carried to the next step
}

// feed runs rate arrivals a second of work that allocates size, all as it
// starts or (gradual) evenly over the hold, for d; it returns the highest
// and lowest cost read after the first `after` of it.
func (r *rampRun) feed(d time.Duration, rate, size float64, gradual bool, after time.Duration) (hi, lo float64) {
	lo = math.Inf(1)
	from := r.now
	for end := r.now.Add(d); r.now.Before(end); r.now = r.now.Add(r.step) {
		r.ahead += rate * r.step.Seconds()
		starts := math.Floor(r.ahead)
		r.ahead -= starts
		for range int(starts) {
			r.ends = append(r.ends, r.now.Add(r.hold))
		}
		ends := 0
		for len(r.ends) > 0 && !r.ends[0].After(r.now) {
			r.ends, ends = r.ends[1:], ends+1
		}
		alloc := starts * size
		if gradual {
			alloc = float64(len(r.ends)) * size * float64(r.step) / float64(r.hold)
		}
		r.m.observeHeap(r.now, alloc, 0, starts, float64(ends), int64(len(r.ends)))
		if r.now.Sub(from) >= after {
			c := r.m.mean(int64(len(r.ends)), 0)
			hi, lo = max(hi, c), min(lo, c)
		}
	}
	return hi, lo
}

// TestClientDips: closed-loop clients that drop to a fraction of their
// connections for a while and come back. While the work in flight falls,
// work ends faster than it starts; counted as units of the cost, those
// ends would read the cost low, the bound would rise on it, and the
// returning clients would take the committed memory past the limit. The
// cost does not err low, and the peak stays below Critical.
func TestClientDips(t *testing.T) {
	const limit = 256 * mib
	for _, conns := range []int{25, 50, 100, 200} {
		for _, dip := range []time.Duration{100 * time.Millisecond, 400 * time.Millisecond, time.Second} {
			s := newSim(limit)
			s.base = 8 * mib
			s.conns = 400
			s.run(3 * time.Second)
			s.reset()
			low := s.dec.Cost
			for _, phase := range []struct {
				conns int
				d     time.Duration
			}{{conns, dip}, {400, 2 * time.Second}, {conns, dip}, {400, 2 * time.Second}} {
				s.conns = phase.conns
				for end := s.now.Add(phase.d); s.now.Before(end); {
					s.run(s.step)
					low = min(low, s.dec.Cost)
				}
			}
			t.Logf("dip to %d connections for %v: peak %d MiB, least cost %d KiB", conns, dip, s.peak/mib, low>>10)
			if s.peak > 95*limit/100 {
				t.Errorf("dip to %d connections for %v: peak committed %d MiB, past Critical (%d MiB)", conns, dip, s.peak/mib, 95*limit/100/mib)
			}
			if low < 95*mib/100 {
				t.Errorf("dip to %d connections for %v: the cost fell to %d KiB, for work that holds 1024", conns, dip, low>>10)
			}
		}
	}
}

// TestNewRareClassHoldsTheLimit: a class of large requests, rare among
// the units but several in flight at once, arrives in a service warmed on
// small ones. The slow estimate of the large allocations knows nothing of
// it; the fast one must count at once, since the work in flight holds
// more than one of them.
func TestNewRareClassHoldsTheLimit(t *testing.T) {
	for _, tt := range []struct {
		p    float64
		size int64
	}{{0.005, 64 * mib}, {0.02, 24 * mib}} {
		for seed := uint64(1); seed <= 4; seed++ {
			s := classArrives(seed, tt.p, tt.size, 10*time.Second)
			t.Logf("1 in %.0f of %d MiB, seed %d: peak %d MiB, %.1f%% shed", 1/tt.p, tt.size/mib, seed, s.peak/mib, 100*(1-s.servedShare()))
			if s.peak > 97*256*mib/100 {
				t.Errorf("1 in %.0f of %d MiB, seed %d: peak %d MiB, past 0.97 of the limit", 1/tt.p, tt.size/mib, seed, s.peak/mib)
			}
		}
	}
}

// TestHeavyTailLullKeepsTheCost: under heavy-tailed sizes at 3× overload,
// a lull in the largest requests does not lower the cost the bound uses.
// The fast estimates' horizon holds two or three of them; read alone, they
// would read the cost low in a lull and raise the bound, ready for the next
// clump.
func TestHeavyTailLullKeepsTheCost(t *testing.T) {
	const mean = 0.01*24*mib + 0.04*2*mib + 0.95*(32<<10)
	for seed := uint64(1); seed <= 8; seed++ {
		s := newSim(256 * mib)
		s.rng = rand.New(rand.NewPCG(seed, 3))
		s.base = 8 * mib
		s.size = heavyTailed
		s.rate = 550
		s.run(3 * time.Second)
		s.reset()
		s.rate = 1650
		s.run(time.Second) // the slow estimates learn the mix
		least, most := int64(math.MaxInt64), int64(0)
		var sumc float64
		for range 1400 {
			s.run(10 * time.Millisecond)
			least, most = min(least, s.dec.Cost), max(most, s.dec.Limit)
			sumc += float64(s.dec.Cost)
		}
		t.Logf("seed %d: least cost %.2f of the mean, avg %.2f, most bound %d, peak %d MiB, %.1f%% shed", seed, float64(least)/mean, sumc/1400/mean, most, s.peak/mib, 100*(1-s.servedShare()))
		if float64(least) < 0.75*mean {
			t.Errorf("seed %d: the cost fell to %.2f of the mix's mean (%d KiB)", seed, float64(least)/mean, least>>10)
		}
		if s.peak > 97*256*mib/100 {
			t.Errorf("seed %d: peak %d MiB, past 0.97 of the limit", seed, s.peak/mib)
		}
	}
}

func TestPoissonAtLeast(t *testing.T) {
	for _, tt := range []struct {
		k, lambda, want float64
	}{
		{0, 3, 1},
		{0.4, 3, 1}, // rounds to 0
		{1, 0, 0},
		{1, 0.5, 1 - math.Exp(-0.5)},
		{3, 0.16, 1 - math.Exp(-0.16)*(1+0.16+0.16*0.16/2)},
		{2.6, 2, 1 - math.Exp(-2)*(1+2+2)}, // rounds to 3
	} {
		if got := poissonAtLeast(tt.k, tt.lambda); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("poissonAtLeast(%g, %g) = %g, want %g", tt.k, tt.lambda, got, tt.want)
		}
	}
}
