//go:build linux

package cgroup_test

import (
	"errors"
	"testing"

	"github.com/oomguard/oomguard/internal/cgroup"
)

func TestRealSelf(t *testing.T) {
	g, err := cgroup.Self()
	if errors.Is(err, cgroup.ErrNoMemoryController) {
		t.Skipf("no memory cgroup here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	l, err := g.Limit()
	if err != nil {
		t.Fatalf("Limit of %s: %v", g.Dir, err)
	}
	t.Logf("v%d %s (mount %s): limit %+v", g.Version, g.Dir, g.Mount, l)
}
