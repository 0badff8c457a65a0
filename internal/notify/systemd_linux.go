package notify

import (
	"encoding/base64"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Systemd signals when the service manager says memory is short, as
// $MEMORY_PRESSURE_WATCH and $MEMORY_PRESSURE_WRITE tell: a PSI file to
// write the base64-decoded trigger to and poll for POLLPRI, a FIFO to
// poll for POLLIN, or an AF_UNIX socket to connect to, write the trigger
// to and poll for POLLIN. Unset, or /dev/null (systemd's "off"), Start
// returns ErrUnavailable.
type Systemd struct {
	// Getenv reads the variables; os.Getenv when nil.
	Getenv func(string) string
	watcher
}

// Start reads the variables and starts watching.
func (s *Systemd) Start() error {
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	path := getenv(WatchEnv)
	switch path {
	case "":
		return fmt.Errorf("%w: systemd memory pressure: $%s is not set", ErrUnavailable, WatchEnv)
	case "/dev/null":
		return fmt.Errorf("%w: systemd memory pressure: $%s is /dev/null (off)", ErrUnavailable, WatchEnv)
	}
	trigger, err := base64.StdEncoding.DecodeString(getenv(WriteEnv))
	if err != nil {
		return fmt.Errorf("notify: $%s %q: %w", WriteEnv, getenv(WriteEnv), err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return unavailable("systemd memory pressure", &os.PathError{Op: "stat", Path: path, Err: err})
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		return s.startSocket(path, trigger)
	case unix.S_IFIFO:
		return s.startFIFO(path)
	default:
		return s.startTrigger(path, trigger)
	}
}

// startFIFO polls a FIFO the manager writes to. It is opened read-write
// so that it never reads as hung up between writers.
func (s *Systemd) startFIFO(path string) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return unavailable("systemd memory pressure", &os.PathError{Op: "open", Path: path, Err: err})
	}
	return s.startRead(fd)
}

// startSocket connects to the manager's socket and writes the trigger.
func (s *Systemd) startSocket(path string, trigger []byte) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("notify: socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return unavailable("systemd memory pressure", &os.PathError{Op: "connect", Path: path, Err: err})
	}
	if len(trigger) > 0 {
		if _, err := unix.Write(fd, trigger); err != nil {
			unix.Close(fd)
			return fmt.Errorf("notify: write the trigger to %s: %w", path, err)
		}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	return s.startRead(fd)
}

// startRead polls fd for POLLIN and drains what arrives; a closed peer
// ends the source.
func (s *Systemd) startRead(fd int) error {
	wake, stop, err := newWake()
	if err != nil {
		unix.Close(fd)
		return err
	}
	buf := make([]byte, 512)
	drain := func() bool {
		for {
			n, err := unix.Read(fd, buf)
			if n == 0 && err == nil {
				return false
			}
			if err != nil {
				return err == unix.EAGAIN
			}
		}
	}
	s.run(pollLoop(fd, unix.POLLIN, wake, drain), stop, func() {
		unix.Close(fd)
		unix.Close(wake)
	})
	return nil
}
