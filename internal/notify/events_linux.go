package notify

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Events signals each time a v2 cgroup's memory.events changes: its high,
// max, oom or oom_kill count moved. The kernel reports the change to
// inotify as IN_MODIFY, which needs only read access. v1 has no such file:
// Start returns ErrUnavailable there.
type Events struct {
	Dir string // the v2 cgroup's directory
	// Local watches memory.events.local, the counts of the cgroup itself
	// without its descendants.
	Local bool
	watcher
}

// Start adds the inotify watch and starts watching.
func (e *Events) Start() error {
	name := "memory.events"
	if e.Local {
		name = "memory.events.local"
	}
	path := filepath.Join(e.Dir, name)
	if _, err := os.Stat(path); err != nil {
		return unavailable("v2 memory events", err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("notify: inotify: %w", err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
		f.Close()
		return unavailable("v2 memory events", &os.PathError{Op: "inotify_add_watch", Path: path, Err: err})
	}
	e.run(readLoop(f), func() { f.Close() }, func() {})
	return nil
}
