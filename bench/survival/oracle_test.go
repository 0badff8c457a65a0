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
		name       string
		svc        fakeService
		lo, hi, n  int
		best       int
		probes     int
		wantInside bool // best lies within a probe's step of the kill boundary
	}{
		{name: "kill bounds the cap", svc: fakeService{saturate: 1000, thrash: 1000, killAt: 220}, lo: 77, hi: 345, n: 4, probes: 4, wantInside: true},
		{name: "three probes", svc: fakeService{saturate: 1000, thrash: 1000, killAt: 220}, lo: 77, hi: 345, n: 3, probes: 3, wantInside: true},
		{name: "every probe killed: lo", svc: fakeService{saturate: 1000, thrash: 1000, killAt: 10}, lo: 50, hi: 400, n: 4, best: 50, probes: 4},
		{name: "thrash before the kill: the best goodput, not the highest cap",
			svc: fakeService{saturate: 1000, thrash: 200, killAt: 300}, lo: 77, hi: 345, n: 4, best: 163, probes: 4},
		{name: "no room to bisect", svc: fakeService{saturate: 10, thrash: 10, killAt: 10}, lo: 5, hi: 6, n: 4, best: 5, probes: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			best, probes, err := bisectCap(tc.lo, tc.hi, tc.n, tc.svc.probe)
			if err != nil {
				t.Fatal(err)
			}
			if len(probes) != tc.probes || len(tc.svc.tried) != tc.probes {
				t.Errorf("%d probes (%v), want %d", len(probes), tc.svc.tried, tc.probes)
			}
			for _, c := range tc.svc.tried {
				if c <= tc.lo || c >= tc.hi {
					t.Errorf("probed %d outside (%d, %d)", c, tc.lo, tc.hi)
				}
			}
			// The best is a surviving probe with the highest goodput, or lo.
			bestGoodput, bestCap := -1.0, tc.lo
			for _, p := range probes {
				if !p.Killed && (p.GoodputRatio > bestGoodput || (p.GoodputRatio == bestGoodput && p.Cap < bestCap)) {
					bestGoodput, bestCap = p.GoodputRatio, p.Cap
				}
			}
			if best != bestCap {
				t.Errorf("best = %d, want %d among %+v", best, bestCap, probes)
			}
			if tc.best != 0 && best != tc.best {
				t.Errorf("best = %d, want %d", best, tc.best)
			}
			if best >= tc.svc.killAt && best != tc.lo {
				t.Errorf("best %d would be killed (at %d)", best, tc.svc.killAt)
			}
			if tc.wantInside {
				// n geometric halvings of [lo, hi] leave a ratio of (hi/lo)^(1/2^n).
				step := math.Pow(float64(tc.hi)/float64(tc.lo), 1/math.Pow(2, float64(tc.n)))
				if float64(best)*step*1.05 < float64(tc.svc.killAt) {
					t.Errorf("best %d is more than a step (%.2f×) below the kill at %d; tried %v", best, step, tc.svc.killAt, tc.svc.tried)
				}
			}
		})
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
