package notify

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Threshold signals each time a v1 memory cgroup's usage crosses Bytes,
// upward or downward, through an eventfd registered in the cgroup's
// cgroup.event_control: the kernel checks thresholds as it charges pages,
// so a crossing is seen at once instead of at the next poll. v2 has no
// such file: Start returns ErrUnavailable there.
type Threshold struct {
	Dir   string // the v1 memory cgroup's directory
	Bytes int64
	watcher
}

// Start registers the threshold and starts watching.
func (t *Threshold) Start() error {
	if t.Bytes <= 0 {
		return fmt.Errorf("notify: threshold of %d bytes: want more than 0", t.Bytes)
	}
	usagePath := filepath.Join(t.Dir, "memory.usage_in_bytes")
	usage, err := os.Open(usagePath)
	if err != nil {
		return unavailable("v1 usage threshold", err)
	}
	// The kernel needs the usage file only to register the event.
	defer usage.Close()
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("notify: eventfd: %w", err)
	}
	ev := os.NewFile(uintptr(efd), "eventfd")
	control := filepath.Join(t.Dir, "cgroup.event_control")
	reg := fmt.Sprintf("%d %d %d", efd, usage.Fd(), t.Bytes)
	if err := os.WriteFile(control, []byte(reg), 0); err != nil {
		ev.Close()
		return unavailable("v1 usage threshold", err)
	}
	// Closing the eventfd unregisters the threshold.
	t.run(readLoop(ev), func() { ev.Close() }, func() {})
	return nil
}
