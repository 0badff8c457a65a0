package notify_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oomguard/oomguard/internal/cgrouptest"
	"github.com/oomguard/oomguard/internal/notify"
)

func TestEventsFiresOnOOMKillOnV2(t *testing.T) {
	c := needVersion(t, 2, 64*mib, "memory.events")
	ev := &notify.Events{Dir: c.Dir}
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	_, cmd := startHelper(t, c, "alloc 256")
	took := waitFire(t, ev.C, "memory.events")
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Errorf("helper allocating 256 MiB in 64 MiB: %v, want killed", err)
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, "memory.events"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nmax ") || strings.Contains(string(b), "\nmax 0\n") {
		t.Errorf("memory.events after the signal:\n%s\nwant max above 0", b)
	}
	t.Logf("fired %v after the helper started; memory.events now:\n%s", took, b)
}

func TestEventsUnavailable(t *testing.T) {
	assertUnavailable(t, &notify.Events{Dir: t.TempDir()}, "not a cgroup")
	c := cgrouptest.New(t, 0)
	if c.Version == 1 {
		assertUnavailable(t, &notify.Events{Dir: c.Dir}, "a v1 cgroup")
	}
}
