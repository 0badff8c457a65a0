package runtimestats

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestReadSeesTheHeap(t *testing.T) {
	r := NewReader()
	// A cycle first: the live heap is as of the last cycle, which may
	// have marked what an earlier test (or run, with -count) held.
	runtime.GC()
	before := r.Read()
	hold := make([][]byte, 0, 64)
	for i := 0; i < 64; i++ {
		hold = append(hold, make([]byte, 1<<20))
	}
	runtime.GC()
	after := r.Read()
	if after.HeapLive-before.HeapLive < 60<<20 {
		t.Errorf("live heap grew by %d bytes after holding 64 MiB", after.HeapLive-before.HeapLive)
	}
	if after.GCCycles <= before.GCCycles || after.GoTotal <= 0 || after.GoMemLimit <= 0 || after.HeapGoal <= 0 {
		t.Errorf("missing signals: %+v", after)
	}
	if after.CPUSeconds <= 0 {
		t.Errorf("CPU total %v", after.CPUSeconds)
	}
	runtime.KeepAlive(hold)
}

func TestReadDoesNotAllocate(t *testing.T) {
	r := NewReader()
	r.Read()
	if n := testing.AllocsPerRun(100, func() { r.Read() }); n != 0 {
		t.Errorf("Read allocates %v times", n)
	}
}

func TestGCCPUFraction(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var c GCCPU
	c.Update(Stats{GCCPUSeconds: 0, CPUSeconds: 10}, at(0))
	// Half the CPU of the next 2 cpu-seconds went to the GC.
	if f := c.Update(Stats{GCCPUSeconds: 1, CPUSeconds: 12}, at(time.Second)); f != 0.5 {
		t.Errorf("fraction %v, want 0.5", f)
	}
	// A cycle ending inside the window does not move the fraction.
	if f := c.Update(Stats{GCCPUSeconds: 1.2, CPUSeconds: 12.01}, at(1100*time.Millisecond)); f != 0.5 {
		t.Errorf("fraction inside the window %v, want 0.5 kept", f)
	}
	// Over the next window the GC took 0.2 of 2.
	if f := c.Update(Stats{GCCPUSeconds: 1.2, CPUSeconds: 14}, at(2*time.Second)); f < 0.0999 || f > 0.1001 {
		t.Errorf("fraction %v, want 0.1", f)
	}
	// No cycle for longer than StaleAfter: the GC is idle.
	if f := c.Update(Stats{GCCPUSeconds: 1.2, CPUSeconds: 14}, at(5*time.Second)); f != 0 {
		t.Errorf("fraction after no GC for 3s = %v, want 0", f)
	}
}

func TestEveryMetricIsSupported(t *testing.T) {
	supported := map[string]bool{}
	for _, d := range metrics.All() {
		supported[d.Name] = true
	}
	for _, s := range NewReader().samples {
		if !supported[s.Name] {
			t.Errorf("runtime/metrics has no %s", s.Name)
		}
	}
}

var largeSink []byte

// TestLargeAllocations: a 3 MiB allocation shows in LargeAllocs and
// LargeBytes; the small ones around it do not count as large.
func TestLargeAllocations(t *testing.T) {
	r := NewReader()
	before := r.Read()
	largeSink = make([]byte, 3<<20)
	after := r.Read()
	if n := after.LargeAllocs - before.LargeAllocs; n < 1 {
		t.Fatalf("large allocations went from %d to %d, want at least one more", before.LargeAllocs, after.LargeAllocs)
	}
	if b := after.LargeBytes - before.LargeBytes; b < 3<<20 {
		t.Errorf("large bytes grew by %d, want at least %d", b, 3<<20)
	}
	if after.Alloc-before.Alloc < 3<<20 {
		t.Errorf("allocated bytes grew by %d, want at least %d", after.Alloc-before.Alloc, 3<<20)
	}
}

func BenchmarkRead(b *testing.B) {
	r := NewReader()
	b.ReportAllocs()
	for b.Loop() {
		r.Read()
	}
}
