package admission

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestLeakUnderLightLoad: a slow leak with light requests on top. The
// leak is told apart from load, and the requests are not shed for memory
// they do not hold, up to the leak filling the memory past the target.
func TestLeakUnderLightLoad(t *testing.T) {
	for _, declare := range []bool{false, true} {
		t.Run(map[bool]string{false: "learned cost", true: "declared cost"}[declare], func(t *testing.T) {
			s := newSim(256 * mib)
			s.base = 16 * mib
			s.leakRate = 4 * mib
			s.rate = 100
			s.hold = 20 * time.Millisecond
			s.declare = declare
			s.size = func(*rand.Rand) (int64, int64) { return 64 << 10, 0 }
			leakSeen := time.Duration(0)
			for el := time.Duration(0); el < 56*time.Second; el += time.Second {
				s.run(time.Second)
				if s.dec.Leak && leakSeen == 0 {
					leakSeen = el
					if r := s.dec.LeakRate; r < 3*mib || r > 5*mib {
						t.Errorf("leak rate %.1f MiB/s, want about 4", r/mib)
					}
				}
			}
			t.Logf("leak seen after %v, base %d MiB at the end, %.2f%% shed", leakSeen, s.base/mib, 100*(1-s.servedShare()))
			if leakSeen == 0 || leakSeen > 25*time.Second {
				t.Errorf("leak seen after %v, want within 25s", leakSeen)
			}
			if sh := 1 - s.servedShare(); sh > 0.01 {
				t.Errorf("%.1f%% of light requests shed during the leak, want at most 1%%", 100*sh)
			}
		})
	}
}

// TestLoadIsNotALeak: memory that grows with the work is load, not a leak.
func TestLoadIsNotALeak(t *testing.T) {
	s := newSim(256 * mib)
	s.hold = 100 * time.Millisecond
	for rate := 100.0; rate <= 1500; rate += 50 {
		s.rate = rate
		s.run(time.Second)
		if s.dec.Leak {
			t.Fatalf("a leak reported at %v rps of rising load", rate)
		}
	}
}
