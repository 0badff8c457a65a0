package notify_test

import (
	"testing"

	"github.com/oomguard/oomguard/internal/cgrouptest"
	"github.com/oomguard/oomguard/internal/notify"
)

func TestThresholdFiresOnV1(t *testing.T) {
	c := needVersion(t, 1, 256*mib, "cgroup.event_control")
	th := &notify.Threshold{Dir: c.Dir, Bytes: 64 * mib}
	if err := th.Start(); err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	startHelper(t, c, "alloc 100")
	took := waitFire(t, th.C, "usage past 64 MiB")
	r, err := c.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	u, err := r.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Current < 64*mib {
		t.Errorf("signalled with usage %d, below the 64 MiB threshold", u.Current)
	}
	t.Logf("fired %v after the helper started; usage now %.1f MiB", took, float64(u.Current)/mib)
}

func TestThresholdReadOnlyOnV1(t *testing.T) {
	c := needVersion(t, 1, 0, "cgroup.event_control")
	readOnlyHelper(t, c.Mount, c.Dir)
}

func TestThresholdUnavailable(t *testing.T) {
	assertUnavailable(t, &notify.Threshold{Dir: t.TempDir(), Bytes: mib}, "not a cgroup")
	c := cgrouptest.New(t, 0)
	if c.Version == 2 {
		assertUnavailable(t, &notify.Threshold{Dir: c.Dir, Bytes: mib}, "a v2 cgroup")
	}
}
