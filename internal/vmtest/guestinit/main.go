//go:build linux

// Command guestinit is /init of the cgroup v2 test VM: it mounts what the
// tests need, with cgroup2 at /sys/fs/cgroup and the memory controller on,
// runs each step of the plan in a leaf cgroup of its own, reports over the
// second serial port (the first carries the kernel's console), and powers
// the VM off. It must be built static (CGO_ENABLED=0): the initramfs has no
// libc.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/oomguard/oomguard/internal/vmtest"
)

const cgroupRoot = "/sys/fs/cgroup"

func main() {
	out := openOutput()
	err := run(out)
	if err != nil {
		fmt.Fprintln(out, "guestinit:", err)
	}
	fmt.Fprintln(out, vmtest.DoneLine)
	out.Sync()
	unix.Sync()
	// QEMU runs with -no-reboot: a restart ends it.
	unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}

// openOutput opens the second serial port, raw so that lines end in "\n"
// alone; the console if there is none.
func openOutput() *os.File {
	mountAll() // devtmpfs holds the ports; errors are reported by run
	f, err := os.OpenFile("/dev/ttyS1", os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return os.Stdout
	}
	if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
		t.Oflag &^= unix.OPOST
		unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
	}
	return f
}

var mountErr error

func mountAll() {
	for _, m := range []struct{ src, dir, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"cgroup2", cgroupRoot, "cgroup2"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.src, m.dir, m.fstype, 0, ""); err != nil {
			mountErr = errors.Join(mountErr, fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err))
		}
	}
}

func run(out *os.File) error {
	if mountErr != nil {
		return mountErr
	}
	// Every controller the root offers, memory first among them.
	ctrl, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
	if err != nil {
		return err
	}
	for _, c := range strings.Fields(string(ctrl)) {
		if err := os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil {
			return fmt.Errorf("enable %s: %w", c, err)
		}
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	os.MkdirAll("/etc", 0o755)
	os.WriteFile("/etc/hosts", []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644)
	os.MkdirAll("/root", 0o700)

	b, err := os.ReadFile(vmtest.PlanPath)
	if err != nil {
		return err
	}
	var plan vmtest.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		return fmt.Errorf("%s: %w", vmtest.PlanPath, err)
	}
	go stalls.watch()
	var uname unix.Utsname
	unix.Uname(&uname)
	clock, _ := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	fmt.Fprintf(out, "%s kernel %s, clocksource %s, cgroup2 controllers: %s\n", vmtest.ReadyLine,
		unix.ByteSliceToString(uname.Release[:]), strings.TrimSpace(string(clock)), strings.TrimSpace(string(ctrl)))
	for i, s := range plan.Steps {
		runStep(out, i, s)
		reap()
	}
	return nil
}

// runStep runs one step in the leaf cgroup oomguard-vm-<i>, then checks
// that it removed every cgroup it made.
func runStep(out *os.File, i int, s vmtest.Step) {
	fmt.Fprintln(out, vmtest.StartLine(s.Name))
	stalls.reset()
	start := time.Now()
	code, note := -1, ""
	leaf := filepath.Join(cgroupRoot, fmt.Sprintf("oomguard-vm-%d", i))
	err := func() error {
		if err := os.Mkdir(leaf, 0o755); err != nil {
			return err
		}
		dir, err := os.Open(leaf)
		if err != nil {
			return err
		}
		defer dir.Close()
		ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, s.Args[0], s.Args[1:]...)
		cmd.Env = append([]string{"PATH=/bin", "HOME=/root", "TMPDIR=/tmp"}, s.Env...)
		cmd.Dir = "/tmp"
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd()), Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		err = cmd.Run()
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			note = fmt.Sprintf("timeout after %v", s.Timeout)
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err == nil:
			code = 0
		default:
			return err
		}
		return nil
	}()
	if err != nil {
		note = oneLine(err.Error())
	}
	if left := leftovers(leaf); len(left) > 0 {
		note = strings.TrimSpace(note + " cgroups left behind: " + strings.Join(left, ","))
		if code == 0 {
			code = 1
		}
	}
	fmt.Fprintln(out, vmtest.EndLine(s.Name, code, time.Since(start), stalls.reset(), note))
}

// leftovers kills what the step left running, removes its leaf and
// returns every cgroup still under the root: the tests must remove what
// they make, and the earlier steps' leaves are gone.
func leftovers(leaf string) []string {
	os.WriteFile(filepath.Join(leaf, "cgroup.kill"), []byte("1"), 0)
	for deadline := time.Now().Add(5 * time.Second); os.Remove(leaf) != nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	var left []string
	filepath.WalkDir(cgroupRoot, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && path != cgroupRoot {
			left = append(left, strings.TrimPrefix(path, cgroupRoot+"/"))
		}
		return nil
	})
	return left
}

// stallWatch measures how long the guest's CPUs stop: a real-time thread
// that wakes every 10ms, ahead of anything the tests run, sees a longer
// gap only when the host did not run the VM. Under emulation on a busy
// host that is what makes latencies in the guest jump.
type stallWatch struct {
	longest atomic.Int64 // nanoseconds, since the last reset
}

var stalls stallWatch

func (w *stallWatch) watch() {
	runtime.LockOSThread()
	param := struct{ priority int32 }{99}
	unix.Syscall(unix.SYS_SCHED_SETSCHEDULER, 0, 1 /* SCHED_FIFO */, uintptr(unsafe.Pointer(&param)))
	const tick = 10 * time.Millisecond
	last := time.Now()
	for {
		time.Sleep(tick)
		now := time.Now()
		if gap := now.Sub(last) - tick; gap > time.Duration(w.longest.Load()) {
			w.longest.Store(int64(gap))
		}
		last = now
	}
}

// reset returns the longest stall since the last reset.
func (w *stallWatch) reset() time.Duration {
	return time.Duration(w.longest.Swap(0))
}

// reap collects the zombies that steps left to init.
func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// loopbackUp brings up lo: the tests serve and call over 127.0.0.1.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
