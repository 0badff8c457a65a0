package admission

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestDeclaredOvershootKeepsTheBound: declared bytes in flight a little
// past the target cost the bound on units a little, not everything. At
// 3× overload the declared bytes sit at the target and now and then pass
// it; counted at the learned cost alone, a small pass would take the bound
// to the floor, and the slew would hold it low.
func TestDeclaredOvershootKeepsTheBound(t *testing.T) {
	const limit = 256 * mib
	for _, tc := range []struct {
		name string
		size func(*rand.Rand) (int64, int64)
	}{
		{"off the heap", func(*rand.Rand) (int64, int64) { return 8 << 10, mib }},
		{"on the heap", func(*rand.Rand) (int64, int64) { return mib, 0 }},
		{"half declared, half small", func(r *rand.Rand) (int64, int64) {
			if r.IntN(2) == 0 {
				return 8 << 10, mib
			}
			return 16 << 10, 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(limit)
			s.base = 8 * mib
			s.declare = true
			s.size = tc.size
			s.rate = 275
			s.run(3 * time.Second)
			s.reset()
			s.rate = 3 * 275
			least := math.Inf(1)
			for range 15 * time.Second / s.step {
				s.run(s.step)
				if n := len(s.inflight); n >= 100 {
					least = math.Min(least, float64(s.dec.Limit)/float64(n))
				}
			}
			t.Logf("least bound %.2f of the work in flight, served %d, peak %d MiB", least, s.served, s.peak/mib)
			if least < 0.8 {
				t.Errorf("the bound fell to %.2f of the work in flight", least)
			}
			if s.peak > 97*limit/100 {
				t.Errorf("peak committed %d MiB, past 0.97 of the limit", s.peak/mib)
			}
		})
	}
}
