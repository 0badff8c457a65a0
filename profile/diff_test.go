package profile

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// leaked holds what leakyFunction allocates, so that it stays in use.
var leaked [][]byte

// leakyFunction allocates n blocks of size bytes and keeps them.
//
//go:noinline
func leakyFunction(n, size int) {
	for range n {
		leaked = append(leaked, make([]byte, size))
	}
}

// leak makes leakyFunction hold n more blocks of 1 KiB, until the test ends.
func leak(t testing.TB, n int) {
	leakyFunction(n, 1<<10)
	t.Cleanup(func() { leaked = nil })
}

// profileEveryAllocation makes the heap profile exact for the rest of the
// test.
func profileEveryAllocation(t testing.TB) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	t.Cleanup(func() { runtime.MemProfileRate = old })
}

// heapProfile returns the current heap profile, as of a fresh GC cycle.
func heapProfile(t testing.TB) []byte {
	t.Helper()
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func parse(t testing.TB, b []byte) *Profile {
	t.Helper()
	p, err := ParseData(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// encode returns p as this package reads it, encoded by
// github.com/google/pprof/profile.
func encode(t testing.TB, p *profile.Profile) *Profile {
	t.Helper()
	// The locations and functions the samples name, once each.
	p.Location, p.Function = nil, nil
	seen := map[any]bool{}
	for _, s := range p.Sample {
		for _, l := range s.Location {
			if !seen[l] {
				seen[l] = true
				p.Location = append(p.Location, l)
			}
			for _, line := range l.Line {
				if !seen[line.Function] {
					seen[line.Function] = true
					p.Function = append(p.Function, line.Function)
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return parse(t, buf.Bytes())
}

func TestDiffNamesTheLeak(t *testing.T) {
	profileEveryAllocation(t)
	leak(t, 1<<10)
	baseData := heapProfile(t)
	leak(t, 8<<10) // 8 MiB more
	targetData := heapProfile(t)
	// Parse only now, so that parsing is not part of the growth.
	base, target := parse(t, baseData), parse(t, targetData)
	baseCopy := slices.Clone(base.data)

	d, err := Diff(base, target)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(base.data, baseCopy) {
		t.Error("Diff modified its base")
	}
	top, err := TopGrowth(d, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(top) == 0 || !strings.HasSuffix(top[0].Function, ".leakyFunction") {
		t.Fatalf("TopGrowth = %+v, want leakyFunction first", top)
	}
	// The 8192 blocks, plus the growth of the slice that holds them.
	if g := top[0]; g.Bytes < 8<<20 || g.Objects < 8<<10 {
		t.Errorf("leakyFunction grew by %d bytes in %d objects, want at least 8 MiB in 8192", g.Bytes, g.Objects)
	}
	if len(top) > 3 {
		t.Errorf("TopGrowth(3) returned %d entries", len(top))
	}

	byObjects, err := TopGrowth(d, 1, "inuse_objects")
	if err != nil {
		t.Fatal(err)
	}
	if len(byObjects) != 1 || byObjects[0] != top[0] {
		t.Errorf("TopGrowth by inuse_objects = %+v, want [%+v]", byObjects, top[0])
	}

	// A profile diffed with itself has no growth.
	same, err := Diff(target, target)
	if err != nil {
		t.Fatal(err)
	}
	if top, err := TopGrowth(same, 0, ""); err != nil || len(top) != 0 {
		t.Errorf("TopGrowth(Diff(p, p)) = %+v, %v; want nothing", top, err)
	}
}

func TestTopGrowthAttribution(t *testing.T) {
	fn := func(id uint64, name string) *profile.Function { return &profile.Function{ID: id, Name: name} }
	mallocgc, newarray, leaf, caller := fn(1, "runtime.mallocgc"), fn(2, "internal/runtime/maps.newarray"), fn(3, "main.leaf"), fn(4, "main.caller")
	loc := func(id uint64, fns ...*profile.Function) *profile.Location {
		l := &profile.Location{ID: id}
		for _, f := range fns {
			l.Line = append(l.Line, profile.Line{Function: f})
		}
		return l
	}
	sample := func(space, objects int64, locs ...*profile.Location) *profile.Sample {
		return &profile.Sample{Value: []int64{objects, space, objects, space}, Location: locs}
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "alloc_objects", Unit: "count"}, {Type: "alloc_space", Unit: "bytes"},
			{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"},
		},
		Sample: []*profile.Sample{
			sample(100, 1, loc(1, mallocgc), loc(2, newarray), loc(3, leaf), loc(4, caller)),
			sample(50, 5, loc(5, leaf, caller)), // leaf inlined into caller
			sample(30, 30, loc(4, caller)),
			sample(-500, -1, loc(6, fn(5, "main.shrank"))),
			sample(7, 7, loc(1, mallocgc)), // all runtime
			sample(2, 2, &profile.Location{ID: 7, Address: 0x1234}),
		},
	}
	got, err := TopGrowth(encode(t, p), 0, "inuse_space")
	if err != nil {
		t.Fatal(err)
	}
	want := []Growth{
		{"main.leaf", 150, 6},
		{"main.caller", 30, 30},
		{"runtime.mallocgc", 7, 7},
		{"0x1234", 2, 2},
	}
	if !slices.Equal(got, want) {
		t.Errorf("TopGrowth by inuse_space = %+v\nwant %+v", got, want)
	}
	got, err = TopGrowth(encode(t, p), 2, "alloc_objects")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Growth{{"main.caller", 30, 30}, {"runtime.mallocgc", 7, 7}}; !slices.Equal(got, want) {
		t.Errorf("TopGrowth(2) by alloc_objects = %+v\nwant %+v", got, want)
	}
}

func TestDiffAndTopGrowthErrors(t *testing.T) {
	heap := encode(t, &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
	})
	cpu := encode(t, &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
	})
	if _, err := Diff(nil, heap); err == nil {
		t.Error("Diff(nil, p) succeeded")
	}
	if _, err := Diff(heap, nil); err == nil {
		t.Error("Diff(p, nil) succeeded")
	}
	if _, err := Diff(cpu, heap); err == nil {
		t.Error("Diff of a CPU and a heap profile succeeded")
	}
	for _, tc := range []struct {
		p          *Profile
		sampleType string
		want       string // in the error
	}{
		{nil, "", "nil profile"},
		{heap, "cpu", `sample type "cpu"`},
		{heap, "inuse", `sample type "inuse"`},
		{heap, "_space", `sample type "_space"`},
		{heap, "alloc_space", `no sample type "alloc_space"`},
		{cpu, "", `no sample type "inuse_space"`},
	} {
		_, err := TopGrowth(tc.p, 1, tc.sampleType)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TopGrowth(%q) error = %v, want one containing %q", tc.sampleType, err, tc.want)
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

// TestStoreParseRefusesLargeFile: a stored profile larger than
// maxFileBytes, grown after Open, is refused before it is read, and the
// diff of it answers with the reason.
func TestStoreParseRefusesLargeFile(t *testing.T) {
	f := newFixture(t)
	defer func(old int64) { maxFileBytes = old }(maxFileBytes)
	// A bound at a file's size admits it; one a byte below refuses it.
	// The two profiles' sizes depend on the runtime, so each is tried
	// against a bound of its own.
	maxFileBytes = f.base.Size
	if _, err := f.s.Parse(f.base.Name); err != nil {
		t.Fatalf("Parse of a profile within the bound: %v", err)
	}
	maxFileBytes = f.target.Size - 1
	_, err := f.s.Parse(f.target.Name)
	if err == nil || !strings.Contains(err.Error(), f.target.Name) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d bytes", maxFileBytes)) {
		t.Errorf("Parse of a profile past the bound: error %v, want one naming it and the bound", err)
	}
	w := serve(Handler(f.s), "GET", "/heap/diff?base="+f.base.Name+"&target="+f.target.Name)
	if w.Code == http.StatusOK || !strings.Contains(w.Body.String(), "more than") || strings.Count(w.Body.String(), "\n") != 1 {
		t.Errorf("diff with a profile past the bound: %d %.200q, want an error saying so in one line", w.Code, w.Body)
	}
}
