package guard_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard"
)

// TestStatusPageInChromium renders the guard's status page in headless
// Chromium after a climb with heap profiles, and checks what a person would
// see there. It runs only where OOMGUARD_CHROMIUM names the Chromium
// binary: .ci/check-status-page runs it.
//
// It first runs the test binary again as a child that climbs to High
// through leakInPreviousRun and is killed there, as the kernel would,
// leaving its state record and profiles in a directory. It then starts a
// guard on the same directory, serves a guarded handler under light load,
// idles, and climbs past High through leakInThisRun. Headless Chromium
// renders /debug/guard/, and the DOM must show:
//   - the working-set line of the memory chart with at least
//     chromiumMinPoints points;
//   - the top-growth table naming leakInThisRun;
//   - the post-mortem saying the previous run was likely OOM-killed, naming
//     leakInPreviousRun.
//
// OOMGUARD_CHROMIUM_SCREENSHOT names a file to save a PNG of the page in, to
// look at; OOMGUARD_CHROMIUM_SERVE, a duration, keeps serving the page that
// long after the checks, to look at it by hand.
func TestStatusPageInChromium(t *testing.T) {
	if dir := os.Getenv(chromiumChildEnv); dir != "" {
		fmt.Fprintln(os.Stderr, "previous run:", previousRun(dir))
		os.Exit(2)
	}
	chromium := os.Getenv("OOMGUARD_CHROMIUM")
	if chromium == "" {
		t.Skip("set OOMGUARD_CHROMIUM to the Chromium binary to render the status page (.ci/check-status-page)")
	}
	defer func() { leaked = nil }()
	dir := t.TempDir()

	t.Log("a previous run climbs to High and is killed")
	if err := killedPreviousRun(dir); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := guard.Start(ctx, chromiumConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	if pm := g.PostMortem(); pm == nil || !pm.LikelyOOMKilled {
		t.Fatalf("post-mortem %+v, want the previous run likely OOM-killed", pm)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
	mux.Handle("/work", g.Middleware(http.HandlerFunc(chromiumWork)))
	srv := &http.Server{Handler: mux}
	go srv.Serve(lis)
	defer srv.Close()
	base := "http://" + lis.Addr().String()
	page := base + "/debug/guard/"

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loadWork(ctx, client, base+"/work", i%2 == 0)
		}()
	}

	t.Logf("serving %s; idle %v, then a climb over %v", page, chromiumIdle, chromiumClimb)
	time.Sleep(chromiumIdle)
	s := g.Snapshot()
	target := int64(0.88 * float64(s.Limit))
	step := int64(1 << 20)
	pause := time.Duration(float64(chromiumClimb) * float64(step) / float64(max(target-s.Usage, step)))
	for g.Snapshot().Usage < target {
		leakInThisRun(int(step))
		time.Sleep(pause)
	}
	// A GC cycle, as the GC runs near GOMEMLIMIT, so that the newest
	// profile (its pair, written after it) shows the whole climb; then a
	// few seconds more of history at the top.
	n := g.Snapshot().ProfilesWritten
	runtime.GC()
	deadline := time.Now().Add(15 * time.Second)
	for (g.Snapshot().ProfilesWritten <= n || climbProfiles(g) < 2) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	s = g.Snapshot()
	t.Logf("at %s: %.1f MiB of %.1f MiB, %d profiles written", s.Level, float64(s.Usage)/(1<<20), float64(s.Limit)/(1<<20), s.ProfilesWritten)

	dom, err := renderInChromium(ctx, chromium, page, "--dump-dom")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := domPathPoints(dom, "series ws"); err != nil || n < chromiumMinPoints {
		t.Errorf("the working-set line has %d points, want at least %d (%v)", n, chromiumMinPoints, err)
	} else {
		t.Logf("ok: the working-set line has %d points", n)
	}
	if row, err := domFirstRow(dom, `id="top-growth"`); err != nil || !strings.Contains(row, "guard_test.leakInThisRun") {
		t.Errorf("the top-growth table's first row is %q, want guard_test.leakInThisRun (%v)", row, err)
	} else {
		t.Logf("ok: top growth: %s", row)
	}
	if sec, err := domElement(dom, `id="postmortem"`, "</section>"); err != nil || !strings.Contains(sec, "likely OOM-killed") || !strings.Contains(sec, "guard_test.leakInPreviousRun") {
		t.Errorf("the post-mortem section does not say the previous run was likely OOM-killed, naming guard_test.leakInPreviousRun (%v)", err)
	} else {
		row, _ := domFirstRow(dom, `id="postmortem-growth"`)
		t.Logf("ok: post-mortem: likely OOM-killed; top growth: %s", row)
	}
	if shot := os.Getenv("OOMGUARD_CHROMIUM_SCREENSHOT"); shot != "" {
		path, err := filepath.Abs(shot)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := renderInChromium(ctx, chromium, page, "--screenshot="+path, "--window-size=1200,1600", "--hide-scrollbars"); err != nil {
			t.Fatal(err)
		}
		t.Log("screenshot:", path)
	}
	if v := os.Getenv("OOMGUARD_CHROMIUM_SERVE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("OOMGUARD_CHROMIUM_SERVE: %v", err)
		}
		t.Logf("serving %s for %v", page, d)
		time.Sleep(d)
	}
}

const (
	// chromiumChildEnv makes the test binary the killed previous run, on
	// the directory it names.
	chromiumChildEnv = "OOMGUARD_CHROMIUM_CHILD"
	// chromiumLimit is the guard's Config.Limit.
	chromiumLimit = 128 << 20
	// chromiumIdle is how long the guard serves before the climb, and
	// chromiumClimb how long the climb takes.
	chromiumIdle  = 5 * time.Second
	chromiumClimb = 12 * time.Second
	// chromiumMinPoints is the fewest points the working-set line must have.
	chromiumMinPoints = 15
)

func chromiumConfig(dir string) guard.Config {
	return guard.Config{
		Limit:   chromiumLimit,
		DumpDir: dir,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Classifier: func(r *http.Request) guard.Priority {
			if r.Header.Get("X-Priority") == "sheddable" {
				return guard.PrioritySheddable
			}
			return guard.PriorityDefault
		},
	}
}

// previousRun climbs to High, says "high" once its profiles and state
// record are written, and waits for its parent to kill it: it returns
// only on failure.
func previousRun(dir string) error {
	g, err := guard.Start(context.Background(), chromiumConfig(dir))
	if err != nil {
		return err
	}
	for g.Level() < guard.LevelHigh {
		leakInPreviousRun(1 << 20)
		time.Sleep(20 * time.Millisecond)
	}
	// A heap profile shows the heap as of the last GC cycle, and this
	// climb was too quick for one: a cycle now, as the GC would run near
	// GOMEMLIMIT, and the guard writes its pair profile after it.
	n := g.Snapshot().ProfilesWritten
	runtime.GC()
	deadline := time.Now().Add(10 * time.Second)
	for g.Snapshot().ProfilesWritten <= n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // the state record, once a second at High
	fmt.Println("high")
	time.Sleep(time.Minute)
	return errors.New("not killed")
}

var leaked [][]byte

// leakInPreviousRun is the allocation site the post-mortem must name.
//
//go:noinline
func leakInPreviousRun(n int) { leaked = append(leaked, touch(make([]byte, n))) }

// leakInThisRun is the allocation site the top growth must name.
//
//go:noinline
func leakInThisRun(n int) { leaked = append(leaked, touch(make([]byte, n))) }

// touch writes every page of b, so that it counts in the resident set,
// which the guard measures against Config.Limit.
func touch(b []byte) []byte {
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return b
}

// killedPreviousRun runs the test binary as the previous run on dir and
// kills it once it is at High.
func killedPreviousRun(dir string) error {
	cmd := exec.Command(os.Args[0], "-test.run=^TestStatusPageInChromium$")
	cmd.Env = append(os.Environ(), chromiumChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	said := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		said <- strings.TrimSpace(line)
		io.Copy(io.Discard, out)
	}()
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	select {
	case line := <-said:
		if line != "high" {
			return fmt.Errorf("the previous run said %q, want high", line)
		}
	case <-time.After(60 * time.Second):
		return errors.New("the previous run did not reach High in 60s")
	}
	return nil
}

// climbProfiles counts the profiles written above Normal by this run.
func climbProfiles(g *guard.Guard) int64 {
	if g.Level() == guard.LevelNormal {
		return 0
	}
	return g.Snapshot().ProfilesWritten
}

// chromiumWork is the guarded handler: a little memory held for a little
// while.
func chromiumWork(w http.ResponseWriter, r *http.Request) {
	b := touch(make([]byte, 64<<10))
	time.Sleep(40 * time.Millisecond)
	fmt.Fprintf(w, "ok %d\n", len(b))
}

// loadWork asks for url until ctx is done, backing off when shed.
func loadWork(ctx context.Context, client *http.Client, url string, sheddable bool) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if sheddable {
			req.Header.Set("X-Priority", "sheddable")
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				time.Sleep(200 * time.Millisecond)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// renderInChromium runs headless Chromium on url with args and returns its
// output.
func renderInChromium(ctx context.Context, chromium, url string, args ...string) (string, error) {
	profileDir, err := os.MkdirTemp("", "statuspagecheck-chromium-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(profileDir)
	all := []string{"--headless", "--disable-gpu", "--no-first-run", "--user-data-dir=" + profileDir}
	if os.Geteuid() == 0 {
		all = append(all, "--no-sandbox") // Chromium refuses to run as root with its sandbox
	}
	all = append(append(all, args...), url)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, all...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", chromium, err, stderr.String())
	}
	return string(out), nil
}

// domElement returns the text of dom from the tag holding attr to the first
// end after it.
func domElement(dom, attr, end string) (string, error) {
	i := strings.Index(dom, attr)
	if i < 0 {
		return "", fmt.Errorf("no element with %s in the page", attr)
	}
	start := strings.LastIndexByte(dom[:i], '<')
	j := strings.Index(dom[i:], end)
	if j < 0 {
		return "", fmt.Errorf("the element with %s has no %s", attr, end)
	}
	return dom[start : i+j+len(end)], nil
}

// domPathPoints counts the points of the path whose class is class.
func domPathPoints(dom, class string) (int, error) {
	tag, err := domElement(dom, `class="`+class+`"`, ">")
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(` d="([^"]*)"`).FindStringSubmatch(tag)
	if m == nil {
		return 0, fmt.Errorf("the path %q has no d attribute", class)
	}
	return len(regexp.MustCompile(`[ML]\s*-?[0-9.]+,-?[0-9.]+`).FindAllString(m[1], -1)), nil
}

// domFirstRow returns the text of the first data row of the table holding
// attr: its cells joined by spaces.
func domFirstRow(dom, attr string) (string, error) {
	table, err := domElement(dom, attr, "</table>")
	if err != nil {
		return "", err
	}
	rows := strings.Split(table, "</tr>")
	if len(rows) < 3 { // the header, a row, the rest
		return "", fmt.Errorf("the table with %s has no rows", attr)
	}
	cells := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(strings.ReplaceAll(rows[1], "</td>", " "), "")
	return html.UnescapeString(strings.Join(strings.Fields(cells), " ")), nil
}
