package profile

import (
	"testing"
)

// BenchmarkWrite measures one heap profile write: pprof's encoding, two
// fsyncs of files and one of the directory, and retention.
func BenchmarkWrite(b *testing.B) {
	s := openStore(b, Options{Dir: b.TempDir(), MinInterval: -1})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Write(Meta{Reason: "benchmark"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiff measures Diff of two real heap profiles of this process,
// parsed beforehand, between which leakyFunction grew.
func BenchmarkDiff(b *testing.B) {
	leak(b, 1<<10)
	base := parse(b, heapProfile(b))
	leak(b, 4<<10)
	target := parse(b, heapProfile(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Diff(base, target); err != nil {
			b.Fatal(err)
		}
	}
}
