package profile

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Meta describes one stored heap profile. It is persisted beside the profile
// and survives a restart.
type Meta struct {
	// Name identifies the profile in the store, e.g.
	// "heap-20250102T150405.000Z-7.pb.gz". Set by the store; ignored on
	// write.
	Name string `json:"name"`

	// Time is when the profile was taken, in UTC. Zero on write means the
	// store's current time.
	Time time.Time `json:"time"`

	// Reason says why the profile was taken, e.g. "level High".
	Reason string `json:"reason"`

	// Level is the memory level when the profile was taken, e.g. "High".
	Level string `json:"level"`

	// Usage, Limit and Heap are the memory figures, in bytes, when the
	// profile was taken: the container's working set, its effective limit,
	// and the live Go heap.
	Usage int64 `json:"usage"`
	Limit int64 `json:"limit"`
	Heap  int64 `json:"heap"`

	// Size is the size of the profile file in bytes. Set by the store.
	Size int64 `json:"size"`

	// Kind is what the file holds: KindHeap (the default when empty),
	// KindGoroutine or KindTrace. It picks the name's prefix and suffix.
	Kind string `json:"kind,omitempty"`

	// Force makes this write ignore Options.MinInterval, for example for the
	// second profile of a pair taken one GC cycle after the first. It is not
	// persisted.
	Force bool `json:"-"`

	// Kept marks a profile that a write on demand never deletes, such as
	// the evidence a process left before it was killed. Set by Store.Keep;
	// ignored on write, and not persisted: each process marks what it
	// keeps.
	Kept bool `json:"kept,omitempty"`

	// OnDemand marks a write that a person or a client asked for, rather
	// than one of the guard's triggers. To stay within MaxCount and
	// MaxBytes it deletes only profiles not Kept, oldest first, and fails
	// with an error wrapping ErrFull, writing nothing, when those are not
	// enough. It is not persisted.
	OnDemand bool `json:"-"`
}

// Profile and sidecar names are "heap-<UTC time>-<sequence>" with the
// suffixes below. The sequence keeps names unique and orders profiles taken
// in the same millisecond. Temporary files start with tempPrefix, which no
// profile or sidecar name matches, so a half-written file is never indexed
// or served.
const (
	namePrefix    = "heap-"
	profileSuffix = ".pb.gz"
	metaSuffix    = ".json"
	tempPrefix    = ".tmp-"
	nameTimeFmt   = "20060102T150405.000Z"

	// maxNameLen bounds names accepted from outside; store-made names
	// are about 40 bytes.
	maxNameLen = 128
)

// The kinds of file the store keeps, each with its own name prefix and
// suffix: pprof's gzipped protobuf for heap and goroutine profiles, and
// runtime/trace's format for execution traces.
const (
	KindHeap      = "heap"
	KindGoroutine = "goroutine"
	KindTrace     = "trace"
)

// kinds maps each kind to its name's prefix and file suffix.
var kinds = [...]struct{ kind, prefix, suffix string }{
	{KindHeap, namePrefix, profileSuffix},
	{KindGoroutine, "goroutine-", profileSuffix},
	{KindTrace, "trace-", ".trace"},
}

// kindOf returns the prefix and suffix of kind, or false for an unknown one.
func kindOf(kind string) (prefix, suffix string, ok bool) {
	if kind == "" {
		kind = KindHeap
	}
	for _, k := range kinds {
		if k.kind == kind {
			return k.prefix, k.suffix, true
		}
	}
	return "", "", false
}

// profileName returns the name of the file of kind with sequence number seq
// taken at t.
func profileName(kind string, t time.Time, seq uint64) string {
	prefix, suffix, _ := kindOf(kind)
	return prefix + t.UTC().Format(nameTimeFmt) + "-" + strconv.FormatUint(seq, 10) + suffix
}

// parseName reports whether name (without directory) is a store-made name
// of a profile (suffix "" means the suffix of its kind) or of a sidecar
// (metaSuffix), and returns its kind, time and sequence number.
func parseName(name, suffix string) (kind string, t time.Time, seq uint64, ok bool) {
	var base string
	found := false
	for _, k := range kinds {
		if base, found = strings.CutPrefix(name, k.prefix); found {
			kind = k.kind
			if suffix == "" {
				suffix = k.suffix
			}
			break
		}
	}
	if !found {
		return "", time.Time{}, 0, false
	}
	base, found = strings.CutSuffix(base, suffix)
	if !found {
		return "", time.Time{}, 0, false
	}
	ts, seqStr, found := strings.Cut(base, "-")
	if !found {
		return "", time.Time{}, 0, false
	}
	t, err := time.Parse(nameTimeFmt, ts)
	if err != nil || t.Format(nameTimeFmt) != ts {
		// time.Parse also takes a comma before the milliseconds: one name
		// per profile, the one the store makes.
		return "", time.Time{}, 0, false
	}
	seq, err = strconv.ParseUint(seqStr, 10, 64)
	if err != nil || strconv.FormatUint(seq, 10) != seqStr {
		return "", time.Time{}, 0, false // reject "+1", "01": one name per profile
	}
	return kind, t, seq, true
}

// metaName returns the name of the sidecar file holding the Meta of the
// profile called name.
func metaName(name string) string {
	for _, k := range kinds {
		if strings.HasPrefix(name, k.prefix) {
			return strings.TrimSuffix(name, k.suffix) + metaSuffix
		}
	}
	return name + metaSuffix
}

// profileOf returns the name of the profile whose sidecar is called meta.
func profileOf(meta string) string {
	for _, k := range kinds {
		if strings.HasPrefix(meta, k.prefix) {
			return strings.TrimSuffix(meta, metaSuffix) + k.suffix
		}
	}
	return strings.TrimSuffix(meta, metaSuffix)
}

// checkName reports whether name, taken from outside the store, could be a
// profile name at all. It is a cheap first filter that lets the HTTP handler
// answer 400 rather than 404; the index lookup is what grants access.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("empty profile name")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("profile name %.32q... is %d bytes, longer than %d", name, len(name), maxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("profile name %q starts with a dot", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("profile name %q has a character outside [A-Za-z0-9._-]", name)
		}
	}
	return nil
}
