//go:build linux

package cgroup_test

import (
	"encoding/json"
	"testing"

	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

func TestRealLimit(t *testing.T) {
	c := cgrouptest.New(t, 200*mib)
	r := limitIn(t, c)
	want := cgroup.Limit{Bytes: 200 * mib, File: "memory.max", Dir: c.Dir}
	if c.Version == 1 {
		want.File = "memory.limit_in_bytes"
	}
	if r.Limit != want {
		t.Errorf("Limit = %+v, want %+v", r.Limit, want)
	}
	if !r.HasCrossCheck {
		t.Log("no cross-check compiled in")
	}
}

func TestRealLimitNested(t *testing.T) {
	parent := cgrouptest.New(t, 300*mib)
	c := cgrouptest.NewIn(t, parent, 0)
	r := limitIn(t, c)
	want := cgroup.Limit{Bytes: 300 * mib, File: "memory.max", Dir: parent.Dir}
	if c.Version == 1 {
		want.File = "hierarchical_memory_limit"
	}
	if r.Limit != want {
		t.Errorf("Limit = %+v, want %+v", r.Limit, want)
	}
}

// TestRealLimitHigh: on v2 memory.high, where the kernel starts throttling
// and reclaiming, is the limit when it is the lower bound.
func TestRealLimitHigh(t *testing.T) {
	c := cgrouptest.New(t, 200*mib)
	if c.Version != 2 {
		t.Skip("memory.high is cgroup v2 only")
	}
	if err := c.SetHigh(150 * mib); err != nil {
		t.Fatal(err)
	}
	r := limitIn(t, c)
	want := cgroup.Limit{Bytes: 150 * mib, File: "memory.high", Dir: c.Dir}
	if r.Limit != want {
		t.Errorf("Limit = %+v, want %+v", r.Limit, want)
	}
}

// limitIn runs the "limit" helper in c and returns its report.
func limitIn(t *testing.T, c *cgrouptest.Child) report {
	t.Helper()
	out, err := helperCommand(t, c, "limit").Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if r.Err != "" {
		t.Fatalf("helper: %s", r.Err)
	}
	if r.Dir != c.Dir {
		t.Errorf("helper's cgroup = %s, want %s", r.Dir, c.Dir)
	}
	if r.Version != c.Version {
		t.Errorf("helper's version = %d, want %d", r.Version, c.Version)
	}
	// automemlimit reads hard limits only, not memory.high.
	if r.HasCrossCheck && r.Limit.File != "memory.high" {
		if r.CrossErr != "" {
			t.Errorf("cross-check: %s", r.CrossErr)
		} else if int64(r.CrossCheck) != r.Limit.Bytes {
			t.Errorf("cross-check says %d bytes, Limit says %d", r.CrossCheck, r.Limit.Bytes)
		}
	}
	return r
}
