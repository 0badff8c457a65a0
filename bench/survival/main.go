// Command survival is the OOM-survival benchmark: the example HTTP service
// runs in a child memory cgroup with a real limit (256 MiB by default) and
// gets the same open-loop load spike in three modes, bare, automemlimit and
// oomguard. It records who the kernel OOM-kills and how much useful work
// each mode did, and writes bench/results/latest.{json,md,svg}.
//
//	go run ./bench/survival            # full run
//	go run ./bench/survival -quick     # about 2 minutes
//	go run ./bench/survival -quick -check  # CI: fail if oomguard dies or its goodput < 0.8
//
// The load comes from vegeta, in this process, outside the service's
// cgroup. First a calibration finds the highest rate the bare service
// sustains well inside the limit; then each mode, fresh, gets that rate,
// 3× that rate (the spike), and that rate again (recovery).
//
// It needs Linux, root and a writable memory cgroup. Without them it says
// so and runs oomguard alone with Config.Limit set to the limit: the kernel
// enforces nothing then, so the unguarded modes could not be killed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The load's shape and the calibration's bounds.
const (
	spikeFactor    = 3
	sampleEvery    = 100 * time.Millisecond
	requestTimeout = 5 * time.Second
	maxWorkers     = 4096

	unloadedRate = 10.0  // rps for the unloaded p99
	startRate    = 25.0  // first calibration rate, doubled until too much
	maxRate      = 6400. // calibration gives up above
	usageCap     = 0.70  // a sustainable rate keeps usage below this share of the limit
	p99Slack     = 1.2   // and p99 within this factor of the unloaded p99
	p99Margin    = 10 * time.Millisecond

	// The -check thresholds for oomguard.
	checkGoodput = 0.8
)

// config is the command line.
type config struct {
	limit      int64
	service    string // prebuilt examples/httpservice; "" builds it
	quick      bool
	check      bool
	modes      []string
	out        string
	rate       float64
	keep       bool
	workBytes  int
	workHold   time.Duration
	probe      time.Duration // calibration step
	bisections int
	warm       time.Duration
	spike      time.Duration
	recovery   time.Duration
}

func main() {
	var c config
	limitMiB := flag.Int64("limit-mib", 256, "memory limit of the service's cgroup, in MiB")
	modes := flag.String("modes", "bare,automemlimit,oomguard", "comma-separated modes to run, in order")
	flag.BoolVar(&c.quick, "quick", false, "the whole comparison in about 2 minutes: shorter calibration and an 8s spike")
	flag.BoolVar(&c.check, "check", false, "exit 1 if oomguard is OOM-killed or its goodput is below 0.8 of the calibrated rate")
	flag.StringVar(&c.out, "out", "", "directory for latest.json, latest.md and latest.svg (default bench/results in the module)")
	flag.Float64Var(&c.rate, "rate", 0, "base rate in requests per second; 0 calibrates")
	flag.StringVar(&c.service, "service", "", "run this prebuilt examples/httpservice binary instead of building it (where there is no Go toolchain)")
	flag.BoolVar(&c.keep, "keep", false, "keep the scratch directory (service logs, heap profiles)")
	flag.IntVar(&c.workBytes, "work-bytes", 1<<20, "bytes each request holds in the service")
	flag.DurationVar(&c.workHold, "work-hold", 300*time.Millisecond, "how long each request holds its memory")
	flag.Parse()

	c.limit = *limitMiB << 20
	c.modes = strings.Split(*modes, ",")
	for _, m := range c.modes {
		if !slices.Contains([]string{modeBare, modeAutomemlimit, modeOomguard}, m) {
			fatalf("-modes: unknown mode %q; want bare, automemlimit or oomguard", m)
		}
	}
	c.probe, c.bisections, c.warm, c.spike, c.recovery = 5*time.Second, 3, 5*time.Second, 20*time.Second, 10*time.Second
	if c.quick {
		c.probe, c.bisections, c.warm, c.spike, c.recovery = 3*time.Second, 2, 3*time.Second, 8*time.Second, 5*time.Second
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, c)
	stop()
	os.Exit(code)
}

// run is the whole benchmark; it returns the exit code. Every cgroup it
// makes is removed before it returns, whatever happens.
func run(ctx context.Context, c config) int {
	var root string
	var err error
	if c.out == "" || c.service == "" {
		if root, err = moduleRoot(ctx); err != nil {
			return fail(err)
		}
	}
	if c.out == "" {
		c.out = filepath.Join(root, "bench", "results")
	}
	dir, err := os.MkdirTemp("", "oomguard-bench-")
	if err != nil {
		return fail(fmt.Errorf("scratch directory: %w", err))
	}
	if c.keep {
		fmt.Println("scratch directory (service logs, heap profiles):", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	h := &harness{cfg: c, dir: dir, bin: c.service}
	if h.bin == "" {
		if h.bin, err = buildService(ctx, root, dir); err != nil {
			return fail(err)
		}
	}
	rep := &report{Quick: c.quick, Limit: c.limit, WorkBytes: c.workBytes, WorkHold: c.workHold}
	if h.enf, err = newEnforcer(c.limit); err != nil {
		fmt.Printf("no kernel enforcement (%v): running oomguard only, with -limit %d; the unguarded modes cannot be killed without it\n", err, c.limit)
		c.modes = []string{modeOomguard}
	} else {
		rep.Enforced = true
	}

	calMode := modeBare
	if !rep.Enforced {
		calMode = modeOomguard
	}
	cal := calibration{Mode: "none, -rate", Rate: c.rate}
	if c.rate <= 0 {
		if cal, err = h.calibrate(ctx, calMode); err != nil {
			return fail(err)
		}
	}
	rep.Calibration = cal
	fmt.Printf("base rate %.0f rps (p99 %v), spike %.0f rps\n", cal.Rate, cal.P99.Round(time.Millisecond), spikeFactor*cal.Rate)

	for _, mode := range c.modes {
		fmt.Printf("%s: %v at %.0f rps, %v at %.0f rps, %v at %.0f rps\n", mode,
			c.warm, cal.Rate, c.spike, spikeFactor*cal.Rate, c.recovery, cal.Rate)
		r, err := h.runMode(ctx, mode, cal)
		if err != nil {
			return fail(err)
		}
		rep.Runs = append(rep.Runs, r)
		fmt.Printf("%s: oom_killed=%v exit=%d goodput=%.3f p50=%.1fms p99=%.1fms shed=%d peak=%s recovery=%.1fs\n",
			mode, r.Result.OOMKilled, r.Result.ExitCode, r.Result.GoodputRatio, r.Result.P50Ms, r.Result.P99Ms,
			r.Result.Shed, mib(r.Result.PeakUsageBytes), r.Result.RecoverySeconds)
	}

	if err := rep.write(c.out); err != nil {
		return fail(err)
	}
	fmt.Println()
	rep.writeMarkdown(os.Stdout)
	fmt.Printf("\nwrote %s\n", filepath.Join(c.out, "latest.{json,md,svg}"))

	if c.check {
		if msg := rep.check(); msg != "" {
			fmt.Println("CHECK FAILED:", msg)
			return 1
		}
		fmt.Println("check passed: oomguard survived with goodput >= 0.8")
	}
	return 0
}

// check returns why the run fails -check, or "".
func (rep *report) check() string {
	for _, r := range rep.Runs {
		if r.Result.Mode != modeOomguard {
			continue
		}
		switch {
		case r.Result.OOMKilled:
			return "oomguard was OOM-killed"
		case r.Result.GoodputRatio < checkGoodput:
			return fmt.Sprintf("oomguard goodput %.3f is below %.1f of the calibrated rate", r.Result.GoodputRatio, checkGoodput)
		}
		return ""
	}
	return "oomguard did not run"
}

// write writes latest.json, latest.md and latest.svg into dir.
func (rep *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	for name, write := range map[string]func(*os.File) error{
		"latest.json": func(f *os.File) error { return rep.writeJSON(f) },
		"latest.md":   func(f *os.File) error { return rep.writeMarkdown(f) },
		"latest.svg":  func(f *os.File) error { return rep.writeSVG(f) },
	} {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "survival:", err)
	return 2
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "survival: "+format+"\n", args...)
	os.Exit(2)
}
