package profile

import (
	"bytes"
	"compress/gzip"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"google.golang.org/protobuf/encoding/protowire"
)

// pprofAllocator is allocator for a profile parsed by
// github.com/google/pprof/profile, the reference these tests hold the
// package to.
func pprofAllocator(s *profile.Sample) string {
	var leaf string
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function == nil {
				continue
			}
			name := line.Function.Name
			if !strings.HasPrefix(name, "runtime.") && !strings.HasPrefix(name, "internal/runtime/") {
				return name
			}
			if leaf == "" {
				leaf = name
			}
		}
	}
	return leaf
}

// pprofGrowth sums the inuse_space of each allocator in p, leaving out
// those that sum to zero.
func pprofGrowth(t *testing.T, p *profile.Profile) map[string]int64 {
	t.Helper()
	i := -1
	for j, st := range p.SampleType {
		if st.Type == "inuse_space" {
			i = j
		}
	}
	if i < 0 {
		t.Fatalf("no inuse_space in %v", p.SampleType)
	}
	sum := map[string]int64{}
	for _, s := range p.Sample {
		sum[pprofAllocator(s)] += s.Value[i]
	}
	maps.DeleteFunc(sum, func(_ string, v int64) bool { return v == 0 })
	return sum
}

func TestParseReadsWhatPprofReads(t *testing.T) {
	profileEveryAllocation(t)
	leak(t, 1<<10)
	data := heapProfile(t)
	ours := parse(t, data)
	ref, err := profile.ParseData(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(ours.SampleTypes) != len(ref.SampleType) {
		t.Fatalf("sample types %v, pprof reads %v", ours.SampleTypes, ref.SampleType)
	}
	for i, st := range ref.SampleType {
		if ours.SampleTypes[i] != (ValueType{st.Type, st.Unit}) {
			t.Errorf("sample type %d is %v, pprof reads %v", i, ours.SampleTypes[i], *st)
		}
	}
	if ours.TimeNanos != ref.TimeNanos || ours.TimeNanos == 0 {
		t.Errorf("time %d, pprof reads %d", ours.TimeNanos, ref.TimeNanos)
	}
	if len(ours.samples) != len(ref.Sample) || len(ours.samples) == 0 {
		t.Fatalf("%d samples, pprof reads %d", len(ours.samples), len(ref.Sample))
	}
	for i, s := range ref.Sample {
		if got, want := allocator(ours.samples[i]), pprofAllocator(s); got != want {
			t.Errorf("sample %d allocated by %s, pprof reads %s", i, got, want)
		}
		for j, v := range s.Value {
			if ours.samples[i].values[j] != v {
				t.Errorf("sample %d value %d is %d, pprof reads %d", i, j, ours.samples[i].values[j], v)
			}
		}
	}
	// Write gives back the same profile.
	var buf bytes.Buffer
	if err := ours.Write(&buf); err != nil {
		t.Fatal(err)
	}
	again, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if again.String() != ref.String() {
		t.Error("the profile written is not the profile read")
	}
}

// TestDiffAgreesWithPprof holds Diff to pprof's own: the diff it writes is
// valid to pprof's parser, and attributes to each function what pprof's
// Merge of the target with the negated base does.
func TestDiffAgreesWithPprof(t *testing.T) {
	profileEveryAllocation(t)
	leak(t, 1<<10)
	baseData := heapProfile(t)
	leak(t, 4<<10)
	targetData := heapProfile(t)

	d, err := Diff(parse(t, baseData), parse(t, targetData))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := profile.Parse(&buf)
	if err != nil {
		t.Fatalf("pprof cannot read the diff: %v", err)
	}

	base, err := profile.ParseData(baseData)
	if err != nil {
		t.Fatal(err)
	}
	target, err := profile.ParseData(targetData)
	if err != nil {
		t.Fatal(err)
	}
	base.Scale(-1)
	want, err := profile.Merge([]*profile.Profile{target, base})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := pprofGrowth(t, got), pprofGrowth(t, want); !maps.Equal(g, w) || len(w) == 0 {
		t.Errorf("growth by function in the diff: %v\npprof's merge: %v", g, w)
	}
	if got.DurationNanos != target.TimeNanos-base.TimeNanos || got.DurationNanos <= 0 {
		t.Errorf("the diff spans %d ns, want %d", got.DurationNanos, target.TimeNanos-base.TimeNanos)
	}
	if got.TimeNanos != target.TimeNanos {
		t.Errorf("the diff's time is %d, want the target's %d", got.TimeNanos, target.TimeNanos)
	}
}

func TestParseRejects(t *testing.T) {
	// msg builds a message from fields: a uint64 is a varint, a []byte or
	// string length-delimited.
	msg := func(fields ...any) []byte {
		var b []byte
		for i := 0; i < len(fields); i += 2 {
			num := protowire.Number(fields[i].(int))
			switch v := fields[i+1].(type) {
			case uint64:
				b = protowire.AppendTag(b, num, protowire.VarintType)
				b = protowire.AppendVarint(b, v)
			case []byte:
				b = protowire.AppendTag(b, num, protowire.BytesType)
				b = protowire.AppendBytes(b, v)
			case string:
				b = protowire.AppendTag(b, num, protowire.BytesType)
				b = protowire.AppendString(b, v)
			}
		}
		return b
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("not a profile at all"))
	zw.Close()
	strs := []any{fStringTable, "", fStringTable, "inuse_space", fStringTable, "bytes"}
	withStrings := func(fields ...any) []byte { return msg(append(fields, strs...)...) }
	for _, tc := range []struct {
		name string
		data []byte
		want string // in the error
	}{
		{"empty", nil, "string table"},
		{"bad gzip", []byte{0x1f, 0x8b, 1, 2, 3}, "decompress"},
		{"not protobuf in gzip", gz.Bytes(), "parse"},
		{"truncated", msg(fStringTable, "")[:1], "parse"},
		{"string table not starting empty", msg(fStringTable, "x"), "string table"},
		{"sample type past the strings", withStrings(fSampleType, msg(fValueTypeType, uint64(7))), "string index 7"},
		{"sample naming no location", withStrings(fSampleType, msg(fValueTypeType, uint64(1), fValueTypeUnit, uint64(2)),
			fSample, msg(fSampleLocation, uint64(9), fSampleValue, uint64(1))), "location 9"},
		{"sample with too many values", withStrings(fSampleType, msg(fValueTypeType, uint64(1)),
			fSample, msg(fSampleValue, uint64(1), fSampleValue, uint64(2))), "2 values for 1 sample types"},
		{"location naming no function", withStrings(fLocation, msg(fLocationID, uint64(1), fLocationLine, msg(fLineFunction, uint64(4)))), "function 4"},
		{"location with no ID", withStrings(fLocation, msg(fLocationAddress, uint64(1))), "no ID"},
		{"function with no ID", withStrings(fFunction, msg(fFunctionName, uint64(1))), "no ID"},
		{"function name past the strings", withStrings(fFunction, msg(fFunctionID, uint64(1), fFunctionName, uint64(99)),
			fLocation, msg(fLocationID, uint64(1), fLocationLine, msg(fLineFunction, uint64(1)))), "string index 99"},
		{"string as a varint", msg(fStringTable, uint64(1)), "wire type"},
		// Parse reads no labels, but Diff walks them: found by FuzzParse in CI.
		{"sample label not a message", withStrings(fSampleType, msg(fValueTypeType, uint64(1)),
			fSample, msg(fSampleValue, uint64(1), fSampleLabel, []byte{0x0a, 0x05})), "parse"},
	} {
		if _, err := ParseData(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	defer func(old int) { maxDecodedBytes = old }(maxDecodedBytes)
	maxDecodedBytes = 1 << 20
	bomb := bytes.NewBuffer(nil)
	zw = gzip.NewWriter(bomb)
	zw.Write(make([]byte, maxDecodedBytes+1))
	zw.Close()
	if _, err := ParseData(bomb.Bytes()); err == nil || !strings.Contains(err.Error(), "MiB decompressed") {
		t.Errorf("a profile of more than %d bytes decompressed: error %v", maxDecodedBytes, err)
	}
}

// countingReader serves n zero bytes and counts those read.
type countingReader struct{ n, read int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.read >= c.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), c.n-c.read)
	clear(p[:k])
	c.read += k
	return int(k), nil
}

// TestParseBoundsItsRead: Parse refuses input longer than maxFileBytes
// and reads no more than one byte past it.
func TestParseBoundsItsRead(t *testing.T) {
	defer func(old int64) { maxFileBytes = old }(maxFileBytes)
	maxFileBytes = 4 << 10
	r := &countingReader{n: 1 << 20}
	if _, err := Parse(r); err == nil || !strings.Contains(err.Error(), "more than 4096 bytes") {
		t.Errorf("Parse of 1 MiB with a bound of 4 KiB: error %v, want one naming the bound", err)
	}
	if r.read > maxFileBytes+1 {
		t.Errorf("Parse read %d bytes with a bound of %d", r.read, maxFileBytes)
	}
}

// FuzzParse: any bytes parse or fail without a panic, and a profile that
// parses diffs with itself into one that parses again, with no growth.
func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	(&profile.Profile{
		SampleType: []*profile.ValueType{{Type: "inuse_space", Unit: "bytes"}, {Type: "inuse_objects", Unit: "count"}},
		Sample: []*profile.Sample{{Value: []int64{10, 1}, Location: []*profile.Location{{ID: 1, Address: 0x10,
			Line: []profile.Line{{Function: &profile.Function{ID: 1, Name: "main.f"}}}}}, NumLabel: map[string][]int64{"bytes": {10}}}},
	}).WriteUncompressed(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseData(b)
		if err != nil {
			return
		}
		d, err := Diff(p, p)
		if err != nil {
			t.Fatalf("Diff(p, p): %v", err)
		}
		for _, st := range p.SampleTypes {
			if st.Type != "inuse_space" {
				continue
			}
			if top, err := TopGrowth(d, 0, ""); err == nil && len(top) != 0 {
				t.Fatalf("Diff(p, p) grew: %+v", top)
			}
		}
	})
}
