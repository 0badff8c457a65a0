//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package profile

import (
	"fmt"
	"os"
)

// openRegular opens the file at path for reading if it is a regular file,
// and returns it with its FileInfo; anything else, a symbolic link
// included, gets an error wrapping errNotRegular. Without O_NOFOLLOW it
// looks before it opens, and refuses a file swapped in between.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	before, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w (mode %v)", path, errNotRegular, before.Mode())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	f, fi, err := checkRegular(f)
	if err == nil && !os.SameFile(before, fi) {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w: replaced while being opened", path, errNotRegular)
	}
	return f, fi, err
}

// checkDirMode does nothing: mode bits do not say who may write in a
// directory here (on Windows, its ACL does).
func checkDirMode(string, os.FileInfo) error { return nil }

// lockDir takes no lock: flock is missing here (see Options.Dir).
func lockDir(string) (*os.File, error) { return nil, nil }
