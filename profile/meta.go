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

	// Force makes this write ignore Options.MinInterval, for example for the
	// second profile of a pair taken one GC cycle after the first. It is not
	// persisted.
	Force bool `json:"-"`
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

// profileName returns the name of the profile with sequence number seq
// taken at t.
func profileName(t time.Time, seq uint64) string {
	return namePrefix + t.UTC().Format(nameTimeFmt) + "-" + strconv.FormatUint(seq, 10) + profileSuffix
}

// parseName reports whether name (without directory) is a store-made name
// with the given suffix, and returns its time and sequence number.
func parseName(name, suffix string) (t time.Time, seq uint64, ok bool) {
	base, found := strings.CutPrefix(name, namePrefix)
	if !found {
		return time.Time{}, 0, false
	}
	base, found = strings.CutSuffix(base, suffix)
	if !found {
		return time.Time{}, 0, false
	}
	ts, seqStr, found := strings.Cut(base, "-")
	if !found {
		return time.Time{}, 0, false
	}
	t, err := time.Parse(nameTimeFmt, ts)
	if err != nil || t.Format(nameTimeFmt) != ts {
		// time.Parse also takes a comma before the milliseconds: one name
		// per profile, the one the store makes.
		return time.Time{}, 0, false
	}
	seq, err = strconv.ParseUint(seqStr, 10, 64)
	if err != nil || strconv.FormatUint(seq, 10) != seqStr {
		return time.Time{}, 0, false // reject "+1", "01": one name per profile
	}
	return t, seq, true
}

// metaName returns the name of the sidecar file holding the Meta of the
// profile called name.
func metaName(name string) string {
	return strings.TrimSuffix(name, profileSuffix) + metaSuffix
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
