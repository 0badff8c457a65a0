package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// capacityHits is a closed loop's answers over decodeMix: the small in 40,
// 50 and 60 ms, the medium in 200 ms, the large in 0.9 and 1.1 s, and a
// large one refused.
func capacityHits() []hit {
	all := decodeMix.all()
	lat := []time.Duration{40, 50, 60, 200, 200, 200, 200, 200, 900, 1100}
	var hits []hit
	for i, p := range all {
		hits = append(hits, hit{Bytes: p.pixelBytes(), Code: 200, Latency: lat[i] * time.Millisecond})
	}
	return append(hits, hit{Bytes: all[9].pixelBytes(), Code: 503, Latency: time.Millisecond})
}

func TestCapacity(t *testing.T) {
	rate, p99, means, err := capacity(decodeMix, 2, capacityHits())
	if err != nil {
		t.Fatal(err)
	}
	// Little's law: 2 clients / (0.6 × 50 ms + 0.37 × 200 ms + 0.03 × 1 s).
	if want := round(2/0.134, 1); rate != want {
		t.Errorf("rate %v, want %v", rate, want)
	}
	if want := []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, time.Second}; len(means) != 3 || means[0] != want[0] || means[1] != want[1] || means[2] != want[2] {
		t.Errorf("class means %v, want %v", means, want)
	}
	// The large weigh 0.015 each: the last 1.5% of the mix is the slower.
	if p99 != 1100*time.Millisecond {
		t.Errorf("p99 %v, want 1.1s", p99)
	}
	// Ten large in 0.9s and one in 1.1s weigh 0.03 together: the mix's
	// 99th percentile is 0.9s, where the answers' own is 1.1s.
	hits := capacityHits()
	for range 9 {
		hits = append(hits, hits[8])
	}
	if rate, p99, _, _ := capacity(decodeMix, 2, hits); p99 != 900*time.Millisecond || rate != round(2/(0.03+0.074+0.03*10.1/11), 1) {
		t.Errorf("with ten large in 0.9s: rate %v, p99 %v; want %v, 0.9s", rate, p99, round(2/(0.03+0.074+0.03*10.1/11), 1))
	}
	hits = capacityHits()
	hits[8].Code, hits[9].Code = 503, 0
	if _, _, _, err := capacity(decodeMix, 2, hits); err == nil || !strings.Contains(err.Error(), "class large") {
		t.Errorf("no large picture served: %v, want an error naming the class", err)
	}
}

func TestWeightedQuantile(t *testing.T) {
	var ds []time.Duration
	var ws []float64
	for _, h := range capacityHits()[:10] {
		ds = append(ds, h.Latency)
	}
	for i := range ds {
		ws = append(ws, decodeMix.weights()[i])
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 60 * time.Millisecond}, // the three small weigh 0.6: unweighted, the median would be a medium's
		{0.6, 60 * time.Millisecond},
		{0.61, 200 * time.Millisecond},
		{0.98, 900 * time.Millisecond}, // unweighted, the 98th percentile of ten is the largest
		{0.99, 1100 * time.Millisecond},
		{1, 1100 * time.Millisecond},
	} {
		if got := weightedQuantile(ds, ws, tc.q); got != tc.want {
			t.Errorf("q %v: %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile(append([]time.Duration(nil), ds...), 0.98); got != 1100*time.Millisecond {
		t.Errorf("unweighted q 0.98 = %v: the case no longer tells the two apart", got)
	}
	if weightedQuantile(nil, nil, 0.99) != 0 || weightedQuantile(ds[:1], []float64{0}, 0.99) != 0 {
		t.Error("a quantile of nothing is not 0")
	}
	if math.Abs(sum(ws)-1) > 1e-9 {
		t.Errorf("weights sum to %v", sum(ws))
	}
}

func sum(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s
}
