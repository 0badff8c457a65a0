package admission

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestCacheFillIsNotWork: a service fills its cache before any request
// comes, in chunks of 1 MiB or of 16 MiB; the large allocations of the
// fill are not the work's. Charged to the first window of work, the 1 MiB
// chunks' squares would read as a spread of megabytes a request and the
// margin would take the room of the churn; taken as the tail, 16 MiB
// chunks would hold a margin of two of them. The first second goes as it
// does for a cache whose fill the policy did not see.
func TestCacheFillIsNotWork(t *testing.T) {
	shed := func(chunk int64, seen bool) (float64, int64) {
		s := newSim(256 * mib)
		s.runtime = 8 * mib
		s.run(10 * time.Millisecond)
		for s.base < 84*256*mib/100 {
			s.base += chunk
			s.alloc += uint64(chunk)
			if seen {
				s.large++
				s.largeB += uint64(chunk)
			}
			s.run(s.step)
		}
		s.run(100 * time.Millisecond)
		tail := s.dec.Tail
		s.rate = 3000
		s.hold = 5 * time.Millisecond
		s.size = func(*rand.Rand) (int64, int64) { return 256 << 10, 0 }
		s.run(time.Second)
		return 1 - s.servedShare(), tail
	}
	for _, chunk := range []int64{mib, 16 * mib} {
		seen, tail := shed(chunk, true)
		unseen, _ := shed(chunk, false)
		t.Logf("fill in chunks of %d MiB: first second %.1f%% shed, %.1f%% with the fill unseen", chunk/mib, 100*seen, 100*unseen)
		if tail != 0 {
			t.Errorf("fill in chunks of %d MiB: tail %d KiB before any request, want 0", chunk/mib, tail>>10)
		}
		if seen > unseen+0.005 {
			t.Errorf("fill in chunks of %d MiB: %.1f%% of the first second's churn shed, %.1f%% with the fill unseen", chunk/mib, 100*seen, 100*unseen)
		}
	}
}

// TestOffHeapCostFromRawReadings: the caller smooths the off-heap figure's
// fall (for its usage between kernel readings); the slope of memory outside
// Go on the work comes from the unsmoothed figure, or it reads flat.
func TestOffHeapCostFromRawReadings(t *testing.T) {
	p := New(Config{})
	now := time.Unix(1e9, 0)
	var smooth float64
	var d Decision
	for i := range 2500 { // 5 s at 2 ms; a kernel reading every 10 ms
		now = now.Add(2 * time.Millisecond)
		n := int64(200 + 50*((i/50)%2)) // 200 or 250 in flight, 100 ms each
		raw := float64(n * mib)
		if a := 1 - math.Exp(-0.002); raw >= smooth {
			smooth = raw
		} else {
			smooth += a * (raw - smooth)
		}
		k := uint64(i)
		d = p.OnSample(Reading{
			Now: now, LimitBytes: 1 << 30, GoMemLimit: 900 * mib, Usage: int64(smooth), Fresh: i%5 == 0,
			OffHeap: int64(smooth), OffHeapNow: n * mib,
			Alloc: k * (8 << 10), Admitted: k + uint64(n), Done: k,
		})
	}
	if d.Cost < 9*mib/10 {
		t.Errorf("cost %d KiB of work holding 1 MiB outside Go, want about 1024", d.Cost>>10)
	}
}
