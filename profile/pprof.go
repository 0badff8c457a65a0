package profile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Profile is a pprof profile as far as [Diff] and [TopGrowth] read it: its
// sample types, its samples and the functions of their stacks. It keeps the
// encoded profile, so [Profile.Write] gives back all of it, mappings and
// labels included. For anything more, parse the same bytes with
// github.com/google/pprof/profile.
//
// The package reads the format itself, with protowire, rather than with
// github.com/google/pprof/profile: that package compiles regular
// expressions at init and links its legacy text parsers, 0.7 MB that every
// service importing the guard would carry for two functions.
type Profile struct {
	// SampleTypes names each value of a sample, e.g. inuse_space in bytes.
	SampleTypes []ValueType
	// TimeNanos is when the profile was taken, in nanoseconds since the
	// Unix epoch; DurationNanos is the time it covers, in nanoseconds (for
	// a Diff, from base to target).
	TimeNanos, DurationNanos int64

	data    []byte // the encoded profile, not compressed
	samples []sample
	// The largest IDs and the string count, which Diff numbers the base's
	// past.
	maxMapping, maxLocation, maxFunction uint64
	strings                              int
}

// ValueType is the type and unit of a sample value, e.g. "inuse_space" in
// "bytes".
type ValueType struct {
	Type, Unit string
}

// sample is a stack, innermost first, and its values, one per sample type.
type sample struct {
	stack  []*location
	values []int64
}

// location is a program counter, with the functions at it innermost first
// (more than one where calls were inlined).
type location struct {
	address uint64
	funcs   []string
}

// Profile message field numbers, from github.com/google/pprof's
// proto/profile.proto.
const (
	fSampleType    = 1
	fSample        = 2
	fMapping       = 3
	fLocation      = 4
	fFunction      = 5
	fStringTable   = 6
	fTimeNanos     = 9
	fDurationNanos = 10

	// In ValueType, Sample, Mapping, Location, Line and Function.
	fValueTypeType, fValueTypeUnit = 1, 2
	fSampleLocation, fSampleValue  = 1, 2
	fSampleLabel                   = 3
	fLabelKey, fLabelStr           = 1, 2
	fLabelNumUnit                  = 4
	fMappingID                     = 1
	fMappingFilename               = 5
	fMappingBuildID                = 6
	fLocationID, fLocationMapping  = 1, 2
	fLocationAddress               = 3
	fLocationLine                  = 4
	fLineFunction                  = 1
	fFunctionID, fFunctionName     = 1, 2
	fFunctionSystemName            = 3
	fFunctionFilename              = 4
)

// MaxProfileBytes bounds the size in bytes of a heap or goroutine profile
// file: the store does not keep a larger one it writes, nor index one it
// finds at Open; Store.Parse refuses one before reading it, and Parse reads
// no more. Go's heap profiles take kilobytes to a few megabytes.
const MaxProfileBytes = 64 << 20

// maxFileBytes is MaxProfileBytes. maxDecodedBytes bounds the size of a
// profile once decompressed, since a gzip stream can expand a
// thousandfold. Variables for the tests.
var (
	maxFileBytes    int64 = MaxProfileBytes
	maxDecodedBytes       = 256 << 20
)

// Parse reads a pprof profile, gzipped (as runtime/pprof writes it) or not,
// of at most MaxProfileBytes, and parses it as ParseData does.
func Parse(r io.Reader) (*Profile, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("profile: read: %w", err)
	}
	if int64(len(b)) > maxFileBytes {
		return nil, fmt.Errorf("profile: more than %d bytes to read (MaxProfileBytes)", maxFileBytes)
	}
	return ParseData(b)
}

// ParseData parses a pprof profile, gzipped (as runtime/pprof writes it) or
// not, of at most 256 MiB once decompressed.
func ParseData(b []byte) (*Profile, error) {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("profile: decompress: %w", err)
		}
		b, err = io.ReadAll(io.LimitReader(zr, int64(maxDecodedBytes)+1))
		if err != nil {
			return nil, fmt.Errorf("profile: decompress: %w", err)
		}
		if len(b) > maxDecodedBytes {
			return nil, fmt.Errorf("profile: more than %d MiB decompressed", maxDecodedBytes>>20)
		}
	}
	p, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("profile: parse: %w", err)
	}
	return p, nil
}

// Write writes the profile gzipped, as runtime/pprof does.
func (p *Profile) Write(w io.Writer) error {
	zw := gzip.NewWriter(w)
	if _, err := zw.Write(p.data); err != nil {
		return err
	}
	return zw.Close()
}

// decode parses an encoded Profile message. Strings and functions come last
// in Go's profiles, so stacks are resolved to names at the end.
func decode(data []byte) (*Profile, error) {
	p := &Profile{data: data}
	type rawSample struct {
		locs   []uint64
		values []int64
	}
	type rawLocation struct {
		address uint64
		funcs   []uint64
	}
	var (
		types   [][2]uint64
		samples []rawSample
		locs    = map[uint64]*rawLocation{}
		funcs   = map[uint64]uint64{} // ID to name
		strs    []string
	)
	err := walk(data, func(f field) error {
		switch f.num {
		case fSampleType:
			var t [2]uint64
			err := walk(f.bytes, func(f field) error {
				switch f.num {
				case fValueTypeType:
					t[0] = f.v
				case fValueTypeUnit:
					t[1] = f.v
				}
				return nil
			})
			types = append(types, t)
			return err
		case fSample:
			var s rawSample
			err := walk(f.bytes, func(f field) error {
				switch f.num {
				case fSampleLocation:
					return f.varints(func(v uint64) { s.locs = append(s.locs, v) })
				case fSampleValue:
					return f.varints(func(v uint64) { s.values = append(s.values, int64(v)) })
				case fSampleLabel:
					// Unread here, but Diff renumbers its strings: a
					// label that is not a message is a profile Diff
					// cannot walk.
					return walk(f.bytes, func(field) error { return nil })
				}
				return nil
			})
			samples = append(samples, s)
			return err
		case fMapping:
			return walk(f.bytes, func(f field) error {
				if f.num == fMappingID {
					p.maxMapping = max(p.maxMapping, f.v)
				}
				return nil
			})
		case fLocation:
			var id uint64
			l := &rawLocation{}
			err := walk(f.bytes, func(f field) error {
				switch f.num {
				case fLocationID:
					id = f.v
				case fLocationAddress:
					l.address = f.v
				case fLocationLine:
					return walk(f.bytes, func(f field) error {
						if f.num == fLineFunction {
							l.funcs = append(l.funcs, f.v)
						}
						return nil
					})
				}
				return nil
			})
			if id == 0 {
				return errors.New("a location with no ID")
			}
			locs[id] = l
			p.maxLocation = max(p.maxLocation, id)
			return err
		case fFunction:
			var id, name uint64
			err := walk(f.bytes, func(f field) error {
				switch f.num {
				case fFunctionID:
					id = f.v
				case fFunctionName:
					name = f.v
				}
				return nil
			})
			if id == 0 {
				return errors.New("a function with no ID")
			}
			funcs[id] = name
			p.maxFunction = max(p.maxFunction, id)
			return err
		case fStringTable:
			if f.typ != protowire.BytesType {
				return fmt.Errorf("string table entry of wire type %d", f.typ)
			}
			strs = append(strs, string(f.bytes))
		case fTimeNanos:
			p.TimeNanos = int64(f.v)
		case fDurationNanos:
			p.DurationNanos = int64(f.v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(strs) == 0 || strs[0] != "" {
		return nil, errors.New("the string table does not start with the empty string")
	}
	p.strings = len(strs)
	str := func(i uint64) (string, error) {
		if i >= uint64(len(strs)) {
			return "", fmt.Errorf("string index %d of %d", i, len(strs))
		}
		return strs[i], nil
	}
	for _, t := range types {
		typ, err := str(t[0])
		if err != nil {
			return nil, err
		}
		unit, err := str(t[1])
		if err != nil {
			return nil, err
		}
		p.SampleTypes = append(p.SampleTypes, ValueType{typ, unit})
	}
	resolved := make(map[uint64]*location, len(locs))
	for id, l := range locs {
		r := &location{address: l.address}
		for _, fn := range l.funcs {
			if fn == 0 { // a line with no function
				continue
			}
			name, ok := funcs[fn]
			if !ok {
				return nil, fmt.Errorf("location %d names function %d, which is not in the profile", id, fn)
			}
			s, err := str(name)
			if err != nil {
				return nil, err
			}
			r.funcs = append(r.funcs, s)
		}
		resolved[id] = r
	}
	p.samples = make([]sample, len(samples))
	for i, s := range samples {
		if len(s.values) != len(types) {
			return nil, fmt.Errorf("a sample has %d values for %d sample types", len(s.values), len(types))
		}
		stack := make([]*location, len(s.locs))
		for j, id := range s.locs {
			if stack[j] = resolved[id]; stack[j] == nil {
				return nil, fmt.Errorf("a sample names location %d, which is not in the profile", id)
			}
		}
		p.samples[i] = sample{stack, s.values}
	}
	return p, nil
}

// field is one field of a protobuf message: a varint's value in v, or
// length-delimited bytes. raw is the whole field, tag included.
type field struct {
	num   protowire.Number
	typ   protowire.Type
	v     uint64
	bytes []byte
	raw   []byte
}

// varints calls fn with each value of a repeated integer field, which may
// be packed (one length-delimited field) or not.
func (f field) varints(fn func(uint64)) error {
	switch f.typ {
	case protowire.VarintType:
		fn(f.v)
		return nil
	case protowire.BytesType:
		for b := f.bytes; len(b) > 0; {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			fn(v)
			b = b[n:]
		}
		return nil
	}
	return fmt.Errorf("field %d: integers of wire type %d", f.num, f.typ)
}

// walk calls fn with each field of the message msg, in order.
func walk(msg []byte, fn func(field) error) error {
	for len(msg) > 0 {
		f := field{raw: msg}
		var n int
		f.num, f.typ, n = protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		rest := msg[n:]
		switch f.typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(rest)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(rest)
		default:
			n = protowire.ConsumeFieldValue(f.num, f.typ, rest)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		f.raw = msg[:len(msg)-len(rest)+n]
		msg = rest[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// renumber appends msg to dst with the varint fields that fields names
// moved up by their offset; a zero value, which means none, stays zero.
// Every other field is copied as it is.
func renumber(dst, msg []byte, offset func(protowire.Number) uint64) ([]byte, error) {
	err := walk(msg, func(f field) error {
		if add := offset(f.num); add != 0 && f.typ == protowire.VarintType && f.v != 0 {
			dst = protowire.AppendTag(dst, f.num, protowire.VarintType)
			dst = protowire.AppendVarint(dst, f.v+add)
			return nil
		}
		dst = append(dst, f.raw...)
		return nil
	})
	return dst, err
}

// allocator returns the name of the innermost function of s outside the
// runtime, or of the innermost function if all are in the runtime.
func allocator(s sample) string {
	var leaf string
	for _, loc := range s.stack {
		for _, name := range loc.funcs { // innermost first, inlined calls included
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
	case len(s.stack) > 0:
		return fmt.Sprintf("%#x", s.stack[0].address) // not symbolized
	}
	return "(unknown)"
}
