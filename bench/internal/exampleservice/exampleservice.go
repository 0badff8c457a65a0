// Package exampleservice builds and runs examples/httpservice for the
// benchmark harnesses (bench/survival, bench/soak): one process, its
// addresses as it prints them, and how it ended.
package exampleservice

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
)

// startTimeout bounds the wait for the service's addresses.
const startTimeout = 15 * time.Second

// Build compiles examples/httpservice into dir and returns the binary's
// path. moduleDir is the root of the oomguard module; "" builds from the
// working directory, which must then be inside it.
func Build(ctx context.Context, moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "httpservice")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/oomguard/oomguard/examples/httpservice")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build examples/httpservice: %w\n%s", err, out)
	}
	return bin, nil
}

// Env is the harness's environment without the variables that would
// change a mode: every mode starts from Go's and the guard's defaults.
func Env() []string {
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

// A Process is one running instance of the example.
type Process struct {
	Addr, DebugAddr string // host:port of the service and of its debug endpoint

	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	exitAt time.Time
	state  *os.ProcessState
}

// Start runs cmd, which must start the example, and waits up to 15s for it
// to print its addresses. Its stderr goes to logPath. A cmd without an
// environment gets Env.
func Start(ctx context.Context, cmd *exec.Cmd, logPath string) (*Process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("service log: %w", err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = logf
	if cmd.Env == nil {
		cmd.Env = Env()
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		p.exitAt = time.Now()
		p.state = cmd.ProcessState
		pw.Close()
		logf.Close()
		close(p.done)
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
		p.Addr, p.DebugAddr = a[0], a[1]
		return p, nil
	case <-p.done:
		code, sigkill := ExitStatus(p.state)
		return nil, &ExitedEarly{Code: code, SIGKILL: sigkill, Log: logPath, State: p.state}
	case <-time.After(startTimeout):
		p.Kill()
		return nil, fmt.Errorf("service printed no addresses within %v; see %s", startTimeout, logPath)
	case <-ctx.Done():
		p.Kill()
		return nil, ctx.Err()
	}
}

// ExitedEarly is the error of a service that exited before it listened:
// killed at start-up, such as by the OOM killer while it filled a cache.
type ExitedEarly struct {
	Code    int
	SIGKILL bool
	Log     string // the service's log
	State   *os.ProcessState
}

func (e *ExitedEarly) Error() string {
	return fmt.Sprintf("service exited before listening (%v); see %s", e.State, e.Log)
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended so far.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitedAt is when the process was seen to exit; zero while it runs.
func (p *Process) ExitedAt() time.Time {
	if !p.Exited() {
		return time.Time{}
	}
	return p.exitAt
}

// State is the process's state once it has exited; nil while it runs.
func (p *Process) State() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.state
}

// Stop asks the service to shut down gracefully, kills it if it has not
// within grace, and returns its exit code and whether SIGKILL ended it. A
// process that already died keeps its own status.
func (p *Process) Stop(grace time.Duration) (code int, sigkill bool) {
	if !p.Exited() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			p.Kill()
		}
	}
	<-p.done
	return ExitStatus(p.state)
}

// Kill kills the process and waits for it to end.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}
