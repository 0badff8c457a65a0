package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// buildService compiles examples/httpservice into dir and returns the
// binary's path. moduleDir is the root of the oomguard module.
func buildService(ctx context.Context, moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "httpservice")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/httpservice")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build examples/httpservice: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the oomguard module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}

// A service is one running instance of the example.
type service struct {
	Addr, DebugAddr string

	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	exitAt time.Time
	state  *os.ProcessState
}

// startService runs cmd, which must start the example, and waits for it to
// print its addresses. Its stderr goes to logPath.
func startService(ctx context.Context, cmd *exec.Cmd, logPath string) (*service, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("service log: %w", err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = logf
	cmd.Env = serviceEnv()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	s := &service{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		s.exitAt = time.Now()
		s.state = cmd.ProcessState
		pw.Close()
		logf.Close()
		close(s.done)
	}()

	addrs := make(chan [2]string, 1)
	go func() {
		var a [2]string
		sc := bufio.NewScanner(pr)
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
		io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addrs:
		s.Addr, s.DebugAddr = a[0], a[1]
		return s, nil
	case <-s.done:
		code, sigkill := exitStatus(s.state)
		return nil, &exitedEarly{code: code, sigkill: sigkill, oomKills: -1, log: logPath, state: s.state}
	case <-time.After(15 * time.Second):
		s.kill()
		return nil, fmt.Errorf("service printed no addresses within 15s; see %s", logPath)
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	}
}

// exitedEarly is the error of a service that exited before it listened:
// killed at start-up, such as by the OOM killer while it filled a cache.
type exitedEarly struct {
	code     int
	sigkill  bool
	oomKills int64 // the cgroup's count, filled in by launch; -1 unknown
	log      string
	state    *os.ProcessState
}

func (e *exitedEarly) Error() string {
	return fmt.Sprintf("service exited before listening (%v); see %s", e.state, e.log)
}

// serviceEnv is the harness's environment without the variables that would
// change a mode: every mode starts from Go's and the guard's defaults.
func serviceEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "GOMEMLIMIT", name == "GOGC", name == "AUTOMEMLIMIT", name == "GODEBUG",
			name == "OOMGUARD", strings.HasPrefix(name, "OOMGUARD_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

// exited reports whether the process has ended on its own so far.
func (s *service) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop asks the service to shut down gracefully, kills it if it has not
// within grace, and returns its exit code and whether SIGKILL ended it. A
// process that already died keeps its own status.
func (s *service) stop(grace time.Duration) (code int, sigkill bool) {
	if !s.exited() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(grace):
			s.kill()
		}
	}
	<-s.done
	return exitStatus(s.state)
}

func (s *service) kill() {
	s.cmd.Process.Kill()
	<-s.done
}
