package guard_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

// The real-cgroup tests run guard/internal/testservice, built once without
// -race (the race detector's shadow memory would be charged to the cgroup),
// as a child process in a memory cgroup. It reports on stdout as JSON lines.

// testServiceEnv names a prebuilt test service to run instead, for where
// there is no Go toolchain (the cgroup v2 VM).
const testServiceEnv = "OOMGUARD_TESTSERVICE"

// helperLine mirrors guard/internal/testservice's Line.
type helperLine struct {
	Kind     string
	Snapshot *guard.Snapshot `json:",omitempty"`
	Level    guard.Level
	Previous guard.Level
	Err      string
	Addr     string
	Latency  time.Duration
	Touch    time.Duration
	Crossed  time.Duration
	At       time.Time
	ForcedGC uint64

	PostMortem *guard.PostMortem
}

// TestMain removes the built test service, then checks that no test left
// a goroutine behind: every Guard a test started was stopped.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// testService returns the path of the built test service.
func testService(t *testing.T) string {
	t.Helper()
	if path := os.Getenv(testServiceEnv); path != "" {
		return path
	}
	buildOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "oomguard-testservice-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "testservice")
		out, err := exec.Command(gobin, "build", "-o", buildPath, "github.com/oomguard/oomguard/guard/internal/testservice").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("building the test service (or set %s): %v", testServiceEnv, buildErr)
	}
	return buildPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// runHelperIn runs the named scenario in child and returns its lines.
func runHelperIn(t *testing.T, child *cgrouptest.Child, scenario string, env ...string) []helperLine {
	t.Helper()
	lines, _ := runServiceStderr(t, child, scenario, env, nil)
	return lines
}

func runService(t *testing.T, child *cgrouptest.Child, scenario string, env []string, during func(first helperLine)) []helperLine {
	t.Helper()
	lines, _ := runServiceStderr(t, child, scenario, env, during)
	return lines
}

// runServiceStderr runs a scenario of the test service in child, and
// returns its lines and its log. during, if set, runs with the service's
// first line, and the service's stdin closes when it returns. It fails the
// test when the process does not exit cleanly or the kernel OOM-killed
// anything in the cgroup.
func runServiceStderr(t *testing.T, child *cgrouptest.Child, scenario string, env []string, during func(first helperLine)) ([]helperLine, string) {
	t.Helper()
	cmd := child.Command(testService(t), scenario)
	cmd.Env = append(os.Environ(), env...)
	kills0, _ := child.ReadOOMKills()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []helperLine
	if during != nil {
		if l, ok := nextLine(t, sc); ok {
			lines = append(lines, l)
			during(l)
		}
	}
	stdin.Close()
	for l, ok := nextLine(t, sc); ok; l, ok = nextLine(t, sc) {
		lines = append(lines, l)
	}
	err = cmd.Wait()
	if kills, _ := child.ReadOOMKills(); kills != kills0 {
		t.Errorf("the kernel OOM-killed %d process(es) in the cgroup", kills-kills0)
	}
	if err != nil {
		t.Fatalf("test service %s: %v\nstderr:\n%s", scenario, err, stderr.String())
	}
	for _, l := range lines {
		if l.Kind == "error" {
			t.Fatalf("test service %s: %s\nstderr:\n%s", scenario, l.Err, stderr.String())
		}
	}
	t.Logf("test service %s log:\n%s", scenario, stderr.String())
	return lines, stderr.String()
}

func nextLine(t *testing.T, sc *bufio.Scanner) (helperLine, bool) {
	for sc.Scan() {
		var l helperLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Errorf("test service line %q: %v", sc.Text(), err)
			continue
		}
		return l, true
	}
	return helperLine{}, false
}

// runUntilKilled runs a scenario of the test service in child that the
// kernel is to OOM-kill, and returns when it died, with its stderr.
func runUntilKilled(t *testing.T, child *cgrouptest.Child, scenario string, env []string) (died time.Time, stderr string) {
	t.Helper()
	cmd := child.Command(testService(t), scenario)
	cmd.Env = append(os.Environ(), env...)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	kills0, _ := child.ReadOOMKills()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		died = time.Now()
		if kills, _ := child.ReadOOMKills(); kills == kills0 || err == nil {
			t.Fatalf("test service %s ended (%v) but the kernel did not OOM-kill it\nstderr:\n%s", scenario, err, errOut.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("test service %s not killed within 2 minutes\nstderr:\n%s", scenario, errOut.String())
	}
	return died, errOut.String()
}
