//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mkfifo makes a FIFO at path.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("mkfifo %s: %v", path, err)
	}
}

// swap replaces the file at path with what make puts there.
func swap(t *testing.T, path string, make func(path string)) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	make(path)
}

// notBlocked runs f, which may open the FIFOs in fifos, and fails the test
// if it is still blocked after a minute: an open of a FIFO for reading
// waits for a writer. Opening each FIFO for writing then releases f, so
// that a failing test ends.
func notBlocked(t *testing.T, what string, fifos []string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return
	case <-time.After(time.Minute):
	}
	t.Errorf("%s blocked on a FIFO", what)
	for {
		for _, fifo := range fifos {
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
		}
		select {
		case <-done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestOpenSkipsUntrustedSidecars: a sidecar that is a FIFO, a symbolic
// link or larger than metaMaxBytes costs its profile the metadata, and
// neither blocks Open nor is read.
func TestOpenSkipsUntrustedSidecars(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "profiles")
	s := openStore(t, Options{Dir: dir, MinInterval: -1})
	var names []string
	for i := range 3 {
		m, err := s.WriteFrom(Meta{Reason: "written"}, writeBytes(payload(i, 100)))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m.Name)
	}
	planted := filepath.Join(parent, "planted.json")
	if err := os.WriteFile(planted, []byte(`{"reason":"planted"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	big := append([]byte(`{"reason":"planted"}`), bytes.Repeat([]byte(" "), metaMaxBytes)...)
	side := func(i int) string { return filepath.Join(dir, metaName(names[i])) }
	swap(t, side(0), func(p string) { mkfifo(t, p) })
	swap(t, side(1), func(p string) {
		if err := os.Symlink(planted, p); err != nil {
			t.Fatal(err)
		}
	})
	swap(t, side(2), func(p string) {
		if err := os.WriteFile(p, big, 0o600); err != nil {
			t.Fatal(err)
		}
	})

	s.Close()
	var s2 *Store
	var err error
	notBlocked(t, "Open", []string{side(0)}, func() { s2, err = Open(Options{Dir: dir}) })
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	list := s2.List()
	if len(list) != 3 {
		t.Fatalf("listed %+v, want the three profiles", list)
	}
	for i, m := range list {
		if m.Name != names[i] || m.Reason != "" {
			t.Errorf("profile %d listed as %+v, want %s with no reason: its sidecar is not to be read", i, m, names[i])
		}
	}
}

// TestSwappedFilesAreRefused: a profile or record replaced after Open by a
// symbolic link or a FIFO is refused, neither served nor waited on.
func TestSwappedFilesAreRefused(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "profiles")
	s := openStore(t, Options{Dir: dir, MinInterval: -1})
	var names []string
	for i := range 2 {
		m, err := s.WriteFrom(Meta{}, writeBytes(payload(i, 100)))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m.Name)
	}
	for _, rec := range []string{"link.json", "fifo.json"} {
		if err := s.WriteRecord(rec, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(parent, "secret")
	if err := os.WriteFile(secret, []byte(secretBait), 0o600); err != nil {
		t.Fatal(err)
	}
	link := func(p string) {
		if err := os.Symlink(secret, p); err != nil {
			t.Fatal(err)
		}
	}
	fifos := []string{filepath.Join(dir, names[1]), filepath.Join(dir, "fifo.json")}
	swap(t, filepath.Join(dir, names[0]), link)
	swap(t, filepath.Join(dir, "link.json"), link)
	for _, p := range fifos {
		swap(t, p, func(p string) { mkfifo(t, p) })
	}

	for _, name := range names {
		notBlocked(t, "Store.Open", fifos, func() {
			f, _, err := s.Open(name)
			if err == nil {
				f.Close()
			}
			if !errors.Is(err, errNotRegular) {
				t.Errorf("Open(%s) of a swapped file: error = %v, want errNotRegular", name, err)
			}
		})
		notBlocked(t, "Store.Parse", fifos, func() {
			if _, err := s.Parse(name); !errors.Is(err, errNotRegular) {
				t.Errorf("Parse(%s) of a swapped file: error = %v, want errNotRegular", name, err)
			}
		})
		notBlocked(t, "GET /heap/{name}", fifos, func() {
			w := serve(Handler(s), "GET", "/heap/"+name)
			if w.Code == http.StatusOK || strings.Contains(w.Body.String(), secretBait) {
				t.Errorf("GET /heap/%s of a swapped file: %d %q", name, w.Code, w.Body)
			}
		})
	}
	for _, rec := range []string{"link.json", "fifo.json"} {
		notBlocked(t, "ReadRecord", fifos, func() {
			if b, err := s.ReadRecord(rec); !errors.Is(err, errNotRegular) {
				t.Errorf("ReadRecord(%s) of a swapped file: %q, %v; want errNotRegular", rec, b, err)
			}
		})
	}
}

// TestOpenRefusesUnsafeDir: Open refuses a directory that group or others
// may write in, and a symbolic link in place of the directory, naming the
// path and the mode; one it creates is neither.
func TestOpenRefusesUnsafeDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "profiles")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o700, true}, {0o750, true}, {0o755, true}, {0o500, true},
		{0o770, false}, {0o720, false}, {0o702, false}, {0o777, false}, {0o777 | os.ModeSticky, false},
	} {
		if err := os.Chmod(dir, tc.mode); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Options{Dir: dir})
		if tc.ok {
			if err != nil {
				t.Errorf("Open of a directory of mode %v: %v", tc.mode, err)
			} else {
				s.Close()
			}
			continue
		}
		if s != nil || !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), dir) ||
			!strings.Contains(err.Error(), fmt.Sprintf("%#o", tc.mode.Perm())) {
			t.Errorf("Open of a directory of mode %v: error %v, want ErrUnsafeDir naming %s and its mode", tc.mode, err, dir)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}

	link := filepath.Join(parent, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(Options{Dir: link}); s != nil || !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Open of a symbolic link to a directory: error %v, want ErrUnsafeDir saying it is a symbolic link", err)
	}

	made := filepath.Join(parent, "made", "here")
	openStore(t, Options{Dir: made})
	for _, d := range []string{made, filepath.Dir(made)} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o022 != 0 || perm&0o700 != 0o700 {
			t.Errorf("Open created %s with mode %#o, want 0750 or stricter", d, perm)
		}
	}
}

// TestOpenLocksDir: while one Store has a directory open, another Open of
// it, in the same process too, returns ErrLocked and touches nothing in
// it; after Close it succeeds, and the closed Store writes nothing more.
func TestOpenLocksDir(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, MinInterval: -1})
	if _, err := s.WriteFrom(Meta{}, writeBytes([]byte("one"))); err != nil {
		t.Fatal(err)
	}
	// A write of the first Store under way.
	temp := filepath.Join(dir, tempPrefix+"under-way")
	if err := os.WriteFile(temp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(Options{Dir: dir})
	if s2 != nil || !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open of %s: error %v, want ErrLocked naming the directory", dir, err)
	}
	if _, err := os.Stat(temp); err != nil {
		t.Errorf("the refused Open removed the first Store's temporary file: %v", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.WriteFrom(Meta{}, writeBytes([]byte("two"))); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("WriteFrom after Close: error %v, want fs.ErrClosed", err)
	}
	if err := s.WriteRecord("state.json", []byte("{}")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("WriteRecord after Close: error %v, want fs.ErrClosed", err)
	}
	if n := len(s.List()); n != 1 {
		t.Errorf("after Close, List has %d profiles, want 1", n)
	}
	s2 = openStore(t, Options{Dir: dir})
	if n := len(s2.List()); n != 1 {
		t.Errorf("Open after Close lists %d profiles, want 1", n)
	}
}
