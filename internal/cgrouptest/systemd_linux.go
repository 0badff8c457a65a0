package cgrouptest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oomguard/oomguard/internal/cgroup"
)

var scopes atomic.Int64

// systemdBase asks systemd for a scope delegated to this process, the
// fallback where the process may neither write the cgroup2 root nor own its
// cgroup. A scope needs a process: "sleep infinity" holds it, moved into a
// leaf so that the scope itself holds none and can enable memory for the
// cgroups made in it. The limits are then written in that subtree, as
// systemd's MemoryMax= would write them. Undone by killing the sleep, after
// which systemd stops the scope.
func systemdBase(self *cgroup.Group) (*base, error) {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return nil, errors.New("systemd is not running")
	}
	run, err := exec.LookPath("systemd-run")
	if err != nil {
		return nil, err
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return nil, err
	}
	unit := fmt.Sprintf("oomguard-test-%d-%d.scope", os.Getpid(), scopes.Add(1))
	var user []string
	if os.Geteuid() != 0 {
		user = []string{"--user"}
	}
	args := append(user, "--scope", "--quiet", "--collect", "--unit="+unit, "-p", "Delegate=yes", "--", sleep, "infinity")
	cmd := exec.Command(run, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	dir, err := scopeDir(self.Mount, user, unit)
	if err != nil {
		stop()
		return nil, fmt.Errorf("%s: %w %s", unit, err, strings.TrimSpace(stderr.String()))
	}
	keeper := filepath.Join(dir, "keeper")
	if err := os.Mkdir(keeper, 0o755); err != nil {
		stop()
		return nil, err
	}
	undo := func() error {
		stop()
		return removeDir(keeper)
	}
	pids, err := readProcs(dir)
	for _, pid := range pids {
		if err == nil {
			err = writeProcs(keeper, pid)
		}
	}
	if err == nil {
		err = enableMemory(dir)
	}
	if err != nil {
		return nil, errors.Join(err, undo())
	}
	return &base{Group: cgroup.Group{Version: 2, Dir: dir, Mount: self.Mount}, how: "systemd scope " + unit, undo: undo}, nil
}

// scopeDir waits for systemd to make the scope and returns its directory.
func scopeDir(mount string, user []string, unit string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		args := append(user, "show", "--property=ControlGroup", "--value", unit)
		out, err := exec.Command("systemctl", args...).Output()
		if cg := strings.TrimSpace(string(out)); err == nil && cg != "" {
			dir := filepath.Join(mount, cg)
			if _, err := os.Stat(dir); err == nil {
				return dir, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("systemd made no cgroup for the scope within 10s (systemctl show: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
