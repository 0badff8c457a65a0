//go:build !race

package guard_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/cgrouptest"
	"github.com/oomguard/oomguard/profile"
)

// TestCgroupLastProfileNearTheKill: a service fills most of a 192 MiB
// cgroup, then leaks at a steady rate until the kernel kills it; at every
// rate from a slow climb to a fast one, its last heap profile was written
// at most 1.5 s before the kill. It runs without the race detector and
// alone, as the burst test does: the profile must be written while the
// kernel is about to strike, and other packages' tests beside it take the
// CPUs the writer needs.
func TestCgroupLastProfileNearTheKill(t *testing.T) {
	for _, rate := range []int{2, 4, 16, 64} {
		t.Run(fmt.Sprintf("%d MiB a second", rate), func(t *testing.T) {
			child := cgrouptest.New(t, 192*mib)
			dir := t.TempDir()
			env := []string{"OOMGUARD_DUMP_DIR=" + dir, "OOMGUARD_TEST_FILL_MIB=120", fmt.Sprintf("OOMGUARD_TEST_LEAK_MIB_PER_S=%d", rate)}
			died, stderr := runUntilKilled(t, child, "leak-at-rate", env)
			st, err := profile.Open(profile.Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var last profile.Meta
			for _, m := range st.List() {
				if m.Kind == "" && m.Time.After(last.Time) {
					last = m
				}
			}
			if last.Time.IsZero() {
				t.Fatal("no heap profile before the kill")
			}
			gap := died.Sub(last.Time)
			t.Logf("the last profile (%s) was written %v before the kill was seen", last.Reason, gap.Round(time.Millisecond))
			if gap < 0 || gap > 1500*time.Millisecond {
				t.Errorf("last profile (%s) %v before the kill, want at most 1.5s", last.Reason, gap)
				// What was written when, and the service's own account
				// of each write and how long it took.
				for _, m := range st.List() {
					t.Logf("profile %q %s, %v before the kill", m.Kind, m.Reason, died.Sub(m.Time).Round(time.Millisecond))
				}
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				t.Logf("the service's last log lines:\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
			}
		})
	}
}
