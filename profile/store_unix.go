//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package profile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openRegular opens the file at path for reading if it is a regular file,
// and returns it with its FileInfo. It refuses a symbolic link, wherever it
// points, and a FIFO, device, socket or directory with an error wrapping
// errNotRegular: whoever can write in the directory must not choose what
// the store reads or serves. O_NONBLOCK keeps the open of a FIFO from
// waiting for a writer; reads of a regular file ignore it.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, symlinkError(path, err)
	}
	return checkRegular(f)
}

// checkDirMode refuses a directory that group or others may write in.
func checkDirMode(dir string, fi os.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("profile: Options.Dir %q has mode %#o: %w: group or others could plant files in it or swap the store's; run chmod go-w on it", dir, perm, ErrUnsafeDir)
	}
	return nil
}

// lockDir takes an exclusive flock on the lock file in dir without waiting,
// and returns the file that holds it, or nil where dir lets this process
// neither create the file nor open one already there (see Options.Dir).
// The lock belongs to the open file, so two Stores in one process exclude
// each other as two processes do.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	flags := os.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK
	f, err := os.OpenFile(path, flags|os.O_CREATE, 0o600)
	if errors.Is(err, unix.EROFS) || errors.Is(err, fs.ErrPermission) {
		// A process that cannot create a file in dir cannot write,
		// rename or delete one there either: it disturbs no other Store.
		if f, err = os.OpenFile(path, flags, 0); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("profile: lock: %w", symlinkError(path, err))
	}
	if f, _, err = checkRegular(f); err != nil {
		return nil, fmt.Errorf("profile: lock: %w", err)
	}
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) { err = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB) })
		if err == nil {
			err = cerr
		}
	}
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		f.Close()
		return nil, fmt.Errorf("profile: Options.Dir %q: %w, in this process or another (%s is locked)", dir, ErrLocked, lockName)
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("profile: lock %s: %w", path, err)
	}
	return f, nil
}
