package notify_test

// Each source is shown firing on the real kernel (v1 sources on the v1
// host, v2 sources in the cgroup v2 VM of .ci/vm-test) and falling back
// where it is missing or not writable. A helper process, this test binary
// again, makes the memory move inside a cgroup of internal/cgrouptest.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/cgrouptest"
	"github.com/oomguard/oomguard/internal/notify"
)

const (
	mib       = 1 << 20
	helperEnv = "OOMGUARD_NOTIFY_HELPER"
	// fireWithin bounds the wait for a notification: far above what the
	// kernel takes, so that only a notification that never comes fails.
	fireWithin = 30 * time.Second
)

// TestMain runs a helper, or the tests and then checks that Close left no
// goroutine behind.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func helper(mode string) int {
	switch {
	case strings.HasPrefix(mode, "alloc "):
		// Allocate and touch the given MiB, say so, and hold them until
		// stdin closes.
		var n int
		fmt.Sscan(strings.TrimPrefix(mode, "alloc "), &n)
		var keep [][]byte
		for i := 0; i < n; i++ {
			b := make([]byte, mib)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		runtime.KeepAlive(keep)
	case strings.HasPrefix(mode, "readonly "):
		// Start a source with the given mount read-only, print the error.
		mount := strings.TrimPrefix(mode, "readonly ")
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			fmt.Println("make mounts private:", err)
			return 1
		}
		if err := unix.Mount(mount, mount, "", unix.MS_BIND, ""); err != nil {
			fmt.Println("bind:", err)
			return 1
		}
		if err := unix.Mount("", mount, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			fmt.Println("remount read-only:", err)
			return 1
		}
		src := readOnlySource(os.Getenv("OOMGUARD_NOTIFY_TARGET"))
		err := src.Start()
		src.Close()
		fmt.Println(err)
		if errors.Is(err, notify.ErrUnavailable) {
			return 3
		}
	default:
		fmt.Printf("unknown helper mode %q\n", mode)
		return 2
	}
	return 0
}

// starter is a source.
type starter interface {
	Start() error
	Close() error
}

// readOnlySource is the source the "readonly" helper starts on target.
func readOnlySource(target string) starter {
	if strings.HasSuffix(target, "pressure/memory") || strings.HasSuffix(target, "memory.pressure") {
		return &notify.Pressure{Path: target, Stall: 100 * time.Millisecond, Window: time.Second}
	}
	return &notify.Threshold{Dir: target, Bytes: 64 * mib}
}

// startHelper starts the helper mode in c; stdin closing ends it.
func startHelper(t *testing.T, c *cgrouptest.Child, mode string) (io.WriteCloser, *exec.Cmd) {
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
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return stdin, cmd
}

// waitFire waits for a signal on c.
func waitFire(t *testing.T, c <-chan struct{}, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-c:
		return time.Since(start)
	case <-time.After(fireWithin):
		t.Fatalf("%s: no notification within %v", what, fireWithin)
		return 0
	}
}

// assertUnavailable checks that a source fell back with ErrUnavailable.
func assertUnavailable(t *testing.T, src starter, what string) {
	t.Helper()
	err := src.Start()
	src.Close()
	if !errors.Is(err, notify.ErrUnavailable) {
		t.Fatalf("%s: Start = %v, want ErrUnavailable", what, err)
	}
	t.Logf("%s: %v", what, err)
}

// needVersion makes a cgroup and skips, saying why, unless it is of
// version v.
func needVersion(t *testing.T, v cgroup.Version, limit int64, why string) *cgrouptest.Child {
	t.Helper()
	c := cgrouptest.New(t, limit)
	if c.Version != v {
		t.Skipf("%s is cgroup v%d only", why, v)
	}
	return c
}

// readOnlyHelper runs the "readonly" helper on target with mount read-only
// and checks that the source fell back.
func readOnlyHelper(t *testing.T, mount, target string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=readonly "+mount, "OOMGUARD_NOTIFY_TARGET="+target)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	out, _ := cmd.CombinedOutput()
	t.Logf("helper: %s", strings.TrimSpace(string(out)))
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("helper exited %d, want 3 (ErrUnavailable)", code)
	}
	if !strings.Contains(string(out), "read-only") {
		t.Errorf("error %q does not say read-only", out)
	}
}
