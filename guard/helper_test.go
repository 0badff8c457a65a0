package guard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/cgroup"
)

// The tests below run this test binary again as a child process inside a
// real memory cgroup: TestMain sees helperEnv and runs the named helper,
// which reports on stdout as JSON lines.
const helperEnv = "OOMGUARD_TEST_HELPER"

// helperLine is one line a helper prints.
type helperLine struct {
	Kind     string    // "snapshot", "event" or "error"
	Snapshot *Snapshot `json:",omitempty"`
	Level    Level
	Previous Level
	Err      string `json:",omitempty"`
}

func runHelper(name string) {
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	emit := func(l helperLine) { mu.Lock(); enc.Encode(l); mu.Unlock() }
	fail := func(err error) { emit(helperLine{Kind: "error", Err: err.Error()}); os.Exit(2) }

	cfg := Config{Dwell: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	g, err := Start(context.Background(), cfg)
	if err != nil {
		fail(err)
	}
	defer g.Stop()
	g.Subscribe(func(e Event) {
		s := e.Snapshot
		emit(helperLine{Kind: "event", Level: e.Level, Previous: e.Previous, Snapshot: &s})
	})
	snapshot := func() { s := g.Snapshot(); emit(helperLine{Kind: "snapshot", Snapshot: &s}) }

	switch name {
	case "detect":
		snapshot()
	case "heap-steps", "offheap-steps":
		grow := growHeap
		if name == "offheap-steps" {
			grow = growOffHeap
		}
		if err := climbAndRelease(g, grow, snapshot); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown helper %q", name))
	}
	time.Sleep(50 * time.Millisecond) // let the subscriber print
}

// climbAndRelease grows memory in steps until the guard reaches Critical,
// releases it, and waits for Normal.
func climbAndRelease(g *Guard, grow func(n int) (release func()), snapshot func()) error {
	var releases []func()
	deadline := time.Now().Add(time.Minute)
	for g.Level() < LevelCritical {
		if time.Now().After(deadline) {
			return fmt.Errorf("no Critical after a minute: %+v", g.Snapshot())
		}
		releases = append(releases, grow(2<<20))
		time.Sleep(20 * time.Millisecond)
	}
	snapshot()
	time.Sleep(200 * time.Millisecond)
	for _, r := range releases {
		r()
	}
	releases = nil
	runtime.GC()
	debug.FreeOSMemory()
	for deadline = time.Now().Add(30 * time.Second); g.Level() != LevelNormal; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("no Normal 30s after release: %+v", g.Snapshot())
		}
	}
	snapshot()
	return nil
}

// heapHold keeps grown heap reachable until released.
var heapHold [][]byte

// growHeap allocates n bytes on the Go heap and touches every page.
func growHeap(n int) func() {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	heapHold = append(heapHold, b)
	return func() { heapHold = nil }
}

// runHelperIn runs the named helper in child and returns its lines. It fails
// the test when the process does not exit cleanly or the kernel OOM-killed
// anything in the cgroup.
func runHelperIn(t *testing.T, child *cgroup.Child, name string, env ...string) []helperLine {
	t.Helper()
	kills0, _ := child.ReadOOMKills()
	cmd := child.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+name)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := readHelperLines(t, out)
	err = cmd.Wait()
	kills, _ := child.ReadOOMKills()
	if kills != kills0 {
		t.Errorf("the kernel OOM-killed %d process(es) in the cgroup", kills-kills0)
	}
	if err != nil {
		t.Fatalf("helper %s: %v\nstderr:\n%s", name, err, stderr.String())
	}
	for _, l := range lines {
		if l.Kind == "error" {
			t.Fatalf("helper %s: %s\nstderr:\n%s", name, l.Err, stderr.String())
		}
	}
	t.Logf("helper %s log:\n%s", name, stderr.String())
	return lines
}

func readHelperLines(t *testing.T, r io.Reader) []helperLine {
	var lines []helperLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l helperLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Errorf("helper line %q: %v", sc.Text(), err)
			continue
		}
		lines = append(lines, l)
	}
	return lines
}
