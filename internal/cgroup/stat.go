package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Usage is one reading of a group's memory.
type Usage struct {
	// Current is the charged memory: v2 memory.current, v1 memory.usage_in_bytes.
	Current int64
	// InactiveFile is page cache the kernel can reclaim first:
	// v2 inactive_file, v1 total_inactive_file of memory.stat.
	InactiveFile int64
}

// WorkingSet is Current minus InactiveFile, as the kubelet computes it for
// eviction and as OOM decisions see it; never negative.
func (u Usage) WorkingSet() int64 {
	if u.InactiveFile > u.Current {
		return 0
	}
	return u.Current - u.InactiveFile
}

// Reader reads a group's usage and OOM-kill count repeatedly without
// allocating: it keeps the control files open and rereads them in place.
// A Reader is not safe for concurrent use.
type Reader struct {
	usage, stat, events *os.File
	pressure            *os.File // v2 memory.pressure; nil where missing
	v2                  bool
	inactiveKey         []byte
	buf                 []byte
}

// NewReader opens g's usage files. Close it when done.
func (g *Group) NewReader() (*Reader, error) {
	usageFile, inactive, events := "memory.current", "inactive_file", "memory.events"
	if g.Version == 1 {
		usageFile, inactive, events = "memory.usage_in_bytes", "total_inactive_file", "memory.oom_control"
	}
	r := &Reader{inactiveKey: []byte(inactive), buf: make([]byte, 8<<10)}
	var err error
	if r.usage, err = os.Open(filepath.Join(g.Dir, usageFile)); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	if r.stat, err = os.Open(filepath.Join(g.Dir, "memory.stat")); err != nil {
		r.Close()
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	// The OOM-kill counter and pressure are optional: old kernels lack them.
	r.events, _ = os.Open(filepath.Join(g.Dir, events))
	if g.Version == 2 {
		r.v2 = true
		r.pressure, _ = os.Open(filepath.Join(g.Dir, "memory.pressure"))
	}
	return r, nil
}

// Close closes the files.
func (r *Reader) Close() error {
	for _, f := range []*os.File{r.usage, r.stat, r.events, r.pressure} {
		if f != nil {
			f.Close()
		}
	}
	return nil
}

// Usage reads the group's current usage and inactive file pages.
func (r *Reader) Usage() (Usage, error) {
	b, err := r.read(r.usage)
	if err != nil {
		return Usage{}, err
	}
	cur, ok := parseUsage(b)
	if !ok {
		return Usage{}, fmt.Errorf("cgroup: %s: bad value %q", r.usage.Name(), bytes.TrimSpace(b))
	}
	b, err = r.read(r.stat)
	if err != nil {
		return Usage{}, err
	}
	inactive, _ := field(b, r.inactiveKey)
	return Usage{Current: cur, InactiveFile: inactive}, nil
}

var oomKillKey = []byte("oom_kill")

// OOMKills returns the kernel's count of processes OOM-killed in the group
// (v1 memory.oom_control, v2 memory.events "oom_kill"), or false where the
// kernel does not report it.
func (r *Reader) OOMKills() (int64, bool) {
	if r.events == nil {
		return 0, false
	}
	b, err := r.read(r.events)
	if err != nil {
		return 0, false
	}
	return field(b, oomKillKey)
}

// Events returns a v2 group's memory.events counters, or false on v1 and
// where the file is missing or unreadable.
func (r *Reader) Events() (Events, bool) {
	if !r.v2 || r.events == nil {
		return Events{}, false
	}
	b, err := r.read(r.events)
	if err != nil {
		return Events{}, false
	}
	e, err := ParseEvents(b)
	return e, err == nil
}

// Pressure returns a v2 group's memory pressure stall information, or
// false where the kernel offers none.
func (r *Reader) Pressure() (Pressure, bool) {
	if r.pressure == nil {
		return Pressure{}, false
	}
	b, err := r.read(r.pressure)
	if err != nil {
		return Pressure{}, false
	}
	p, err := ParsePressure(b)
	return p, err == nil
}

// maxFileSize bounds what Reader reads of one control file, in bytes. The
// largest, memory.stat, is under 2 KiB on v1 and v2 alike; a file that
// fills this is not a cgroup file, and reading on would grow the buffer
// without bound.
const maxFileSize = 1 << 20

func (r *Reader) read(f *os.File) ([]byte, error) {
	for {
		n, err := f.ReadAt(r.buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		if n < len(r.buf) {
			return r.buf[:n], nil
		}
		if len(r.buf) >= maxFileSize {
			return nil, fmt.Errorf("cgroup: %s: larger than %d bytes", f.Name(), maxFileSize)
		}
		// A full buffer may have cut the file short: grow and read again.
		r.buf = make([]byte, min(2*len(r.buf), maxFileSize))
	}
}

// field finds "key value" in a flat-keyed file and parses the value.
func field(b, key []byte) (int64, bool) {
	v, ok := value(b, key)
	if !ok {
		return 0, false
	}
	return parseInt(v)
}

// value returns the value of key in a flat-keyed file: one "key value" per
// line, as memory.stat, memory.events and memory.oom_control are.
func value(b, key []byte) ([]byte, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > len(key) && line[len(key)] == ' ' && bytes.Equal(line[:len(key)], key) {
			return line[len(key)+1:], true
		}
	}
	return nil, false
}

// parseUsage parses the content of a usage file, v2 memory.current or v1
// memory.usage_in_bytes: a decimal number of bytes with surrounding white
// space.
func parseUsage(b []byte) (int64, bool) { return parseInt(bytes.TrimSpace(b)) }

// parseInt parses a non-negative decimal without allocating; 0 and false
// if b is not one or does not fit an int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	// 19 digits stay below 2^64, so an overflow shows as a sign.
	if v < 0 {
		return 0, false
	}
	return v, true
}

// ReadOOMKills is a one-shot read of the group's OOM-kill count.
func (g *Group) ReadOOMKills() (int64, bool) {
	b, ok := g.readOnce("memory.events", "memory.oom_control")
	if !ok {
		return 0, false
	}
	return field(b, oomKillKey)
}

// ReadPeak is a one-shot read of the highest usage the kernel charged to
// the group, in bytes: v2 memory.peak (Linux 5.19 and later), v1
// memory.max_usage_in_bytes.
func (g *Group) ReadPeak() (int64, bool) {
	b, ok := g.readOnce("memory.peak", "memory.max_usage_in_bytes")
	if !ok {
		return 0, false
	}
	return parseUsage(b)
}

// readOnce reads the group's control file, v2 or v1 by its version. Like
// Reader, it reads at most maxFileSize bytes: more is not a cgroup file,
// and what it holds is then unknown.
func (g *Group) readOnce(v2, v1 string) ([]byte, bool) {
	name := v2
	if g.Version == 1 {
		name = v1
	}
	f, err := os.Open(filepath.Join(g.Dir, name))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil || len(b) > maxFileSize {
		return nil, false
	}
	return b, true
}
