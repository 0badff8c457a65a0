package profile

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseName: any file name parses without a panic, and one that
// parses is exactly the name the store makes of its time and sequence
// number, so that one profile has one name; every time and sequence
// number the store makes a name of parses back.
func FuzzParseName(f *testing.F) {
	f.Add("heap-20250102T150405.123Z-42.pb.gz", int64(1735830245123456789), uint64(42))
	f.Add("heap-20250102T150405.123Z-42.json", int64(0), uint64(0))
	f.Add("heap-20250102T150405.123Z-042.pb.gz", int64(-62135596800000000), uint64(1<<63))
	f.Add("heap-20250230T250405.123Z-1.pb.gz", int64(253402300799999999), uint64(7))
	f.Add("heap-99991231T235959.999Z-18446744073709551615.pb.gz", int64(1), uint64(18446744073709551615))
	f.Add(".tmp-heap-1", int64(1), uint64(1))
	f.Fuzz(func(t *testing.T, name string, unixNano int64, seq uint64) {
		for _, suffix := range []string{profileSuffix, metaSuffix} {
			_, tm, n, ok := parseName(name, suffix)
			if !ok {
				continue
			}
			made := namePrefix + tm.UTC().Format(nameTimeFmt) + "-" + strconv.FormatUint(n, 10) + suffix
			if made != name {
				t.Fatalf("parseName(%q) = %v, %d: the store would name that %q", name, tm, n, made)
			}
			if err := checkName(name); err != nil && len(name) <= maxNameLen {
				t.Fatalf("parseName accepts %q, checkName refuses it: %v", name, err)
			}
		}
		tm := time.Unix(0, unixNano)
		name = profileName(KindHeap, tm, seq)
		_, got, n, ok := parseName(name, profileSuffix)
		if !ok || n != seq || !got.Equal(tm.UTC().Truncate(time.Millisecond)) {
			t.Fatalf("parseName(%q) = %v, %d, %v; want %v, %d", name, got, n, ok, tm.UTC().Truncate(time.Millisecond), seq)
		}
		if m := metaName(name); !strings.HasSuffix(m, metaSuffix) || strings.TrimSuffix(m, metaSuffix) != strings.TrimSuffix(name, profileSuffix) {
			t.Fatalf("metaName(%q) = %q", name, m)
		}
	})
}
