package cgrouptest_test

// Tests of the rig on the real kernel. Each way the rig makes a cgroup, and
// each way it fails, is run in a helper process (this test binary again)
// where the test needs another cgroup, user or mount namespace.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

const (
	mib       = 1 << 20
	helperEnv = "OOMGUARD_CGROUPTEST_HELPER"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helper runs in a child process and returns its exit code.
func helper(mode string) int {
	switch mode {
	case "where":
		// Print the cgroup this process runs in.
		b, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			fmt.Println(err)
			return 1
		}
		os.Stdout.Write(b)
	case "block":
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
	case "make":
		// Try to make a cgroup; print the error, or make and remove it.
		c, err := cgrouptest.Make("oomguard-helper", 64*mib)
		if err != nil {
			fmt.Println(err)
			return 3
		}
		if err := c.Remove(); err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("made", c.Dir)
	case "readonly":
		// The same with the memory controller's cgroupfs read-only.
		if err := remount(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY); err != nil {
			fmt.Println(err)
			return 1
		}
		return helper("make")
	case "container":
		// As the only process of a cgroup that is the root of its own
		// cgroup namespace and mount, as in a container.
		if err := remountCgroup2(); err != nil {
			fmt.Println(err)
			return 1
		}
		return container()
	default:
		fmt.Printf("unknown helper mode %q\n", mode)
		return 2
	}
	return 0
}

// remount changes the flags of the mount holding this process's memory
// cgroup, in a private mount namespace.
func remount(flags uintptr) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	g, err := cgroup.Self()
	if err != nil {
		return err
	}
	if err := unix.Mount("", g.Mount, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", g.Mount, err)
	}
	return nil
}

// remountCgroup2 mounts a cgroup2 hierarchy whose root is this process's
// cgroup namespace, over /sys/fs/cgroup in a private mount namespace.
func remountCgroup2() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// The same hierarchy cannot be mounted on itself: the old mount goes.
	if err := unix.Unmount("/sys/fs/cgroup", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount /sys/fs/cgroup: %w", err)
	}
	if err := unix.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, ""); err != nil {
		return fmt.Errorf("mount cgroup2: %w", err)
	}
	return nil
}

// container makes a cgroup with a limit from inside a container-like
// namespace, checks that a process in it sees the limit, and that removing
// it returns this process to where it was.
func container() int {
	before, _ := os.ReadFile("/proc/self/cgroup")
	c, err := cgrouptest.Make("oomguard-helper", 64*mib)
	if err != nil {
		fmt.Println(err)
		return 3
	}
	during, _ := os.ReadFile("/proc/self/cgroup")
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	where := c.Command(exe, "-test.run=^$")
	where.Env = append(os.Environ(), helperEnv+"=where")
	out, err := where.Output()
	if err == nil {
		var l cgroup.Limit
		if l, err = c.Limit(); err == nil && l.Bytes != 64*mib {
			err = fmt.Errorf("limit %+v, want 64 MiB", l)
		}
	}
	rerr := c.Remove()
	after, _ := os.ReadFile("/proc/self/cgroup")
	left, _ := filepath.Glob("/sys/fs/cgroup/*/cgroup.procs")
	fmt.Printf("before %q during %q child %q after %q left %q\n", before, during, out, after, left)
	if err != nil || rerr != nil {
		fmt.Println(err, rerr)
		return 1
	}
	return 0
}

// helperCommand returns a command running this test binary as the helper
// mode, in c where c is not nil.
func helperCommand(t *testing.T, mode string, c *cgrouptest.Child) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	if c != nil {
		cmd = c.Command(exe, "-test.run=^$")
	}
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	return cmd
}

// runHelper runs the helper and returns its output and exit code.
func runHelper(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("helper: %v", err)
	}
	return strings.TrimSpace(string(out)), cmd.ProcessState.ExitCode()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestNewSetsTheLimitAndRunsProcessesInside(t *testing.T) {
	c := cgrouptest.New(t, 64*mib)
	file := "memory.max"
	if c.Version == 1 {
		file = "memory.limit_in_bytes"
	}
	if got := readFile(t, filepath.Join(c.Dir, file)); got != strconv.Itoa(64*mib) {
		t.Errorf("%s = %s, want %d", file, got, 64*mib)
	}
	out, code := runHelper(t, helperCommand(t, "where", c))
	rel := strings.TrimPrefix(c.Dir, c.Mount)
	if code != 0 || !strings.Contains(out, ":"+rel+"\n") && !strings.HasSuffix(out, ":"+rel) {
		t.Errorf("a process started by Command is in\n%s\nwant %s", out, rel)
	}
	if err := c.SetLimit(32 * mib); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(c.Dir, file)); got != strconv.Itoa(32*mib) {
		t.Errorf("after SetLimit: %s = %s, want %d", file, got, 32*mib)
	}
}

func TestNewInEnablesMemoryInTheParent(t *testing.T) {
	parent := cgrouptest.New(t, 128*mib)
	child := cgrouptest.NewIn(t, parent, 0)
	if filepath.Dir(child.Dir) != parent.Dir {
		t.Fatalf("child %s is not below %s", child.Dir, parent.Dir)
	}
	if parent.Version == 2 {
		if ctrl := readFile(t, filepath.Join(parent.Dir, "cgroup.subtree_control")); !strings.Contains(ctrl, "memory") {
			t.Errorf("parent's cgroup.subtree_control = %q, want memory enabled", ctrl)
		}
		if got := readFile(t, filepath.Join(child.Dir, "memory.max")); got != "max" {
			t.Errorf("child's memory.max = %s, want max", got)
		}
	}
	l, err := child.Limit()
	if err != nil || l.Bytes != 128*mib || l.Dir != parent.Dir {
		t.Errorf("child's limit = %+v, %v; want 128 MiB from %s", l, err, parent.Dir)
	}
	if err := child.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(child.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Remove: %v", child.Dir, err)
	}
}

func TestRemoveKillsWhatRuns(t *testing.T) {
	c := cgrouptest.New(t, 64*mib)
	cmd := helperCommand(t, "block", c)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := io.ReadAll(io.LimitReader(stdout, 6)); string(line) != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if pids := c.Procs(); len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Errorf("Procs = %v, want [%d]", pids, cmd.Process.Pid)
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("helper ended with %v, want killed", err)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Remove: %v", c.Dir, err)
	}
}

// TestContainerMovesItselfIntoALeaf runs the rig as the only process of a
// cgroup that is the root of its cgroup namespace, as a test binary run as
// a container's only process is. On v2 that cgroup cannot enable memory for
// children while the process is in it: the rig moves the process into a
// leaf, and back when the cgroup it made is removed.
func TestContainerMovesItselfIntoALeaf(t *testing.T) {
	outer := cgrouptest.New(t, 0)
	if outer.Version != 2 {
		t.Skip("cgroup v1 makes children of populated cgroups: no leaf needed")
	}
	cmd := helperCommand(t, "container", outer)
	cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWCGROUP | syscall.CLONE_NEWNS
	out, code := runHelper(t, cmd)
	t.Logf("helper: %s", out)
	if code != 0 {
		t.Fatalf("helper exited %d", code)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	for _, want := range []string{
		`before "0::/\n"`,
		`during "0::/oomguard-self-` + pid + `\n"`,
		`child "0::/oomguard-helper\n"`,
		`after "0::/\n"`,
		`left []`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("helper said %s\nwant %s", out, want)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(outer.Dir, "*", "cgroup.procs")); len(entries) != 0 {
		t.Errorf("cgroups left in %s: %v", outer.Dir, entries)
	}
}

func TestErrorWithoutRootSaysWhatIsNeeded(t *testing.T) {
	cgrouptest.New(t, 0) // skips where root could not either
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The helper must be executable by nobody.
	dir, err := os.MkdirTemp("", "cgrouptest-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "helper")
	copyFile(t, exe, bin)
	cmd := helperCommand(t, "make", nil)
	cmd.Path, cmd.Args[0] = bin, bin
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, code := runHelper(t, cmd)
	assertOneLineError(t, out, code, "needs root")
}

func TestErrorOnReadOnlyCgroupfsSaysWhatIsNeeded(t *testing.T) {
	cgrouptest.New(t, 0)
	cmd := helperCommand(t, "readonly", nil)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	out, code := runHelper(t, cmd)
	assertOneLineError(t, out, code, "read-only")
}

func assertOneLineError(t *testing.T, out string, code int, want string) {
	t.Helper()
	t.Logf("helper: %s", out)
	if code != 3 {
		t.Fatalf("helper exited %d, want 3 (Make failed)", code)
	}
	if strings.Contains(out, "\n") || !strings.Contains(out, want) {
		t.Errorf("error %q: want one line saying %q", out, want)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestLimitCPUMovesTheProcessUnderAQuota: a running process goes under the
// quota by its pid, and Remove kills it and removes the cpu cgroup too.
func TestLimitCPUMovesTheProcessUnderAQuota(t *testing.T) {
	c := cgrouptest.New(t, 64*mib)
	for _, bad := range []float64{0, -1, 0.001} {
		if err := c.LimitCPU(bad); err == nil {
			t.Errorf("LimitCPU(%v) did not fail", bad)
		}
	}
	cmd := helperCommand(t, "block", c)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	if line, err := io.ReadAll(io.LimitReader(stdout, 6)); string(line) != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := c.LimitCPU(0.2); err != nil {
		t.Fatal(err)
	}
	// Where the helper's cpu controller puts it, and that cgroup's quota.
	cpuDir := c.Dir
	if c.Version == 1 {
		self := readFile(t, fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
		var rel string
		for _, line := range strings.Split(self, "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "cpu") {
				rel = f[2]
			}
		}
		if filepath.Base(rel) != filepath.Base(c.Dir) {
			t.Fatalf("the helper's cgroups are\n%s\nwant its cpu cgroup named %s", self, filepath.Base(c.Dir))
		}
		cpuDir = filepath.Join(filepath.Dir(c.Mount), "cpu", rel)
		quota, period := readFile(t, filepath.Join(cpuDir, "cpu.cfs_quota_us")), readFile(t, filepath.Join(cpuDir, "cpu.cfs_period_us"))
		if quota != "20000" || period != "100000" {
			t.Errorf("cpu.cfs_quota_us %s, cpu.cfs_period_us %s; want 20000, 100000", quota, period)
		}
	} else if got := readFile(t, filepath.Join(c.Dir, "cpu.max")); got != "20000 100000" {
		t.Errorf("cpu.max = %q, want 20000 100000", got)
	}
	if _, ok := c.Throttling(); !ok {
		t.Error("Throttling found no cpu.stat")
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{c.Dir, cpuDir} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Remove: %v", dir, err)
		}
	}
}

// TestNewRemovesWhatADeadTestLeft: New removes the cgroups a test binary
// that died before its cleanups ran left, as one killed by go test's
// -timeout does.
func TestNewRemovesWhatADeadTestLeft(t *testing.T) {
	cgrouptest.New(t, 0) // skips where cgroups cannot be made
	gone := helperCommand(t, "where", nil)
	if _, err := gone.Output(); err != nil {
		t.Fatal(err)
	}
	left, err := cgrouptest.Make(fmt.Sprintf("oomguard-test-%d-1", gone.Process.Pid), 16*mib)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := left.Remove(); err != nil {
			t.Error(err)
		}
	})
	cgrouptest.New(t, 0)
	if _, err := os.Stat(left.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s, a dead test binary's cgroup, is still there (stat: %v)", left.Dir, err)
	}
}

// TestRemoveStaleLeavesALiveRunsCgroups: RemoveStale removes the cgroups
// a dead process named with its pid, and those named with no pid, but
// not those of a process that still runs, as a second run beside the
// first.
func TestRemoveStaleLeavesALiveRunsCgroups(t *testing.T) {
	cgrouptest.New(t, 0) // skips where cgroups cannot be made
	// The test binary itself, for a process that has exited: a VM's
	// initramfs has no other binary to run.
	gone := helperCommand(t, "where", nil)
	if _, err := gone.Output(); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("oomguard-staletest-%d-", os.Getpid())
	names := map[string]bool{ // name: stale
		fmt.Sprintf("%s%d-a", prefix, os.Getpid()):      false,
		fmt.Sprintf("%s%d-b", prefix, gone.Process.Pid): true,
		prefix + "nopid": true,
	}
	made := map[string]*cgrouptest.Child{}
	for name := range names {
		c, err := cgrouptest.Make(name, 16*mib)
		if err != nil {
			t.Fatal(err)
		}
		made[name] = c
		// Remove releases what Make holds, and tolerates a cgroup gone.
		t.Cleanup(func() {
			if err := c.Remove(); err != nil {
				t.Error(err)
			}
		})
	}
	removed, err := cgrouptest.RemoveStale(prefix)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range made {
		_, statErr := os.Stat(c.Dir)
		if names[name] {
			if !slices.Contains(removed, name) || !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("%s: a dead process's cgroup, not removed (removed %v; stat: %v)", name, removed, statErr)
			}
		} else if statErr != nil || slices.Contains(removed, name) {
			t.Errorf("%s: a live process's cgroup, removed (removed %v; stat: %v)", name, removed, statErr)
		}
	}
}
