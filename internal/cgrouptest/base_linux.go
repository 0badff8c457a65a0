package cgrouptest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oomguard/oomguard/internal/cgroup"
)

// A base is the cgroup under which this process makes its cgroups.
//
// On v1 that is the process's own memory cgroup. On v2 it must be a cgroup
// without processes of its own (the "no internal processes" rule: the
// memory controller cannot be enabled for the children of a cgroup that
// holds processes), so the first that works of:
//
//   - the root of the cgroup2 mount, which the rule exempts (root, VMs);
//   - the process's own cgroup, once the process has moved into a leaf
//     below it, where the process is alone there and may write it (a
//     container running the test binary as its only process);
//   - a systemd scope delegated to the process (systemd-run --scope
//     -p Delegate=yes), whose placeholder process moves into a leaf.
//
// A base is shared by every cgroup made under it and undone, the process
// moved back or the scope stopped, when the last of them is removed.
type base struct {
	cgroup.Group
	how     string
	undo    func() error // nil: nothing to undo
	holders int
}

var (
	baseMu  sync.Mutex
	current *base
)

// acquireBase returns the base, finding or making it on first use; each
// call must be paired with releaseBase.
func acquireBase() (*base, error) {
	baseMu.Lock()
	defer baseMu.Unlock()
	if current == nil {
		b, err := findBase()
		if err != nil {
			return nil, err
		}
		current = b
	}
	current.holders++
	return current, nil
}

// releaseBase drops one hold and undoes the base after the last.
func releaseBase(b *base) error {
	baseMu.Lock()
	defer baseMu.Unlock()
	b.holders--
	if b.holders > 0 || b.undo == nil {
		return nil
	}
	if current == b {
		current = nil
	}
	if err := b.undo(); err != nil {
		return fmt.Errorf("cgrouptest: undo %s base %s: %w", b.how, b.Dir, err)
	}
	return nil
}

// findBase tries each way to get a base and, where none works, returns one
// line saying what is needed and why each way failed.
func findBase() (*base, error) {
	self, err := cgroup.Self()
	if err != nil {
		return nil, fmt.Errorf("cgrouptest: no memory cgroup to make children under (needs Linux with the memory controller, v1 or v2): %w", err)
	}
	if !strings.HasPrefix(self.Dir, self.Mount) {
		return nil, fmt.Errorf("cgrouptest: memory cgroup %s is outside its mount %s", self.Dir, self.Mount)
	}
	if self.Version == 1 {
		return &base{Group: *self, how: "own v1"}, nil
	}
	var whyNot []string
	tries := []struct {
		name string
		try  func(*cgroup.Group) (*base, error)
	}{
		{"cgroup2 root", rootBase},
		{"own cgroup", ownLeafBase},
		{"systemd", systemdBase},
	}
	for _, t := range tries {
		b, err := t.try(self)
		if err == nil {
			return b, nil
		}
		whyNot = append(whyNot, t.name+": "+explain(err))
	}
	return nil, fmt.Errorf("cgrouptest: cannot make a memory cgroup on cgroup v2 at %s: needs root or a delegated cgroup v2 subtree (or systemd-run), and a writable cgroupfs; %s",
		self.Mount, strings.Join(whyNot, "; "))
}

// rootBase uses the root of the cgroup2 mount. Enabling memory for its
// children is a no-op where it is already enabled, and fails without the
// right to write there.
func rootBase(self *cgroup.Group) (*base, error) {
	root := cgroup.Group{Version: 2, Dir: self.Mount, Mount: self.Mount}
	if err := enableMemory(root.Dir); err != nil {
		return nil, err
	}
	if err := probeMkdir(root.Dir); err != nil {
		return nil, err
	}
	return &base{Group: root, how: "cgroup2 root"}, nil
}

// ownLeafBase moves the process into a leaf below its own cgroup, where it
// is that cgroup's only process, and enables memory for the children.
// Undone by moving the process back and removing the leaf.
func ownLeafBase(self *cgroup.Group) (*base, error) {
	pids, err := readProcs(self.Dir)
	if err != nil {
		return nil, err
	}
	me := os.Getpid()
	for _, pid := range pids {
		if pid != me {
			return nil, fmt.Errorf("%s holds other processes too (pid %d)", self.Dir, pid)
		}
	}
	leaf := filepath.Join(self.Dir, fmt.Sprintf("oomguard-self-%d", me))
	if err := os.Mkdir(leaf, 0o755); err != nil {
		return nil, err
	}
	if err := writeProcs(leaf, me); err != nil {
		os.Remove(leaf)
		return nil, err
	}
	moveBack := func() error {
		// The process may return only once memory, and cpu where LimitCPU
		// enabled it, are off for the children.
		_ = writeFile(filepath.Join(self.Dir, "cgroup.subtree_control"), "-cpu")
		if err := writeFile(filepath.Join(self.Dir, "cgroup.subtree_control"), "-memory"); err != nil {
			return err
		}
		if err := writeProcs(self.Dir, me); err != nil {
			return err
		}
		return os.Remove(leaf)
	}
	if err := enableMemory(self.Dir); err != nil {
		return nil, errors.Join(err, moveBack())
	}
	return &base{Group: *self, how: "own cgroup", undo: moveBack}, nil
}

// enableMemory writes +memory to dir's cgroup.subtree_control.
func enableMemory(dir string) error {
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory")
}

// probeMkdir checks that dir takes a new cgroup.
func probeMkdir(dir string) error {
	probe := filepath.Join(dir, fmt.Sprintf("oomguard-probe-%d", os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return err
	}
	return os.Remove(probe)
}

func writeFile(path, s string) error {
	if err := os.WriteFile(path, []byte(s), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", s, path, unwrapPathError(err))
	}
	return nil
}

func writeProcs(dir string, pid int) error {
	return writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid))
}

// readProcs returns the pids in dir's cgroup.procs.
func readProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s/cgroup.procs: bad pid %q", dir, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// unwrapPathError drops the *PathError wrapper of an error whose message
// already names the path.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// oneLine keeps an error on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// explain puts err on one line and adds what the kernel's answer means.
func explain(err error) string {
	var hint string
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EROFS:
			hint = " (the cgroupfs is mounted read-only: remount it read-write, or run the container privileged)"
		case syscall.EACCES, syscall.EPERM:
			hint = " (needs root, or a cgroup delegated to this user)"
		case syscall.EBUSY:
			hint = " (the cgroup holds processes: cgroup v2 gives memory limits only to the children of cgroups without)"
		}
	}
	return oneLine(err) + hint
}

// removeDir removes an empty cgroup, retrying while the kernel still
// counts a process that was just killed in it.
func removeDir(dir string) error {
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}
