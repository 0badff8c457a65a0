package main

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// fakeService is a service under a fixed cap at the spike: goodput grows
// with the cap up to saturation, collapses past thrash (the GC takes the
// CPU), and the kernel kills it at killAt or more.
type fakeService struct {
	saturate, thrash, killAt int
	tried                    []int
}

func (f *fakeService) probe(c int) (capProbe, error) {
	f.tried = append(f.tried, c)
	if c >= f.killAt {
		return capProbe{Cap: c, Killed: true}, nil
	}
	g := float64(min(c, f.saturate)) / 100
	if c > f.thrash {
		g = 0.2
	}
	return capProbe{Cap: c, GoodputRatio: g}, nil
}

func TestBisectCap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		svc       fakeService
		lo, hi, n int
		tried     []int
		best      int
	}{
		// Geometric middles of [77, 345]: 163 survives, 237 is killed,
		// 197 and 216 survive; goodput rises with the cap.
		{name: "kill bounds the cap", svc: fakeService{saturate: 1000, thrash: 1000, killAt: 220}, lo: 77, hi: 345, n: 4,
			tried: []int{163, 237, 197, 216}, best: 216},
		{name: "three probes", svc: fakeService{saturate: 1000, thrash: 1000, killAt: 220}, lo: 77, hi: 345, n: 3,
			tried: []int{163, 237, 197}, best: 197},
		{name: "every probe killed: lo", svc: fakeService{saturate: 1000, thrash: 1000, killAt: 10}, lo: 50, hi: 400, n: 4,
			tried: []int{141, 84, 65, 57}, best: 50},
		{name: "thrash before the kill: the best goodput, not the highest cap",
			svc: fakeService{saturate: 1000, thrash: 200, killAt: 300}, lo: 77, hi: 345, n: 4,
			tried: []int{163, 237, 286, 314}, best: 163},
		{name: "saturated: the lowest cap that serves as much", svc: fakeService{saturate: 150, thrash: 1000, killAt: 1000},
			lo: 77, hi: 345, n: 3, tried: []int{163, 237, 286}, best: 163},
		{name: "no room to bisect", svc: fakeService{saturate: 10, thrash: 10, killAt: 10}, lo: 5, hi: 6, n: 4, best: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			best, probes, err := bisectCap(tc.lo, tc.hi, tc.n, tc.svc.probe)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tc.svc.tried, tc.tried) || len(probes) != len(tc.tried) {
				t.Errorf("probed %v, want %v", tc.svc.tried, tc.tried)
			}
			if best != tc.best {
				t.Errorf("best = %d, want %d; probes %+v", best, tc.best, probes)
			}
			if best >= tc.svc.killAt && best != tc.lo {
				t.Errorf("best %d would be killed (at %d)", best, tc.svc.killAt)
			}
		})
	}
}

func TestBestCap(t *testing.T) {
	for _, tc := range []struct {
		probes []capProbe
		below  int
		want   int
	}{
		{[]capProbe{{Cap: 466, GoodputRatio: 2.996}, {Cap: 679, GoodputRatio: 2.994}, {Cap: 819, GoodputRatio: 2.968}}, math.MaxInt, 466},
		{[]capProbe{{Cap: 100, GoodputRatio: 1}, {Cap: 200, GoodputRatio: 1.5}, {Cap: 300, GoodputRatio: 1.49}}, math.MaxInt, 200},
		{[]capProbe{{Cap: 100, GoodputRatio: 1}, {Cap: 200, GoodputRatio: 1.5}, {Cap: 300, GoodputRatio: 1.6}}, math.MaxInt, 300},
		{[]capProbe{{Cap: 100, GoodputRatio: 1}, {Cap: 200, GoodputRatio: 1.5}, {Cap: 300, GoodputRatio: 1.6}}, 300, 200},
		{[]capProbe{{Cap: 100, Killed: true}}, math.MaxInt, 0},
		{nil, math.MaxInt, 0},
	} {
		if got := bestCap(tc.probes, tc.below); got != tc.want {
			t.Errorf("bestCap(%+v, below %d) = %d, want %d", tc.probes, tc.below, got, tc.want)
		}
	}
}

func TestLowerCap(t *testing.T) {
	// The quick run's uniform shape: 237 survived its probe, then died on
	// the full load; 163 is the next.
	probes := []capProbe{{Cap: 163, GoodputRatio: 2.553}, {Cap: 237, GoodputRatio: 3}, {Cap: 286, Killed: true},
		{Cap: 237, Killed: true, FullLoad: true}}
	// The probe below, 163, is far: 0.9 of 237 is tried first.
	if got := lowerCap(probes, 237); got != 213 {
		t.Errorf("lowerCap = %d, want 0.9 of 237, 213", got)
	}
	if got := lowerCap(probes, 163); got != 147 {
		t.Errorf("lowerCap below every probe = %d, want 0.9 of 163, 147", got)
	}
	// A surviving probe above 0.9 of the cap is taken.
	if got := lowerCap([]capProbe{{Cap: 351, GoodputRatio: 2.1}, {Cap: 386, Killed: true, FullLoad: true}}, 386); got != 351 {
		t.Errorf("lowerCap = %d, want the probe at 351", got)
	}
	// A small cap steps down by one, where 0.9 of it rounds back to it.
	for _, c := range []int{2, 3, 4, 5} {
		if got := lowerCap([]capProbe{{Cap: c, Killed: true, FullLoad: true}}, c); got != c-1 {
			t.Errorf("lowerCap(killed at %d) = %d, want %d", c, got, c-1)
		}
	}
}

func TestBisectCapError(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	_, probes, err := bisectCap(10, 100, 4, func(c int) (capProbe, error) {
		n++
		if n == 2 {
			return capProbe{}, boom
		}
		return capProbe{Cap: c, GoodputRatio: 1}, nil
	})
	if !errors.Is(err, boom) || len(probes) != 1 {
		t.Errorf("err %v after %d probes, want boom after 1", err, len(probes))
	}
}

func TestCapRange(t *testing.T) {
	// 1 MiB requests under 0.9 of 256 MiB: about 230 fill it.
	lo, hi := capRange(256<<20, 1<<20)
	if lo != 77 || hi != 346 {
		t.Errorf("capRange(256 MiB, 1 MiB) = %d, %d; want 77, 346", lo, hi)
	}
	lo, hi = capRange(1<<20, 1<<30)
	if lo != 1 || hi != 2 {
		t.Errorf("capRange for requests larger than the limit = %d, %d; want 1, 2", lo, hi)
	}
	if !slices.IsSorted([]int{lo, hi}) {
		t.Error("lo > hi")
	}
}

// fullLoad is the load at a cap: the runs at each cap, in turn, die
// (true) or live, on the spike or the full load alike.
type fullLoad struct {
	dies  map[int][]bool
	tried []int
	full  []bool
	lives []int // the lives so far, at each run
}

func (f *fullLoad) run(c, life int, full bool) (capProbe, error) {
	f.lives = append(f.lives, life)
	n := 0
	for _, t := range f.tried {
		if t == c {
			n++
		}
	}
	f.tried = append(f.tried, c)
	f.full = append(f.full, full)
	d := f.dies[c]
	return capProbe{Killed: n < len(d) && d[n], GoodputRatio: float64(c) / 100}, nil
}

func TestSettleCap(t *testing.T) {
	// The bisection's probes: 386 survived its probe, 351 and 291 too.
	probes := []capProbe{{Cap: 291, GoodputRatio: 2.6}, {Cap: 386, GoodputRatio: 2.9}, {Cap: 351, GoodputRatio: 2.8}, {Cap: 466, Killed: true}}
	for _, tc := range []struct {
		name             string
		dies             map[int][]bool
		lives, stepDowns int
		tried            []int
		full             []bool // the runs on the full load; nil: the last only
		lifeAt           []int  // the lives so far at each run; nil: not checked
		cap              int
	}{
		{name: "lives three times", dies: nil, lives: 3, stepDowns: 3, tried: []int{386, 386, 386}, cap: 386},
		// A death on the full load after two lives on the spike: the
		// next cap starts on the spike again.
		{name: "a death on the full load", dies: map[int][]bool{386: {false, false, true}}, lives: 3, stepDowns: 3,
			tried: []int{386, 386, 386, 351, 351, 351}, full: []bool{false, false, true, false, false, true},
			lifeAt: []int{0, 1, 2, 0, 1, 2}, cap: 351},
		// Step-downs run out on the spike: the full load still runs once,
		// and stands.
		{name: "step-downs run out on the spike", dies: map[int][]bool{386: {true}, 351: {true, true}},
			lives: 3, stepDowns: 1, tried: []int{386, 351, 351}, full: []bool{false, false, true}, lifeAt: []int{0, 0, 2}, cap: 351},
		// A cap that lived once, then died: the next lower probe starts
		// its count afresh.
		{name: "a death after a life", dies: map[int][]bool{386: {false, true}}, lives: 3, stepDowns: 3,
			tried: []int{386, 386, 351, 351, 351}, cap: 351},
		// 351 died: 0.9 of it, 316, is above the probe at 291. Then 291,
		// and below every probe 0.9 of it.
		{name: "steps of 0.9 and the probes", dies: map[int][]bool{386: {true}, 351: {true}, 316: {false, false, true}, 291: {true}},
			lives: 3, stepDowns: 5, tried: []int{386, 351, 316, 316, 316, 291, 262, 262, 262},
			full: []bool{false, false, false, false, true, false, false, false, true}, cap: 262},
		{name: "step-downs run out: the last run stands", dies: map[int][]bool{386: {true}, 351: {false, false, true}},
			lives: 3, stepDowns: 1, tried: []int{386, 351, 351, 351}, cap: 351},
		{name: "one life, as -quick", dies: map[int][]bool{386: {true}}, lives: 1, stepDowns: 3, tried: []int{386, 351},
			full: []bool{true, true}, cap: 351},
		{name: "fixed cap: one run", dies: map[int][]bool{386: {true}}, lives: 1, stepDowns: 0, tried: []int{386}, cap: 386},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fullLoad{dies: tc.dies}
			c, got, err := settleCap(386, tc.lives, tc.stepDowns, slices.Clone(probes), f.run)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.tried, tc.tried) {
				t.Errorf("ran %v, want %v", f.tried, tc.tried)
			}
			if c != tc.cap {
				t.Errorf("cap = %d, want %d", c, tc.cap)
			}
			want := tc.full
			if want == nil {
				want = make([]bool, len(tc.tried))
				want[len(want)-1] = true
			}
			if !slices.Equal(f.full, want) {
				t.Errorf("full loads %v, want %v", f.full, want)
			}
			if tc.lifeAt != nil && !slices.Equal(f.lives, tc.lifeAt) {
				t.Errorf("lives so far at each run %v, want %v", f.lives, tc.lifeAt)
			}
			runs := got[len(probes):]
			if len(runs) != len(tc.tried) {
				t.Fatalf("%d runs joined the probes, want %d", len(runs), len(tc.tried))
			}
			for i, p := range runs {
				if p.FullLoad != want[i] || p.Spike == want[i] || p.Cap != tc.tried[i] {
					t.Errorf("probe %d = %+v, want cap %d, full load %v", i, p, tc.tried[i], want[i])
				}
			}
		})
	}
}

func TestSettleCapError(t *testing.T) {
	boom := errors.New("boom")
	c, probes, err := settleCap(100, 3, 3, nil, func(int, int, bool) (capProbe, error) { return capProbe{}, boom })
	if !errors.Is(err, boom) || c != 100 || len(probes) != 0 {
		t.Errorf("cap %d, %d probes, err %v; want 100, none, boom", c, len(probes), err)
	}
}

func TestBestCapSkipsFullLoads(t *testing.T) {
	// A full load's goodput counts its calm phases: not comparable with a
	// probe's at the spike.
	probes := []capProbe{{Cap: 200, GoodputRatio: 2.9}, {Cap: 250, GoodputRatio: 1.8, FullLoad: true}}
	if got := bestCap(probes, 300); got != 200 {
		t.Errorf("bestCap = %d, want 200, the short probe", got)
	}
}

// TestClimbCap: the cap of a CPU-bound load climbs by doubling while
// goodput rises, then probes the middle towards the better neighbour.
func TestClimbCap(t *testing.T) {
	const killed = -1.0
	for _, tc := range []struct {
		name         string
		goodput      map[int]float64 // of the caps the search may try; killed
		start, hi, n int
		tried        []int
		best         int
	}{
		{name: "a peak: climb past it, then the middle on the better side",
			goodput: map[int]float64{2: 1.0, 3: 1.3, 4: 1.4, 6: 1.2, 8: 0.9}, start: 2, hi: 70, n: 4,
			tried: []int{2, 4, 8, 3}, best: 4},
		{name: "more probes: the other side once the first has no cap left",
			goodput: map[int]float64{2: 1.0, 3: 1.3, 4: 1.4, 5: 1.35, 6: 1.2, 8: 0.9}, start: 2, hi: 70, n: 7,
			tried: []int{2, 4, 8, 3, 6, 5}, best: 4},
		{name: "the best at the start", goodput: map[int]float64{1: 0.7, 2: 0.69}, start: 1, hi: 70, n: 4,
			tried: []int{1, 2}, best: 1},
		{name: "a kill stops the climb and is the worse side",
			goodput: map[int]float64{2: 1.0, 3: 1.3, 4: 1.5, 8: killed}, start: 2, hi: 70, n: 4,
			tried: []int{2, 4, 8, 3}, best: 4},
		{name: "rising to hi: refine below the top",
			goodput: map[int]float64{2: 1, 4: 2, 6: 2.5, 7: 2.9, 8: 3}, start: 2, hi: 10, n: 5,
			tried: []int{2, 4, 8, 6, 7}, best: 8},
		{name: "saturated: the lowest cap that serves as much",
			goodput: map[int]float64{2: 1.0, 3: 1.003, 4: 1.005}, start: 2, hi: 70, n: 4,
			tried: []int{2, 4, 3}, best: 2},
		{name: "every probe killed: 1", goodput: map[int]float64{2: killed}, start: 2, hi: 70, n: 4,
			tried: []int{2}, best: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tried []int
			best, probes, err := climbCap(tc.start, tc.hi, tc.n, func(c int) (capProbe, error) {
				tried = append(tried, c)
				g, ok := tc.goodput[c]
				if !ok {
					t.Fatalf("probed cap %d, which the case does not know", c)
				}
				return capProbe{Cap: c, Killed: g == killed, GoodputRatio: max(g, 0)}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tried, tc.tried) || len(probes) != len(tried) {
				t.Errorf("probed %v, want %v", tried, tc.tried)
			}
			if best != tc.best {
				t.Errorf("best = %d, want %d; probes %+v", best, tc.best, probes)
			}
		})
	}
}

func TestClimbCapError(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	best, probes, err := climbCap(2, 70, 4, func(c int) (capProbe, error) {
		if n++; n == 2 {
			return capProbe{}, boom
		}
		return capProbe{Cap: c, GoodputRatio: 1}, nil
	})
	if !errors.Is(err, boom) || best != 2 || len(probes) != 1 {
		t.Errorf("climbCap = %d, %v, %v; want 2, the one probe, boom", best, probes, err)
	}
}
