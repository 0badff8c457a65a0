// Command statuspagecheck renders the guard's status page in headless
// Chromium after a climb with heap profiles, and checks what a person
// would see there. .ci/check-status-page runs it.
//
// It first runs itself as a child that climbs to High through
// leakInPreviousRun and is killed there, as the kernel would, leaving its
// state record and profiles in a directory. It then starts a guard on the
// same directory, serves a guarded handler under light load, idles, and
// climbs past High through leakInThisRun. Headless Chromium renders
// /debug/guard/, and the DOM must show:
//   - the working-set line of the memory chart with at least -min-points
//     points;
//   - the top-growth table naming main.leakInThisRun;
//   - the post-mortem saying the previous run was likely OOM-killed, naming
//     main.leakInPreviousRun.
//
// With -screenshot it also saves a PNG of the page, to look at.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
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
	"time"

	"github.com/oomguard/oomguard/guard"
)

var (
	chromium   = flag.String("chromium", "chromium", "the Chromium binary")
	screenshot = flag.String("screenshot", "", "save a PNG of the page to this file")
	limitMiB   = flag.Int64("limit-mib", 128, "the guard's Config.Limit, in MiB")
	idle       = flag.Duration("idle", 5*time.Second, "how long to serve before the climb")
	climb      = flag.Duration("climb", 12*time.Second, "how long the climb takes")
	minPoints  = flag.Int("min-points", 15, "the fewest points the working-set line must have")
	serve      = flag.Duration("serve", 0, "after the checks, serve the page this long, to look at it by hand")
	child      = flag.String("child", "", "internal: run as the killed previous run on this directory")
)

func main() {
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if *child != "" {
		fmt.Fprintln(os.Stderr, "previous run:", previousRun(*child, log))
		os.Exit(2)
	}
	if err := run(log); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
}

func config(dir string, log *slog.Logger) guard.Config {
	return guard.Config{
		Limit:   *limitMiB << 20,
		DumpDir: dir,
		Logger:  log,
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
func previousRun(dir string, log *slog.Logger) error {
	g, err := guard.Start(context.Background(), config(dir, log))
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

func run(log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "statuspagecheck-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Println("-- a previous run climbs to High and is killed")
	if err := killedRun(dir); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := guard.Start(ctx, config(dir, log))
	if err != nil {
		return err
	}
	defer g.Stop()
	if pm := g.PostMortem(); pm == nil || !pm.LikelyOOMKilled {
		return fmt.Errorf("post-mortem %+v, want the previous run likely OOM-killed", pm)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
	mux.Handle("/work", g.Middleware(http.HandlerFunc(work)))
	srv := &http.Server{Handler: mux}
	go srv.Serve(lis)
	defer srv.Close()
	base := "http://" + lis.Addr().String()
	page := base + "/debug/guard/"

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load(ctx, base+"/work", i%2 == 0)
		}()
	}

	fmt.Printf("-- serving %s; idle %v, then a climb over %v\n", page, *idle, *climb)
	time.Sleep(*idle)
	s := g.Snapshot()
	target := int64(0.88 * float64(s.Limit))
	step := int64(1 << 20)
	pause := time.Duration(float64(*climb) * float64(step) / float64(max(target-s.Usage, step)))
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
	fmt.Printf("-- at %s: %.1f MiB of %.1f MiB, %d profiles written\n", s.Level, mib(s.Usage), mib(s.Limit), s.ProfilesWritten)

	dom, err := render(ctx, page, "--dump-dom")
	if err != nil {
		return err
	}
	var fails []string
	if n, err := pathPoints(dom, "series ws"); err != nil || n < *minPoints {
		fails = append(fails, fmt.Sprintf("the working-set line has %d points, want at least %d (%v)", n, *minPoints, err))
	} else {
		fmt.Printf("ok: the working-set line has %d points\n", n)
	}
	if row, err := firstRow(dom, `id="top-growth"`); err != nil || !strings.Contains(row, "main.leakInThisRun") {
		fails = append(fails, fmt.Sprintf("the top-growth table's first row is %q, want main.leakInThisRun (%v)", row, err))
	} else {
		fmt.Printf("ok: top growth: %s\n", row)
	}
	if sec, err := element(dom, `id="postmortem"`, "</section>"); err != nil || !strings.Contains(sec, "likely OOM-killed") || !strings.Contains(sec, "main.leakInPreviousRun") {
		fails = append(fails, fmt.Sprintf("the post-mortem section does not say the previous run was likely OOM-killed, naming main.leakInPreviousRun (%v)", err))
	} else {
		row, _ := firstRow(dom, `id="postmortem-growth"`)
		fmt.Printf("ok: post-mortem: likely OOM-killed; top growth: %s\n", row)
	}
	if *screenshot != "" {
		path, err := filepath.Abs(*screenshot)
		if err != nil {
			return err
		}
		if _, err := render(ctx, page, "--screenshot="+path, "--window-size=1200,1600", "--hide-scrollbars"); err != nil {
			return err
		}
		fmt.Println("screenshot:", *screenshot)
	}
	if *serve > 0 {
		fmt.Printf("-- serving %s for %v\n", page, *serve)
		time.Sleep(*serve)
	}
	if len(fails) > 0 {
		return errors.New(strings.Join(fails, "; "))
	}
	fmt.Println("status page check passed")
	return nil
}

// killedRun runs this program as the previous run on dir and kills it once
// it is at High.
func killedRun(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-child", dir, fmt.Sprintf("-limit-mib=%d", *limitMiB))
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
	select {
	case line := <-said:
		if line != "high" {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("the previous run said %q, want high", line)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return errors.New("the previous run did not reach High in 60s")
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil
}

// climbProfiles counts the profiles written above Normal by this run.
func climbProfiles(g *guard.Guard) int64 {
	if g.Level() == guard.LevelNormal {
		return 0
	}
	return g.Snapshot().ProfilesWritten
}

// work is the guarded handler: a little memory held for a little while.
func work(w http.ResponseWriter, r *http.Request) {
	b := touch(make([]byte, 64<<10))
	time.Sleep(40 * time.Millisecond)
	fmt.Fprintf(w, "ok %d\n", len(b))
}

// load asks for url until ctx is done, backing off when shed.
func load(ctx context.Context, url string, sheddable bool) {
	client := &http.Client{Timeout: 5 * time.Second}
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

// render runs headless Chromium on url with args and returns its output.
func render(ctx context.Context, url string, args ...string) (string, error) {
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
	cmd := exec.CommandContext(ctx, *chromium, all...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", *chromium, err, stderr.String())
	}
	return string(out), nil
}

// element returns the text of dom from the tag holding attr to the first
// end after it.
func element(dom, attr, end string) (string, error) {
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

// pathPoints counts the points of the path whose class is class.
func pathPoints(dom, class string) (int, error) {
	tag, err := element(dom, `class="`+class+`"`, ">")
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(` d="([^"]*)"`).FindStringSubmatch(tag)
	if m == nil {
		return 0, fmt.Errorf("the path %q has no d attribute", class)
	}
	return len(regexp.MustCompile(`[ML]\s*-?[0-9.]+,-?[0-9.]+`).FindAllString(m[1], -1)), nil
}

// firstRow returns the text of the first data row of the table holding
// attr: its cells joined by spaces.
func firstRow(dom, attr string) (string, error) {
	table, err := element(dom, attr, "</table>")
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

func mib(b int64) float64 { return float64(b) / (1 << 20) }
