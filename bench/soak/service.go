package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/oomguard/oomguard/internal/cgrouptest"
)

// service is the example service running in the soak's cgroup.
type service struct {
	addr, debugAddr string
	cmd             *exec.Cmd
	done            chan struct{}
	state           *os.ProcessState
	log             string
}

// startService runs the service in cg with its profiles and log under dir,
// and waits for it to print its addresses.
func startService(ctx context.Context, cg *cgrouptest.Child, bin, dir string) (*service, error) {
	s := &service{done: make(chan struct{}), log: filepath.Join(dir, "service.log")}
	s.cmd = cg.Command(bin, "-mode", "oomguard", "-dump-dir", filepath.Join(dir, "profiles"))
	// A heap profile sample every 4 KiB allocated, not 512: the guard's
	// own heap is tens of KiB, which the default rate sees as 0 or 512.
	s.cmd.Env = append(os.Environ(), "GODEBUG=memprofilerate=4096")
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	addrs := make(chan [2]string, 1)
	go func() {
		var a [2]string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				a[0] = v
			} else if v, ok := strings.CutPrefix(sc.Text(), "debug "); ok {
				a[1] = v
			}
			if a[0] != "" && a[1] != "" {
				addrs <- a
				break
			}
		}
		io.Copy(io.Discard, out)
		s.cmd.Wait()
		s.state = s.cmd.ProcessState
		logf.Close()
		close(s.done)
	}()
	select {
	case a := <-addrs:
		s.addr, s.debugAddr = "http://"+a[0], "http://"+a[1]
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("service exited at start (%v); see its log:\n%s", s.state, readTail(s.log))
	case <-time.After(15 * time.Second):
		s.stop()
		return nil, fmt.Errorf("service printed no addresses within 15s")
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

func (s *service) pid() int { return s.cmd.Process.Pid }

func (s *service) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop ends the service gracefully, or kills it after 15s.
func (s *service) stop() {
	if !s.exited() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
		}
	}
	<-s.done
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4<<10 {
		b = b[len(b)-4<<10:]
	}
	return string(b)
}

func execOutput(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
