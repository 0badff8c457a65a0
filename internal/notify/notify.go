// Package notify delivers the kernel's memory notifications as signals on a
// channel, without cgo: v1 usage thresholds (eventfd through
// cgroup.event_control), v2 memory.events changes (inotify), v2 PSI
// triggers on memory.pressure, and systemd's memory-pressure protocol
// ($MEMORY_PRESSURE_WATCH and $MEMORY_PRESSURE_WRITE).
//
// Each source is optional: Start returns an error wrapping ErrUnavailable
// where the kernel or the service manager does not offer it, or does not
// let this process use it, so that the caller can poll instead. A signal
// says only "look now": signals that arrive while one is pending merge.
package notify

import (
	"errors"
	"sync"
)

// ErrUnavailable is wrapped by every Start error that means the source is
// not offered here: missing, not writable, or not configured.
var ErrUnavailable = errors.New("notify: source unavailable")

// The variables of systemd's memory-pressure protocol (systemd 254 and
// later, MemoryPressureWatch= in systemd.resource-control(5)).
const (
	WatchEnv = "MEMORY_PRESSURE_WATCH"
	WriteEnv = "MEMORY_PRESSURE_WRITE"
)

// watcher is what the sources share: the channel, and one goroutine that
// waits on the kernel until Close.
type watcher struct {
	// C receives a value after each notification, once Start has
	// succeeded. It is never closed.
	C <-chan struct{}

	c       chan struct{}
	done    chan struct{} // closed when the goroutine has returned
	stop    func()        // wakes the goroutine for good
	cleanup func()        // closes what the goroutine used, after it returned
	once    sync.Once
}

// run starts wait in a goroutine; wait returns when stop is called or the
// source ends, calling signal for each notification meanwhile.
func (w *watcher) run(wait func(signal func()), stop, cleanup func()) {
	w.c = make(chan struct{}, 1)
	w.C = w.c
	w.done = make(chan struct{})
	w.stop, w.cleanup = stop, cleanup
	go func() {
		defer close(w.done)
		wait(w.signal)
	}()
}

func (w *watcher) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// Close stops the source and waits for its goroutine; safe to call more
// than once, and on a source whose Start failed.
func (w *watcher) Close() error {
	w.once.Do(func() {
		if w.done == nil {
			return
		}
		w.stop()
		<-w.done
		w.cleanup()
	})
	return nil
}
