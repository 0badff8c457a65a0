package admission

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestRebuildIsNotWork: beside a cache and light requests (16 KiB for
// 50 ms, 3000 a second), the service rebuilds part of its data every 5 s: a
// block of 16 to 48 MiB allocated at once, the old one dropped, at once or
// after a GC cycle marked both. The block comes with almost no unit of
// work, so the margin keeps room for one of it, not for two: shedding the
// requests could not make that room. GOMEMLIMIT still leaves room for one
// block. Where each block stays live until the next replaces it (kept), as
// examples/httpservice -rebuild-bytes does, one block is in the base, and
// room for two more would leave the requests none; the count of blocks
// the margin keeps room for must not flip with the bound. Loads whose two
// blocks together pass Critical are not here: there the rebuild is a
// danger of its own.
func TestRebuildIsNotWork(t *testing.T) {
	for _, tt := range []struct {
		frac       float64
		block      int64
		markedBoth bool // built while the last is live: a cycle marks both
		kept       bool // each block live until the next: one in the base
	}{
		{0.6, 48 * mib, false, false}, {0.7, 32 * mib, false, false}, {0.7, 48 * mib, false, false}, {0.78, 16 * mib, false, false},
		{0.5, 48 * mib, true, false}, {0.6, 32 * mib, true, false}, {0.7, 16 * mib, true, false}, {0.78, 16 * mib, true, false},
		{0.4, 48 * mib, true, true}, {0.5, 32 * mib, true, true}, {0.6, 32 * mib, true, true}, {0.7, 16 * mib, true, true},
	} {
		s := newSim(256 * mib)
		s.base = int64(tt.frac * 256 * mib)
		if tt.kept {
			s.base += tt.block
		}
		s.runtime = 8 * mib
		s.rate = 3000
		s.hold = 50 * time.Millisecond
		s.size = func(*rand.Rand) (int64, int64) { return 16 << 10, 0 }
		s.run(3 * time.Second)
		s.reset()
		for range 6 {
			s.alloc += uint64(tt.block)
			s.large++
			s.largeB += uint64(tt.block)
			s.heapObj += tt.block
			if tt.markedBoth {
				// Built while the old one is still live: a cycle
				// marks both.
				s.base += tt.block
				s.run(20 * time.Millisecond)
				s.base -= tt.block
				s.run(5*time.Second - 20*time.Millisecond)
				continue
			}
			s.run(5 * time.Second)
		}
		sh := 1 - s.servedShare()
		t.Logf("cache at %.2f of the limit, blocks of %d MiB, both marked %v, kept %v: %.1f%% shed, room for the tail %d MiB",
			tt.frac, tt.block/mib, tt.markedBoth, tt.kept, 100*sh, s.dec.TailRoom/mib)
		// Right after each block its square still reads as the work's
		// (a new size is not yet told from a new request class): some
		// shedding remains, about half a second's worth at the worst.
		if sh > 0.03 {
			t.Errorf("cache at %.2f of the limit, blocks of %d MiB, both marked %v, kept %v: %.1f%% of the requests shed, want at most 3%%",
				tt.frac, tt.block/mib, tt.markedBoth, tt.kept, 100*sh)
		}
		if s.dec.TailRoom > s.dec.Tail || s.dec.Tail < tt.block/2 {
			t.Errorf("cache at %.2f of the limit, blocks of %d MiB: room for the tail %d MiB, tail %d MiB: want room for one block",
				tt.frac, tt.block/mib, s.dec.TailRoom/mib, s.dec.Tail/mib)
		}
	}
}

// TestWorkTailKeepsRoomForTwo: large allocations that come with the
// requests, often or rarely, keep room for two of them at once; once they
// stop, the room fades with the tail's half-life, though no large
// allocation comes to fade it.
func TestWorkTailKeepsRoomForTwo(t *testing.T) {
	for _, tt := range []struct {
		name string
		rate float64
		p    float64 // share of the requests that allocate 24 MiB; the rest 32 KiB
	}{{"1 in 100, 2000 a second", 2000, 0.01}, {"1 in 1000, 3000 a second", 3000, 0.001}, {"1 in 1000, 300 a second", 300, 0.001}} {
		s := newSim(256 * mib)
		s.base = 8 * mib
		s.rate = tt.rate
		s.size = func(r *rand.Rand) (int64, int64) {
			if r.Float64() < tt.p {
				return 24 * mib, 0
			}
			return 32 << 10, 0
		}
		s.run(15 * time.Second)
		t.Logf("%s: tail %d MiB, room %d MiB, peak %d MiB, %.1f%% shed", tt.name, s.dec.Tail/mib, s.dec.TailRoom/mib, s.peak/mib, 100*(1-s.servedShare()))
		if s.dec.Tail == 0 || s.dec.TailRoom < 2*s.dec.Tail-1 {
			t.Errorf("%s: tail %d MiB, room %d MiB: want room for two", tt.name, s.dec.Tail/mib, s.dec.TailRoom/mib)
		}
		if s.peak > 243*mib {
			t.Errorf("%s: peak %d MiB, past Critical", tt.name, s.peak/mib)
		}
		s.size = func(*rand.Rand) (int64, int64) { return 32 << 10, 0 }
		s.run(60 * time.Second)
		if s.dec.TailRoom > mib {
			t.Errorf("%s: room for the tail %d KiB a minute after the large requests stopped, want under 1 MiB", tt.name, s.dec.TailRoom>>10)
		}
	}
}

// TestNewLargeSizeKeepsRoomAtOnce: in a service warmed on small requests,
// the first request of a new, large size gets room for two of it at the
// next reading, not when its heap window closes (up to 100 ms later, while
// more may come).
func TestNewLargeSizeKeepsRoomAtOnce(t *testing.T) {
	s := newSim(256 * mib)
	s.base = 8 * mib
	s.rate = 1000
	s.size = func(*rand.Rand) (int64, int64) { return 32 << 10, 0 }
	s.run(3 * time.Second)
	first := true
	s.size = func(*rand.Rand) (int64, int64) {
		if first {
			first = false
			return 24 * mib, 0
		}
		return 32 << 10, 0
	}
	s.run(s.step)
	if first {
		t.Fatal("no request arrived in a step")
	}
	if s.dec.Tail < 20*mib || s.dec.TailRoom < 2*s.dec.Tail-1 {
		t.Errorf("the step after the first 24 MiB request: tail %d MiB, room %d MiB; want room for two", s.dec.Tail/mib, s.dec.TailRoom/mib)
	}
}
