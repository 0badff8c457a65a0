//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package profile

import (
	"fmt"
	"os"

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
