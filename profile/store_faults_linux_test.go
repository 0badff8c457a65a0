package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of the given size on a new directory for the
// rest of the test, or skips the test where that is not possible.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0700,size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// checkIntact checks that the store lists exactly want, that each profile
// holds what was written, and that no temporary file is left.
func checkIntact(t *testing.T, s *Store, dir string, want []Meta, content map[string][]byte) {
	t.Helper()
	if got := s.List(); !slices.Equal(got, want) {
		t.Errorf("List() = %+v\nwant %+v", got, want)
	}
	checkDir(t, s, dir, want)
	for _, m := range want {
		got, err := os.ReadFile(filepath.Join(dir, m.Name))
		if err != nil {
			t.Error(err)
		} else if !bytes.Equal(got, content[m.Name]) {
			t.Errorf("%s changed: %d bytes, want %d", m.Name, len(got), len(content[m.Name]))
		}
	}
}

func TestWriteReadOnlyDir(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	s := openStore(t, Options{Dir: dir, MinInterval: -1})
	var kept []Meta
	content := map[string][]byte{}
	for i := range 2 {
		b := payload(i, 10<<10)
		m, err := s.WriteFrom(Meta{Reason: fmt.Sprint(i)}, writeBytes(b))
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, m)
		content[m.Name] = b
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount %s read-only: %v", dir, err)
	}

	for _, write := range []struct {
		name string
		do   func() (Meta, error)
	}{
		{"Write", func() (Meta, error) { return s.Write(Meta{}) }},
		{"WriteFrom", func() (Meta, error) { return s.WriteFrom(Meta{}, writeBytes(payload(9, 100))) }},
	} {
		if _, err := write.do(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s in a read-only directory: error = %v, want EROFS", write.name, err)
		}
	}
	if st := s.Stats(); st.Failed != 2 || st.Written != 2 {
		t.Errorf("Stats() = %+v, want 2 written, 2 failed", st)
	}
	checkIntact(t, s, dir, kept, content)

	// A read-only directory can still be opened and served, with its lock
	// file or without one.
	s.Close()
	for _, lock := range []bool{true, false} {
		if !lock {
			remount := func(flags uintptr) {
				if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|flags, ""); err != nil {
					t.Fatalf("remount %s: %v", dir, err)
				}
			}
			remount(0)
			if err := os.Remove(filepath.Join(dir, lockName)); err != nil {
				t.Fatal(err)
			}
			remount(syscall.MS_RDONLY)
		}
		s = openStore(t, Options{Dir: dir})
		checkIntact(t, s, dir, kept, content)
		if w := serve(Handler(s), "GET", "/heap/latest"); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), content[kept[1].Name]) {
			t.Errorf("GET /heap/latest from a read-only directory (lock file %v): %d, %d bytes", lock, w.Code, w.Body.Len())
		}
		if lock {
			if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
				t.Errorf("second Open of a read-only directory with its lock file: error %v, want ErrLocked", err)
			}
		}
		s.Close()
	}
}

func TestWriteFullDir(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	s := openStore(t, Options{Dir: dir, MinInterval: -1, MaxCount: 1000, MaxBytes: 1 << 30})
	var kept []Meta
	content := map[string][]byte{}
	var err error
	for i := 0; err == nil; i++ {
		if i == 100 {
			t.Fatal("100 writes of 100 KiB fit in a 1 MiB tmpfs")
		}
		b := payload(i, 100<<10)
		var m Meta
		if m, err = s.WriteFrom(Meta{Reason: fmt.Sprint(i)}, writeBytes(b)); err == nil {
			kept = append(kept, m)
			content[m.Name] = b
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the directory: error = %v, want ENOSPC", err)
	}
	if len(kept) == 0 {
		t.Fatal("not even one profile fitted")
	}
	// Fill the last pages, and a real heap profile, however small, fails
	// the same way.
	filler := filepath.Join(dir, "filler")
	fillUp(t, filler)
	if _, err := s.Write(Meta{}); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Write into a full directory: error = %v, want ENOSPC", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Failed != 2 || st.Written != int64(len(kept)) {
		t.Errorf("Stats() = %+v, want %d written, 2 failed", st, len(kept))
	}
	checkIntact(t, s, dir, kept, content)

	// Only complete profiles are listed and served.
	h := Handler(s)
	for _, m := range kept {
		if w := serve(h, "GET", "/heap/"+m.Name); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), content[m.Name]) {
			t.Errorf("GET /heap/%s: %d, %d bytes", m.Name, w.Code, w.Body.Len())
		}
	}
}

// fillUp writes the file at path until its file system is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4<<10)
	for {
		if _, err := f.Write(page); errors.Is(err, syscall.ENOSPC) {
			return
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteFullDirSidecar fills a directory so that a profile fits but its
// metadata file does not.
func TestWriteFullDirSidecar(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	s := openStore(t, Options{Dir: dir, MinInterval: -1})
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	page := int(fs.Bsize)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, int(fs.Bavail)*page-page), 0o600); err != nil {
		t.Fatal(err)
	}
	var writeErr error
	_, err := s.WriteFrom(Meta{}, func(w io.Writer) error {
		_, writeErr = w.Write(payload(0, page))
		return writeErr
	})
	if writeErr != nil {
		t.Skipf("the one free page did not take a page of profile: %v", writeErr)
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteFrom with room for the profile only: error = %v, want ENOSPC", err)
	}
	names, _ := dirFiles(t, dir)
	if !slices.Equal(names, []string{"filler"}) {
		t.Errorf("files left in the directory: %q, want only the filler", names)
	}
	if st := s.Stats(); st.Failed != 1 {
		t.Errorf("Stats().Failed = %d, want 1", st.Failed)
	}
	// Once there is room again, writes work.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteFrom(Meta{}, writeBytes(payload(0, page))); err != nil {
		t.Errorf("WriteFrom after freeing space: %v", err)
	}
}
