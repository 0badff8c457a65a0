package main

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSizeMixDraw(t *testing.T) {
	for _, m := range []sizeMix{heavyTailMix, uploadMix} {
		var sum float64
		for _, c := range m {
			sum += c.Weight
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("weights sum to %v", sum)
		}
		// A grid over u picks each class in proportion to its weight; a
		// grid over v spans its range, whose mean is the log-uniform mean.
		const n = 1000
		counts := make([]int, len(m))
		var total float64
		for i := range n {
			u := (float64(i) + 0.5) / n
			for j := range n {
				sz := m.draw(u, (float64(j)+0.5)/n)
				k := m.class(sz)
				if k < 0 {
					t.Fatalf("draw(%v) = %d is in no class", u, sz)
				}
				if j == 0 {
					counts[k]++
				}
				total += float64(sz)
			}
		}
		for k, c := range m {
			if want := int(math.Round(c.Weight * n)); counts[k] != want {
				t.Errorf("class %s drawn %d in %d, want %d", c.Name, counts[k], n, want)
			}
		}
		if got, want := total/(n*n), m.mean(); math.Abs(got-want)/want > 0.01 {
			t.Errorf("mean of draws %.0f, mean() %.0f", got, want)
		}
	}
	if got := heavyTailMix.draw(0.999, 0.9999); got < 16<<20 || got > 32<<20 {
		t.Errorf("the tail of heavytail drew %d, want 16-32 MiB", got)
	}
}

func TestRequestGen(t *testing.T) {
	g := newRequestGen("http://x/work", heavyTailMix, false, sizeSeed)
	h := newRequestGen("http://x/work", heavyTailMix, false, sizeSeed)
	large := 0
	for range 5000 {
		r := g.next()
		if r2 := h.next(); r.URL != r2.URL || r.Bytes != r2.Bytes {
			t.Fatal("two generators differ: sizes must follow a fixed seed")
		}
		if r.Method != "GET" || r.Body != nil || requestBytes(r.URL) != r.Bytes || heavyTailMix.class(r.Bytes) < 0 {
			t.Fatalf("request %+v", r)
		}
		if heavyTailMix.class(r.Bytes) == 2 {
			large++
		}
	}
	if large < 25 || large > 80 {
		t.Errorf("%d large requests in 5000, want about 1%%", large)
	}
	// Another seed, another sequence: the oracle's spikes draw their own.
	a, b := newRequestGen("http://x/work", heavyTailMix, false, sizeSeed), newRequestGen("http://x/work", heavyTailMix, false, sizeSeed+1)
	same := 0
	for range 100 {
		if a.next().Bytes == b.next().Bytes {
			same++
		}
	}
	if same > 10 {
		t.Errorf("seeds %d and %d drew the same size %d times in 100", sizeSeed, sizeSeed+1, same)
	}
	u := newRequestGen("http://x/work", uploadMix, true, sizeSeed).next()
	if u.Method != "POST" || int64(len(u.Body)) != u.Bytes || !strings.HasSuffix(u.URL, "?bytes="+strconv.FormatInt(u.Bytes, 10)) {
		t.Errorf("upload %s %s with %d bytes, size %d", u.Method, u.URL, len(u.Body), u.Bytes)
	}
	if p := newRequestGen("http://x/work", nil, false, sizeSeed).next(); p.URL != "http://x/work" || p.Bytes != 0 {
		t.Errorf("uniform request %+v", p)
	}
	if requestBytes("http://x/work") != 0 || requestBytes("%%") != 0 {
		t.Error("requestBytes of a URL without a size is not 0")
	}
}

func TestClassShares(t *testing.T) {
	var hits []hit
	add := func(n int, size int64, code int, at time.Duration) {
		for range n {
			hits = append(hits, hit{At: at, Bytes: size, Code: code})
		}
	}
	add(90, 32<<10, 200, time.Second)
	add(10, 32<<10, 503, time.Second)
	add(3, 20<<20, 200, time.Second)
	add(7, 20<<20, 503, time.Second)
	add(50, 20<<20, 200, 10*time.Second) // outside the window
	add(5, 2<<20, 0, time.Second)
	add(5, 100<<20, 200, time.Second) // in no class
	got := classShares(heavyTailMix, hits, 0, 5*time.Second, 0)
	want := []classShare{{"small", 100, 90}, {"medium", 5, 0}, {"large", 10, 3}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("class %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	s := shape{Name: shapeHeavyTail, Mix: heavyTailMix}
	sched := schedule{{Name: phaseSpike, Rate: 10, Duration: 5 * time.Second}}
	r := summarize(modeOomguard, s, sched, 10, 0, hits, nil, 256<<20)
	if r.ServedShareSmall == nil || *r.ServedShareSmall != 0.9 || r.ServedShareLarge == nil || *r.ServedShareLarge != 0.3 ||
		r.LargeVsSmall == nil || *r.LargeVsSmall != round(0.3/0.9, 3) {
		t.Errorf("shares small %v, large %v, ratio %v; want 0.9, 0.3, 0.333", r.ServedShareSmall, r.ServedShareLarge, r.LargeVsSmall)
	}
	if (classShare{}).share() != 0 {
		t.Error("share of none sent is not 0")
	}
}
