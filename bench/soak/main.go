// Command soak runs the example service under oomguard in a memory cgroup
// with a real limit, under a load that swings from idle to overload and back
// for a long time, and watches the guard's own resources: its goroutines,
// its open files and the heap it allocated. Nothing of them may grow with
// time; the memory level must cross every threshold several times.
//
//	go run ./bench/soak                  # 10 minutes, needs root (a memory cgroup)
//	go run ./bench/soak -duration 90s -check
//
// It prints a table of probes, taken every -probe-every, and the start and
// end figures; -check exits 1 when a figure grew past its bound, a level
// was never reached, or the kernel killed the service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/oomguard/oomguard/bench/internal/exampleservice"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

type config struct {
	duration   time.Duration
	period     time.Duration
	probeEvery time.Duration
	limitMiB   int64
	check      bool
	out        string
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == ballastFlag {
		n, err := strconv.ParseInt(os.Args[2], 10, 64)
		if err != nil || n <= 0 {
			fatalf("%s %q: want the cgroup's limit in bytes", ballastFlag, os.Args[2])
		}
		runBallast(n)
	}
	var c config
	flag.DurationVar(&c.duration, "duration", 10*time.Minute, "how long the load runs")
	flag.DurationVar(&c.period, "period", time.Minute, "one swing of the load: calm, busy, overload, calm")
	flag.DurationVar(&c.probeEvery, "probe-every", 15*time.Second, "how often the guard's resources are read")
	flag.Int64Var(&c.limitMiB, "limit-mib", 256, "the cgroup's memory limit, in MiB")
	flag.BoolVar(&c.check, "check", false, "exit 1 when a bound is broken (see the package doc)")
	flag.StringVar(&c.out, "out", "", "also write the report to this file")
	flag.Parse()
	switch {
	case c.duration < c.period:
		fatalf("-duration %v is shorter than one -period %v", c.duration, c.period)
	case c.period < 8*time.Second:
		fatalf("-period %v: want 8s or more (each of its four phases needs time to move the level)", c.period)
	case c.probeEvery <= 0:
		fatalf("-probe-every %v: want a positive duration", c.probeEvery)
	case c.limitMiB < 64:
		fatalf("-limit-mib %d: want 64 or more", c.limitMiB)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, c))
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "soak: "+format+"\n", args...)
	os.Exit(2)
}

func run(ctx context.Context, c config) int {
	work, err := os.MkdirTemp("", "oomguard-soak-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	bin, err := exampleservice.Build(ctx, "", work)
	if err != nil {
		return fail(err)
	}
	if _, err := cgrouptest.RemoveStale(cgroupPrefix); err != nil {
		return fail(err)
	}
	cg, err := cgrouptest.Make(fmt.Sprintf("%s%d", cgroupPrefix, os.Getpid()), c.limitMiB<<20)
	if err != nil {
		return fail(fmt.Errorf("a memory cgroup with a limit (run as root on Linux): %w", err))
	}
	defer cg.Remove()

	svc, err := startService(ctx, cg, bin, work)
	if err != nil {
		return fail(err)
	}
	defer svc.stop()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	w := &watcher{svc: svc, client: client}
	go w.watchLevels(ctx)

	fmt.Printf("soak: %v under a load swinging every %v, %d MiB cgroup, service pid %d\n", c.duration, c.period, c.limitMiB, svc.Pid())
	idle(ctx, client)
	start, err := w.probe(ctx, 0)
	if err != nil {
		return fail(err)
	}
	probes := []probe{start}
	l := newLoad(svc.addr, c.limitMiB<<20, c.period)
	defer l.client.CloseIdleConnections()
	began := time.Now()
	loadDone := make(chan struct{})
	go func() { l.run(ctx, c.duration); close(loadDone) }()
	ballasts := 0
	ballastDone := make(chan struct{})
	go func() { ballast(ctx, cg, c.limitMiB<<20, c.period, c.duration, &ballasts); close(ballastDone) }()
	tick := time.NewTicker(c.probeEvery)
	defer tick.Stop()
wait:
	for {
		select {
		case <-loadDone:
			break wait
		case <-svc.Done():
			break wait
		case <-tick.C:
			if p, err := w.probe(ctx, time.Since(began)); err == nil {
				probes = append(probes, p)
			}
		}
	}
	<-ballastDone
	if svc.Exited() {
		fmt.Printf("soak: FAIL: the service exited: %v (cgroup OOM kills: %s); the end of its log:\n%s\n", svc.State(), oomKills(cg), readTail(svc.log))
		return 1
	}
	idle(ctx, client)
	end, err := w.probe(ctx, time.Since(began))
	if err != nil {
		return fail(err)
	}
	probes = append(probes, end)

	rep := report{config: c, probes: probes, levels: w.entered(), load: l.counts(), cycles: int(c.duration / c.period), ballasts: ballasts, oomKills: oomKills(cg)}
	text := rep.String()
	fmt.Print(text)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(text), 0o644); err != nil {
			return fail(err)
		}
	}
	if problems := rep.check(); len(problems) > 0 {
		for _, p := range problems {
			fmt.Println("soak: " + p)
		}
		if c.check {
			return 1
		}
	}
	return 0
}

// cgroupPrefix names the soak's cgroup, so that a later run removes what a
// crashed one left.
const cgroupPrefix = "oomguard-soak-"

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "soak:", err)
	return 1
}

// idle lets the service go quiet: the client's connections closed, the
// guard back at its idle pace, the last requests' memory collected.
func idle(ctx context.Context, client *http.Client) {
	client.CloseIdleConnections()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
}

func oomKills(cg *cgrouptest.Child) string {
	if n, ok := cg.ReadOOMKills(); ok {
		return fmt.Sprint(n)
	}
	return "unknown"
}

// report is what the soak saw.
type report struct {
	config   config
	probes   []probe
	levels   map[string]int // times each level was crossed upward; "normal": returns to it
	load     loadCounts
	cycles   int
	ballasts int    // ballast processes that ran their course
	oomKills string // the cgroup's count: a ballast may be killed, not the service
}

func (r report) String() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "at\tguard goroutines\tall goroutines\tguard fds\tall fds\tguard heap\theap live\tusage\tlevel\t")
	for _, p := range r.probes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", p.at.Round(time.Second), p.guardGoroutines, p.goroutines,
			p.guardFDs, p.fds, kib(p.guardHeap), mib(p.heapLive), mib(p.usage), p.level)
	}
	tw.Flush()
	first, last := r.probes[0], r.probes[len(r.probes)-1]
	fmt.Fprintf(&b, "start → end (idle both): guard goroutines %d → %d, guard fds %d → %d, all fds %d → %d, guard heap %s → %s, heap live %s → %s\n",
		first.guardGoroutines, last.guardGoroutines, first.guardFDs, last.guardFDs, first.fds, last.fds,
		kib(first.guardHeap), kib(last.guardHeap), mib(first.heapLive), mib(last.heapLive))
	fmt.Fprintf(&b, "levels crossed upward: elevated %d, high %d, critical %d; back to normal %d (over %d swings)\n",
		r.levels["elevated"], r.levels["high"], r.levels["critical"], r.levels["normal"], r.cycles)
	fmt.Fprintf(&b, "requests: %d sent, %d served, %d shed (503), %d failed; ballasts to %.3f of the limit: %d ran; cgroup OOM kills: %s\n",
		r.load.sent, r.load.ok, r.load.shed, r.load.failed, ballastTo, r.ballasts, r.oomKills)
	return b.String()
}

// check returns the bounds the soak broke. The guard's goroutines and files
// must be the same at the idle end as at the idle start; its heap may grow
// by what fills once (the profile index, at most Config's count of
// profiles); every level must be crossed at least once a swing, up to
// three times.
func (r report) check() []string {
	var out []string
	first, last := r.probes[0], r.probes[len(r.probes)-1]
	if last.guardGoroutines != first.guardGoroutines {
		out = append(out, fmt.Sprintf("the guard's goroutines went from %d to %d", first.guardGoroutines, last.guardGoroutines))
	}
	if last.guardFDs != first.guardFDs {
		out = append(out, fmt.Sprintf("the guard's open files went from %d to %d", first.guardFDs, last.guardFDs))
	}
	if last.fds > first.fds+4 {
		out = append(out, fmt.Sprintf("the process's open files went from %d to %d", first.fds, last.fds))
	}
	if last.guardHeap > first.guardHeap+1<<20 {
		out = append(out, fmt.Sprintf("the guard's heap went from %s to %s", kib(first.guardHeap), kib(last.guardHeap)))
	}
	want := min(3, max(1, r.cycles))
	for _, l := range []string{"elevated", "high", "critical"} {
		if r.levels[l] < want {
			out = append(out, fmt.Sprintf("level %s crossed %d times, want %d or more", l, r.levels[l], want))
		}
	}
	if r.load.ok == 0 {
		out = append(out, "no request was served")
	}
	return out
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b int64) string { return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10)) }

// get fetches url's body, or fails on a status other than 200.
func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(url + ": " + resp.Status)
	}
	return b, err
}
