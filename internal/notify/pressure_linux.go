package notify

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Pressure signals when tasks stalled on memory for at least Stall within
// any Window, through a PSI trigger written to a memory.pressure file (a v2
// cgroup's, or /proc/pressure/memory for the whole machine). The kernel
// raises POLLPRI on the file, at most once per window.
type Pressure struct {
	Path string // memory.pressure of a v2 cgroup, or /proc/pressure/memory
	// Full counts the time all tasks stalled at once; otherwise ("some")
	// the time at least one did.
	Full          bool
	Stall, Window time.Duration
	watcher
}

// Start writes the trigger and starts watching. The kernel takes windows
// of 500ms to 10s; since Linux 6.4 one written without CAP_SYS_RESOURCE
// must be a multiple of 2s.
func (p *Pressure) Start() error {
	if p.Window < 500*time.Millisecond || p.Window > 10*time.Second || p.Stall <= 0 || p.Stall > p.Window {
		return fmt.Errorf("notify: PSI trigger of %v stall in %v: want a window of 500ms to 10s and a stall within it", p.Stall, p.Window)
	}
	kind := "some"
	if p.Full {
		kind = "full"
	}
	// /proc/pressure/memory replaces the last byte written with NUL: the
	// trigger must end in a byte to spare.
	trigger := fmt.Sprintf("%s %d %d\n", kind, p.Stall.Microseconds(), p.Window.Microseconds())
	return p.startTrigger(p.Path, []byte(trigger))
}

// startTrigger opens path, writes the trigger and polls for POLLPRI.
func (w *watcher) startTrigger(path string, trigger []byte) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return unavailable("PSI trigger", &os.PathError{Op: "open", Path: path, Err: err})
	}
	if _, err := unix.Write(fd, trigger); err != nil {
		unix.Close(fd)
		if err == unix.EINVAL {
			return fmt.Errorf("notify: PSI trigger %q to %s: %w", trigger, path, err)
		}
		return unavailable("PSI trigger", &os.PathError{Op: "write", Path: path, Err: err})
	}
	wake, stop, err := newWake()
	if err != nil {
		unix.Close(fd)
		return err
	}
	w.run(pollLoop(fd, unix.POLLPRI, wake, nil), stop, func() {
		unix.Close(fd) // destroys the trigger
		unix.Close(wake)
	})
	return nil
}
