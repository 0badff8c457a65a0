package admission

import (
	"math"
	"testing"
	"time"
)

// TestRunwayFollowsGarbage: the room kept for the GC's garbage is what the
// readings show above the model, up to gcRunway: a GC that leaves little
// garbage lets more work in, and the working set stays below Critical
// wherever the runway covers the garbage. Garbage past gcRunway is for the
// warning line and Critical to find.
func TestRunwayFollowsGarbage(t *testing.T) {
	const limit = 256 * mib
	tests := []struct {
		garbage float64
		lo, hi  float64 // the runway the bound implies
	}{
		{0, 0, 0.015},
		{0.02, 0.02, 0.035},
		{0.04, 0.04, gcRunway},
		{0.1, 0, math.Inf(1)},
	}
	var served []int64
	for _, tt := range tests {
		s := newSim(limit)
		s.base = 8 * mib
		s.garbage = tt.garbage
		s.rate = 275
		s.run(3 * time.Second)
		s.rate = 3 * 275
		s.run(5 * time.Second)
		s.reset()
		s.run(10 * time.Second)
		// The bound is a whole number of units: the runway it implies
		// reads up to 0.006 high here (0.0545 for a fixed 0.05).
		d := s.dec
		runway := (float64(d.Target-d.Base)/float64(d.Limit) - float64(d.Cost)) / float64(d.Cost)
		t.Logf("garbage %.2f: runway %.4f, bound %d, served %d, peak working set %d MiB", tt.garbage, runway, d.Limit, s.served, s.peakUsage/mib)
		if runway < tt.lo || runway > tt.hi+0.006 {
			t.Errorf("garbage %.2f: the bound implies a runway of %.4f, want %.3f to %.3f", tt.garbage, runway, tt.lo, tt.hi)
		}
		if tt.garbage <= gcRunway && float64(s.peakUsage) >= 0.95*limit {
			t.Errorf("garbage %.2f: working set %d MiB, past Critical", tt.garbage, s.peakUsage/mib)
		}
		if float64(s.peakUsage) >= limit {
			t.Errorf("garbage %.2f: working set %d MiB, past the limit", tt.garbage, s.peakUsage/mib)
		}
		served = append(served, s.served)
	}
	for i := 1; i < len(served); i++ {
		if served[i] >= served[i-1] {
			t.Errorf("served %v as the garbage grows: want less where the GC leaves more", served)
		}
	}
}
