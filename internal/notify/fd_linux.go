package notify

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// unavailable wraps err, which names the file, as ErrUnavailable where it
// means the source is missing or not permitted here.
func unavailable(what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EOPNOTSUPP) {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	return fmt.Errorf("notify: %s: %w", what, err)
}

// readLoop reads f, a non-blocking eventfd or inotify descriptor the
// netpoller waits on, and signals after each read, until f is closed.
func readLoop(f *os.File) func(signal func()) {
	return func(signal func()) {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			signal()
		}
	}
}

// pollLoop waits on fd for events with poll(2) in its own goroutine: the
// netpoller never waits for POLLPRI, which PSI triggers raise. drain, if
// set, consumes readable data so that POLLIN does not repeat; it returns
// false when the peer is gone. wake ends the loop when written.
func pollLoop(fd int, events int16, wake int, drain func() bool) func(signal func()) {
	return func(signal func()) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}, {Fd: int32(wake), Events: unix.POLLIN}}
		for {
			fds[0].Revents, fds[1].Revents = 0, 0
			if _, err := unix.Poll(fds, -1); err != nil {
				if err == unix.EINTR {
					continue
				}
				return
			}
			if fds[1].Revents != 0 {
				return
			}
			r := fds[0].Revents
			if r&events != 0 {
				if drain != nil && !drain() {
					return
				}
				signal()
			}
			if r&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
				return // the trigger or the peer is gone
			}
		}
	}
}

// newWake returns an eventfd that pollLoop's stop writes to.
func newWake() (int, func(), error) {
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, nil, fmt.Errorf("notify: eventfd: %w", err)
	}
	stop := func() {
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		unix.Write(wake, one)
	}
	return wake, stop, nil
}
