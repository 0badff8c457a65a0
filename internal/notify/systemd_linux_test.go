package notify_test

import (
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oomguard/oomguard/internal/notify"
)

// env returns a Getenv for the protocol's two variables.
func env(watch, write string) func(string) string {
	return func(k string) string {
		switch k {
		case notify.WatchEnv:
			return watch
		case notify.WriteEnv:
			return base64.StdEncoding.EncodeToString([]byte(write))
		}
		return ""
	}
}

func TestSystemdFIFOFires(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pressure")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &notify.Systemd{Getenv: env(fifo, "")}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Each write is one notification, and a writer going away is none.
	for i := 0; i < 2; i++ {
		if _, err := w.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		waitFire(t, s.C, "FIFO write")
	}
	w.Close()
}

func TestSystemdSocketFires(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "pressure.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const trigger = "some 200000 2000000"
	s := &notify.Systemd{Getenv: env(sock, trigger)}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(fireWithin))
	got := make([]byte, len(trigger))
	if _, err := conn.Read(got); err != nil || string(got) != trigger {
		t.Fatalf("the manager read %q, %v; want the trigger %q", got, err, trigger)
	}
	if _, err := conn.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	waitFire(t, s.C, "socket message")
}

func TestSystemdPSIFiresOnV2(t *testing.T) {
	c := needVersion(t, 2, 0, "per-cgroup memory.pressure")
	if err := c.SetHigh(32 * mib); err != nil {
		t.Fatal(err)
	}
	s := &notify.Systemd{Getenv: env(filepath.Join(c.Dir, "memory.pressure"), "some 100000 1000000")}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	startHelper(t, c, "alloc 96")
	t.Logf("fired %v after the helper started", waitFire(t, s.C, "PSI trigger from $MEMORY_PRESSURE_WRITE"))
}

func TestSystemdUnavailable(t *testing.T) {
	assertUnavailable(t, &notify.Systemd{Getenv: env("", "")}, "unset")
	assertUnavailable(t, &notify.Systemd{Getenv: env("/dev/null", "")}, "off")
	assertUnavailable(t, &notify.Systemd{Getenv: env(filepath.Join(t.TempDir(), "none"), "")}, "missing")
}
