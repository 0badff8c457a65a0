package admission

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestBurstFromIdle: from idle a burst is admitted one window at a time,
// and the window grows as the work ends.
func TestBurstFromIdle(t *testing.T) {
	s := newSim(256 * mib)
	s.run(time.Second) // idle
	s.conns = 1000
	s.run(s.step)
	if n := len(s.inflight); int64(n) > s.p.Config().InitialWindow {
		t.Fatalf("%d admitted at once from idle, want at most the initial window %d", n, s.p.Config().InitialWindow)
	}
	s.run(s.hold + 10*time.Millisecond)
	if w := s.dec.Window; w < 2*s.p.Config().InitialWindow {
		t.Errorf("window %d after the first work ended, want it at least doubled", w)
	}
	s.run(3 * time.Second)
	if s.peak > 95*256*mib/100 {
		t.Errorf("peak %d MiB past Critical", s.peak/mib)
	}
	// A quiet spell: the next burst starts from the initial window again.
	s.conns = 0
	s.run(5 * time.Second)
	if w := s.dec.Window; w != s.p.Config().InitialWindow {
		t.Errorf("window %d after 5s quiet, want %d", w, s.p.Config().InitialWindow)
	}
}

// TestLongLivedWork: streams that do not end for a long time still get in
// when the memory holds them: the window grows on memory, not only on work
// done.
func TestLongLivedWork(t *testing.T) {
	s := newSim(256 * mib)
	s.conns = 1000
	s.hold = time.Hour
	s.size = func(*rand.Rand) (int64, int64) { return 16 << 10, 0 }
	s.run(5 * time.Second)
	if n := len(s.inflight); n != 1000 {
		t.Errorf("%d of 1000 long-lived streams in flight after 5s, holding %d MiB; want all (window %d, limit %d)", n, s.peak/mib, s.dec.Window, s.dec.Limit)
	}
}

// TestCriticalHalves: a reading at Critical cuts the window to half of
// what is in flight, and raises the margin.
func TestCriticalHalves(t *testing.T) {
	p := New(Config{})
	now := time.Unix(1e9, 0)
	r := Reading{Now: now, LimitBytes: 1 << 30, Admitted: 200, Usage: 1 << 29, Fresh: true}
	d := p.OnSample(r)
	r.Now, r.Critical = now.Add(2*time.Millisecond), true
	c := p.OnSample(r)
	if c.Limit > 100 {
		t.Errorf("limit %d at Critical with 200 in flight, want at most 100", c.Limit)
	}
	if c.Target >= d.Target {
		t.Errorf("target %d after Critical, want below %d", c.Target, d.Target)
	}
}

// TestCostlierClassArrives: a warmed service at 2000 requests a second of
// 32 KiB; then a tenth of them hold 8 MiB, or a fifth 4 MiB. The learned
// cost lags, and under a bound held at the work in flight each costlier
// request replaces a cheap one that ended: memory grows at a steady count.
// Only a halving at Critical paces the next, and the window does not grow
// within proofTime of a cut, so the halvings hold the work down.
func TestCostlierClassArrives(t *testing.T) {
	for _, tt := range []struct {
		p    float64
		size int64
	}{{0.1, 8 * mib}, {0.2, 4 * mib}} {
		for seed := uint64(1); seed <= 8; seed++ {
			s := classArrives(seed, tt.p, tt.size, 5*time.Second)
			t.Logf("%.0f%% of %d MiB, seed %d: peak %d MiB, %.1f%% shed", 100*tt.p, tt.size/mib, seed, s.peak/mib, 100*(1-s.servedShare()))
			if s.peak > 99*256*mib/100 {
				t.Errorf("%.0f%% of %d MiB, seed %d: peak %d MiB, past 0.99 of the limit", 100*tt.p, tt.size/mib, seed, s.peak/mib)
			}
		}
	}
}
