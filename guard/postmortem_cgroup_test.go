package guard_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/internal/cgrouptest"
	"github.com/oomguard/oomguard/profile"
)

// TestCgroupPostMortemAfterKill: a service leaks in a real cgroup until the
// kernel kills it; started again on the same DumpDir, the guard concludes it
// was likely OOM-killed, names the leaking function first, and its last
// profile was taken at most 1.5s before the kill.
func TestCgroupPostMortemAfterKill(t *testing.T) {
	child := cgrouptest.New(t, 256*mib)
	dir := t.TempDir()
	env := []string{"OOMGUARD_DUMP_DIR=" + dir}
	died, _ := runUntilKilled(t, child, "leak-until-killed", env)

	lines, log := runServiceStderr(t, child, "postmortem", env, nil)
	var pm *guard.PostMortem
	for _, l := range lines {
		if l.Kind == "postmortem" {
			pm = l.PostMortem
		}
	}
	if pm == nil {
		t.Fatal("no post-mortem after a kill")
	}
	t.Logf("post-mortem: %+v", *pm)
	if !pm.LikelyOOMKilled || pm.Ended != "unclean" {
		t.Errorf("likely OOM-killed %v, ended %q; want true and unclean", pm.LikelyOOMKilled, pm.Ended)
	}
	if len(pm.TopGrowth) == 0 || pm.TopGrowth[0].Function != "main.leakMemory" {
		t.Errorf("top growth %+v, want main.leakMemory first", pm.TopGrowth)
	}
	var first string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=ERROR") {
			first = l
			break
		}
	}
	if !strings.Contains(first, "likely OOM-killed") || !strings.Contains(first, "top growth: main.leakMemory +") {
		t.Errorf("first ERROR line %q, want a likely OOM kill naming main.leakMemory", first)
	}
	if gap := died.Sub(pm.LastProfileTime); gap < 0 || gap > 1500*time.Millisecond {
		t.Errorf("last profile %v before the kill, want at most 1.5s", gap)
	} else {
		t.Logf("the last profile was written %v before the kill was seen", gap)
	}
}

// TestCgroupLastProfileNearTheKill: a service fills most of a 192 MiB
// cgroup, then leaks at a steady rate until the kernel kills it; at every
// rate from a slow climb to a fast one, its last heap profile was written
// at most 1.2 s before the kill.
func TestCgroupLastProfileNearTheKill(t *testing.T) {
	for _, rate := range []int{2, 4, 16, 64} {
		t.Run(fmt.Sprintf("%d MiB a second", rate), func(t *testing.T) {
			child := cgrouptest.New(t, 192*mib)
			dir := t.TempDir()
			env := []string{"OOMGUARD_DUMP_DIR=" + dir, "OOMGUARD_TEST_FILL_MIB=120", fmt.Sprintf("OOMGUARD_TEST_LEAK_MIB_PER_S=%d", rate)}
			died, _ := runUntilKilled(t, child, "leak-at-rate", env)
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
			// Tighter than the 1.5 s, so that a single
			// last-moments step, which barely meets that at a slow climb,
			// fails here.
			if gap < 0 || gap > 1200*time.Millisecond {
				t.Errorf("last profile (%s) %v before the kill, want at most 1.2s", last.Reason, gap)
			}
		})
	}
}
