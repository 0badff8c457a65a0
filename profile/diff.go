package profile

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Diff returns target minus base as a profile: target's samples, then
// base's with their values negated, so stacks with equal values in both
// cancel out and positive values are growth. It is what "go tool pprof
// -diff_base" shows, as one profile that any pprof tool reads. Neither
// argument is modified. The two must have the same sample types, as heap
// profiles of the same program do.
func Diff(base, target *Profile) (*Profile, error) {
	if base == nil || target == nil {
		return nil, errors.New("profile: Diff of a nil profile")
	}
	if !slices.Equal(base.SampleTypes, target.SampleTypes) {
		return nil, fmt.Errorf("profile: diff of profiles with different sample types, %v and %v", base.SampleTypes, target.SampleTypes)
	}
	out := make([]byte, 0, len(target.data)+len(base.data)+16)
	err := walk(target.data, func(f field) error {
		if f.num != fDurationNanos { // set below
			out = append(out, f.raw...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("profile: diff: %w", err)
	}
	// The base's samples, locations, functions, mappings and strings are
	// numbered past the target's; its headers and sample types are the
	// target's already.
	strs := uint64(target.strings)
	text := func(n protowire.Number) uint64 {
		if n == fLabelKey || n == fLabelStr || n == fLabelNumUnit {
			return strs
		}
		return 0
	}
	err = walk(base.data, func(f field) error {
		if f.typ != protowire.BytesType {
			return nil
		}
		var msg []byte
		var err error
		switch f.num {
		case fSample:
			err = walk(f.bytes, func(s field) error {
				switch s.num {
				case fSampleLocation:
					return s.varints(func(v uint64) {
						msg = protowire.AppendTag(msg, fSampleLocation, protowire.VarintType)
						msg = protowire.AppendVarint(msg, v+target.maxLocation)
					})
				case fSampleValue:
					return s.varints(func(v uint64) {
						msg = protowire.AppendTag(msg, fSampleValue, protowire.VarintType)
						msg = protowire.AppendVarint(msg, uint64(-int64(v)))
					})
				case fSampleLabel:
					label, err := renumber(nil, s.bytes, text)
					msg = protowire.AppendTag(msg, fSampleLabel, protowire.BytesType)
					msg = protowire.AppendBytes(msg, label)
					return err
				}
				msg = append(msg, s.raw...)
				return nil
			})
		case fMapping:
			msg, err = renumber(nil, f.bytes, func(n protowire.Number) uint64 {
				switch n {
				case fMappingID:
					return target.maxMapping
				case fMappingFilename, fMappingBuildID:
					return strs
				}
				return 0
			})
		case fLocation:
			err = walk(f.bytes, func(l field) error {
				switch l.num {
				case fLocationID:
					msg, _ = renumber(msg, l.raw, func(protowire.Number) uint64 { return target.maxLocation })
				case fLocationMapping:
					msg, _ = renumber(msg, l.raw, func(protowire.Number) uint64 { return target.maxMapping })
				case fLocationLine:
					line, err := renumber(nil, l.bytes, func(n protowire.Number) uint64 {
						if n == fLineFunction {
							return target.maxFunction
						}
						return 0
					})
					msg = protowire.AppendTag(msg, fLocationLine, protowire.BytesType)
					msg = protowire.AppendBytes(msg, line)
					return err
				default:
					msg = append(msg, l.raw...)
				}
				return nil
			})
		case fFunction:
			msg, err = renumber(nil, f.bytes, func(n protowire.Number) uint64 {
				switch n {
				case fFunctionID:
					return target.maxFunction
				case fFunctionName, fFunctionSystemName, fFunctionFilename:
					return strs
				}
				return 0
			})
		case fStringTable:
			out = append(out, f.raw...)
			return nil
		default:
			return nil
		}
		out = protowire.AppendTag(out, f.num, protowire.BytesType)
		out = protowire.AppendBytes(out, msg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("profile: diff: %w", err)
	}
	// The difference covers the span from base to target.
	if base.TimeNanos != 0 && target.TimeNanos > base.TimeNanos {
		out = protowire.AppendTag(out, fDurationNanos, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(target.TimeNanos-base.TimeNanos))
	}
	d, err := decode(out)
	if err != nil {
		return nil, fmt.Errorf("profile: diff: %w", err)
	}
	return d, nil
}

// Growth is the growth in a diff attributed to one function.
type Growth struct {
	// Function is the fully qualified function name, e.g. "main.leak".
	Function string
	// Bytes and Objects are the function's net growth in bytes and in
	// objects, in-use or allocated according to the sample type TopGrowth
	// ranks by. Either may be negative when the other grew.
	Bytes   int64
	Objects int64
}

// TopGrowth returns the n functions that grew most in diff, a heap profile
// difference made by Diff, largest first; n <= 0 returns all that grew.
// Growth is attributed to the innermost frame of each stack that is outside
// the runtime, which in a heap profile is the function that allocated.
//
// sampleType is what to rank by: "inuse_space" (the default when empty),
// "inuse_objects", "alloc_space" or "alloc_objects". Functions whose value
// for it did not grow are left out.
func TopGrowth(diff *Profile, n int, sampleType string) ([]Growth, error) {
	if diff == nil {
		return nil, errors.New("profile: TopGrowth of a nil profile")
	}
	if sampleType == "" {
		sampleType = "inuse_space"
	}
	var kind string // of the space and objects pair to report
	byObjects := false
	switch sampleType {
	case "inuse_space", "alloc_space":
		kind = strings.TrimSuffix(sampleType, "_space")
	case "inuse_objects", "alloc_objects":
		kind, byObjects = strings.TrimSuffix(sampleType, "_objects"), true
	default:
		return nil, fmt.Errorf("profile: sample type %q: want inuse_space, inuse_objects, alloc_space or alloc_objects", sampleType)
	}
	bi, err := sampleIndex(diff, kind+"_space")
	if err != nil {
		return nil, err
	}
	oi, err := sampleIndex(diff, kind+"_objects")
	if err != nil {
		return nil, err
	}

	byFunc := make(map[string]*Growth)
	for _, s := range diff.samples {
		fn := allocator(s)
		g := byFunc[fn]
		if g == nil {
			g = &Growth{Function: fn}
			byFunc[fn] = g
		}
		g.Bytes += s.values[bi]
		g.Objects += s.values[oi]
	}
	rank := func(g *Growth) int64 {
		if byObjects {
			return g.Objects
		}
		return g.Bytes
	}
	var grew []*Growth
	for _, g := range byFunc {
		if rank(g) > 0 {
			grew = append(grew, g)
		}
	}
	// Pointers: a sort of Growth values would compile a copy of the sort
	// for the struct, 20 KB in every service's binary.
	slices.SortFunc(grew, func(a, b *Growth) int {
		if c := cmp.Compare(rank(b), rank(a)); c != 0 {
			return c
		}
		return strings.Compare(a.Function, b.Function)
	})
	if n > 0 && len(grew) > n {
		grew = grew[:n]
	}
	top := make([]Growth, len(grew))
	for i, g := range grew {
		top[i] = *g
	}
	return top, nil
}

// sampleIndex returns the index of the sample type called name in p.
func sampleIndex(p *Profile, name string) (int, error) {
	types := make([]string, len(p.SampleTypes))
	for i, st := range p.SampleTypes {
		if st.Type == name {
			return i, nil
		}
		types[i] = st.Type
	}
	return 0, fmt.Errorf("profile: no sample type %q in the profile, which has %v", name, types)
}

// Parse reads and parses the stored profile called name. A file larger
// than MaxProfileBytes is refused before it is read.
func (s *Store) Parse(name string) (*Profile, error) {
	f, m, fi, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > maxFileBytes {
		return nil, fmt.Errorf("profile: %s: %d bytes, more than %d bytes (MaxProfileBytes): not parsed; go tool pprof reads it", m.Name, fi.Size(), maxFileBytes)
	}
	p, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, name)
	}
	return p, nil
}

// Growth returns the n functions whose in-use bytes grew most from the
// stored profile base to the stored profile target (see TopGrowth).
func (s *Store) Growth(base, target string, n int) ([]Growth, error) {
	b, err := s.Parse(base)
	if err != nil {
		return nil, err
	}
	t, err := s.Parse(target)
	if err != nil {
		return nil, err
	}
	d, err := Diff(b, t)
	if err != nil {
		return nil, err
	}
	return TopGrowth(d, n, "inuse_space")
}
