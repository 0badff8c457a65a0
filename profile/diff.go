package profile

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// Diff returns target minus base as a profile: the values of base are
// negated and merged with target, so stacks with equal values in both cancel
// out and positive values are growth. It is what "go tool pprof -diff_base"
// shows, as one profile that any pprof tool can read. Neither argument is
// modified. The two must have the same sample and period types, as heap
// profiles of the same program do.
func Diff(base, target *profile.Profile) (*profile.Profile, error) {
	if base == nil || target == nil {
		return nil, errors.New("profile: Diff of a nil profile")
	}
	neg := base.Copy()
	neg.Scale(-1)
	// target first: Merge takes the main mapping and most headers from the
	// first profile.
	d, err := profile.Merge([]*profile.Profile{target, neg})
	if err != nil {
		return nil, fmt.Errorf("profile: diff: %w", err)
	}
	// Merge keeps the earliest time and sums durations, which for a
	// difference is wrong: it describes the span from base to target.
	d.TimeNanos, d.DurationNanos = target.TimeNanos, 0
	if base.TimeNanos != 0 && target.TimeNanos > base.TimeNanos {
		d.DurationNanos = target.TimeNanos - base.TimeNanos
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
func TopGrowth(diff *profile.Profile, n int, sampleType string) ([]Growth, error) {
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
	for _, s := range diff.Sample {
		fn := allocator(s)
		g := byFunc[fn]
		if g == nil {
			g = &Growth{Function: fn}
			byFunc[fn] = g
		}
		g.Bytes += s.Value[bi]
		g.Objects += s.Value[oi]
	}
	rank := func(g *Growth) int64 {
		if byObjects {
			return g.Objects
		}
		return g.Bytes
	}
	var top []Growth
	for _, g := range byFunc {
		if rank(g) > 0 {
			top = append(top, *g)
		}
	}
	slices.SortFunc(top, func(a, b Growth) int {
		if c := cmp.Compare(rank(&b), rank(&a)); c != 0 {
			return c
		}
		return strings.Compare(a.Function, b.Function)
	})
	if n > 0 && len(top) > n {
		top = top[:n]
	}
	return top, nil
}

// sampleIndex returns the index of the sample type called name in p.
func sampleIndex(p *profile.Profile, name string) (int, error) {
	for i, st := range p.SampleType {
		if st.Type == name {
			return i, nil
		}
	}
	types := make([]string, len(p.SampleType))
	for i, st := range p.SampleType {
		types[i] = st.Type
	}
	return 0, fmt.Errorf("profile: no sample type %q in the profile, which has %v", name, types)
}

// allocator returns the name of the innermost function of s outside the
// runtime, or of the innermost function if all are in the runtime.
func allocator(s *profile.Sample) string {
	var leaf string
	for _, loc := range s.Location {
		for _, line := range loc.Line { // innermost first, inlined calls included
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
	switch {
	case leaf != "":
		return leaf
	case len(s.Location) > 0:
		return fmt.Sprintf("%#x", s.Location[0].Address) // not symbolized
	}
	return "(unknown)"
}

// Parse reads and parses the stored profile called name.
func (s *Store) Parse(name string) (*profile.Profile, error) {
	f, _, err := s.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("profile: parse %s: %w", name, err)
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
