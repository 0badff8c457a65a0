package guard_test

import (
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/internal/cgrouptest"
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
