package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Limit is the tightest memory limit found for a group.
type Limit struct {
	// Bytes is the limit; 0 means no cgroup limits memory.
	Bytes int64
	// File names the control file that set it: memory.max, memory.high,
	// memory.limit_in_bytes or hierarchical_memory_limit.
	File string
	// Dir is the cgroup directory that holds File; an ancestor of the
	// process's own cgroup when the limit is inherited.
	Dir string
}

// Limit returns the tightest memory limit that applies to g: on v2 the
// minimum of memory.max and memory.high over g and its ancestors up to the
// mount; on v1 the minimum of memory.limit_in_bytes and the
// hierarchical_memory_limit of memory.stat (which covers the ancestors).
//
// A group whose directory is gone (removed, or its hierarchy unmounted) is
// an error, not a group without a limit: its limit is unknown, not absent.
func (g *Group) Limit() (Limit, error) {
	if _, err := os.Stat(g.Dir); err != nil {
		return Limit{}, fmt.Errorf("cgroup: %w", err)
	}
	if g.Version == 2 {
		return g.limitV2()
	}
	return g.limitV1()
}

func (g *Group) limitV2() (Limit, error) {
	var best Limit
	consider := func(dir, file string) error {
		v, ok, err := readV2Value(filepath.Join(dir, file))
		if err != nil || !ok {
			return err
		}
		// At equal values memory.max wins: it is the hard limit.
		if best.Bytes == 0 || v < best.Bytes || (v == best.Bytes && file == "memory.max" && best.File == "memory.high") {
			best = Limit{Bytes: v, File: file, Dir: dir}
		}
		return nil
	}
	for dir := g.Dir; ; dir = filepath.Dir(dir) {
		if err := consider(dir, "memory.max"); err != nil {
			return Limit{}, err
		}
		if err := consider(dir, "memory.high"); err != nil {
			return Limit{}, err
		}
		if dir == g.Mount || dir == filepath.Dir(dir) || !strings.HasPrefix(dir, g.Mount) {
			break
		}
	}
	return best, nil
}

// readV2Value reads a v2 limit file. A missing file (the root cgroup has
// none) is no limit.
func readV2Value(path string) (int64, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("cgroup: %w", err)
	}
	v, ok, err := parseV2Value(b)
	if err != nil {
		return 0, false, fmt.Errorf("cgroup: %s: %w", path, err)
	}
	return v, ok, nil
}

// parseV2Value parses the content of a v2 limit file, memory.max or
// memory.high: a decimal number of bytes, or "max" for no limit (false),
// with surrounding white space.
func parseV2Value(b []byte) (int64, bool, error) {
	s := bytes.TrimSpace(b)
	if string(s) == "max" {
		return 0, false, nil
	}
	v, ok := parseInt(s)
	if !ok {
		return 0, false, fmt.Errorf("bad value %q", s)
	}
	return v, true, nil
}

func (g *Group) limitV1() (Limit, error) {
	var best Limit
	b, err := os.ReadFile(filepath.Join(g.Dir, "memory.limit_in_bytes"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Limit{}, fmt.Errorf("cgroup: %w", err)
	}
	if err == nil {
		v, err := parseV1Value(string(b))
		if err != nil {
			return Limit{}, fmt.Errorf("cgroup: memory.limit_in_bytes in %s: %w", g.Dir, err)
		}
		if v > 0 {
			best = Limit{Bytes: v, File: "memory.limit_in_bytes", Dir: g.Dir}
		}
	}
	stat, err := os.ReadFile(filepath.Join(g.Dir, "memory.stat"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Limit{}, fmt.Errorf("cgroup: %w", err)
	}
	if s, ok := value(stat, []byte("hierarchical_memory_limit")); ok {
		v, err := parseV1Value(string(s))
		if err != nil {
			return Limit{}, fmt.Errorf("cgroup: hierarchical_memory_limit in %s: %w", g.Dir, err)
		}
		if v > 0 && (best.Bytes == 0 || v < best.Bytes) {
			best = Limit{Bytes: v, File: "hierarchical_memory_limit", Dir: g.ancestorV1With(v)}
		}
	}
	return best, nil
}

// ancestorV1With names the nearest ancestor whose memory.limit_in_bytes is v,
// so that the source of an inherited limit can be shown; g.Dir if none is.
func (g *Group) ancestorV1With(v int64) string {
	for dir := g.Dir; strings.HasPrefix(dir, g.Mount); dir = filepath.Dir(dir) {
		if b, err := os.ReadFile(filepath.Join(dir, "memory.limit_in_bytes")); err == nil {
			if x, err := parseV1Value(string(b)); err == nil && x == v {
				return dir
			}
		}
		if dir == g.Mount || dir == filepath.Dir(dir) {
			break
		}
	}
	return g.Dir
}

// parseV1Value parses a v1 byte count; the kernel's "unlimited" (the largest
// page-aligned int64, 9223372036854771712 with 4 KiB pages) returns 0.
func parseV1Value(s string) (int64, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad value %q", strings.TrimSpace(s))
	}
	// Any page size up to 64 KiB rounds MaxInt64 down to at least this.
	if v >= math.MaxInt64-(1<<16) {
		return 0, nil
	}
	return int64(v), nil
}
