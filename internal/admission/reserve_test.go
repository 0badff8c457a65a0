package admission

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestLargeDeclaredNotStarved: under steady overload of small declared
// requests, the large ones are served at least half as often.
func TestLargeDeclaredNotStarved(t *testing.T) {
	s := newSim(256 * mib)
	s.declare = true
	s.rate = 3000
	s.size = func(r *rand.Rand) (int64, int64) {
		if r.Float64() < 0.02 {
			return 32 * mib, 0
		}
		return 512 << 10, 0
	}
	s.run(20 * time.Second)
	large := float64(s.largeServed) / float64(s.largeArrived)
	small := float64(s.served-s.largeServed) / float64(s.arrived-s.largeArrived)
	t.Logf("large served %.2f, small %.2f, peak %d MiB", large, small, s.peak/mib)
	if large < small/2 {
		t.Errorf("large requests served %.3f, small %.3f: starved", large, small)
	}
	if s.peak > 95*256*mib/100 {
		t.Errorf("peak %d MiB past Critical", s.peak/mib)
	}
}
