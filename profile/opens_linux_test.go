package profile

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
	"unsafe"
)

// watchOpens starts recording which files in dirs are opened, and returns a
// function that reports the names opened since, with their directory.
func watchOpens(t *testing.T, dirs ...string) func() []string {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	wds := make(map[int32]string)
	for _, dir := range dirs {
		wd, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_OPEN)
		if err != nil {
			t.Fatalf("inotify watch %s: %v", dir, err)
		}
		wds[int32(wd)] = dir
	}
	return func() []string {
		var opened []string
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if errors.Is(err, syscall.EAGAIN) {
				return opened
			}
			if err != nil {
				t.Fatalf("read inotify: %v", err)
			}
			for b := buf[:n]; len(b) >= syscall.SizeofInotifyEvent; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&b[0]))
				name := b[syscall.SizeofInotifyEvent : syscall.SizeofInotifyEvent+int(ev.Len)]
				if ev.Mask&syscall.IN_ISDIR == 0 {
					opened = append(opened, wds[ev.Wd]+"/"+string(bytes.TrimRight(name, "\x00")))
				}
				b = b[syscall.SizeofInotifyEvent+int(ev.Len):]
			}
		}
	}
}
