// Command survival is the OOM-survival benchmark: the example HTTP service
// runs in a child memory cgroup with a real limit (256 MiB by default)
// under a matrix of workload shapes and protection modes. It records who
// the kernel OOM-kills and how much useful work each mode did, against the
// best fixed in-flight cap (the oracle).
//
//	go run ./bench/survival -quick          # shapes 1-3, 8 and 9 short, a few minutes
//	go run ./bench/survival                 # the whole matrix
//	go run ./bench/survival -quick -check   # CI: fail if oomguard dies or serves too little
//	go run ./bench/survival -out bench/results   # update the committed results
//
// The shapes (-shapes): 1 uniform, 2 heavytail, 3 burst (closed loop from
// idle), 4 uploads, 5 offheap, 6 leak, 7 cache, 8 decode (a thumbnail
// server, bound by CPU, its clients waiting 2 s), 9 quota (the same under
// a CPU quota of 0.2 CPU). The modes (-modes): bare,
// automemlimit, oracle (automemlimit with a fixed in-flight cap, bisected
// in the same run), oomguard (middleware only) and oomguard+cost
// (Config.Cost). The load comes from this process, outside the service's
// cgroup, on loopback: vegeta for open-loop phases, net/http clients for
// the closed-loop burst.
//
// It needs Linux, root and a writable memory cgroup. Without them it says
// so and runs oomguard alone with Config.Limit set to -limit-mib: the
// kernel enforces nothing then, so the unguarded modes could not be killed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/oomguard/oomguard/bench/internal/exampleservice"
)

// The load's shape and the calibration's bounds.
const (
	spikeFactor    = 3
	sampleEvery    = 100 * time.Millisecond
	requestTimeout = 5 * time.Second
	maxWorkers     = 4096

	unloadedRate = 10.0  // rps for the unloaded p99
	startRate    = 25.0  // first calibration rate, doubled until too much
	minRate      = 5.0   // calibration halves startRate down to this on a slow machine
	maxRate      = 6400. // calibration gives up above
	usageCap     = 0.70  // a sustainable rate keeps usage below this share of the limit
	p99Slack     = 1.2   // and p99 within this factor of the unloaded p99
	p99Margin    = 10 * time.Millisecond
	scaledRetry  = 0.7 // a scaled rate that fails its probe is tried again at this share
)

// config is the command line.
type config struct {
	limit         int64
	service       string // prebuilt examples/httpservice; "" builds it
	quick         bool
	check         bool
	checkGoodput  float64
	checkQuotaP99 float64
	modes         []string
	matrix        matrixOptions
	out           string
	rate          float64
	keep          bool
	probe         time.Duration // calibration step
	bisections    int
	oracleProbes  int
	oracleCap     int // fixed: no bisection, no retry
	oracleLives   int // full-load runs in a row the oracle's cap must live
	// capacityPasses is how many times the closed loop that measures a
	// CPU-bound shape's capacity asks for every picture.
	capacityPasses int
	durations      durations
	// rightsize runs the right-sizing test (see harness.rightsize) in
	// place of the matrix.
	rightsize bool
	// serviceEnv is added to every service's environment (-service-env).
	serviceEnv envList
}

// envList is a repeatable NAME=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

// Set adds one NAME=VALUE, refusing one without a name or an "=".
func (e *envList) Set(kv string) error {
	name, _, ok := strings.Cut(kv, "=")
	if !ok || name == "" || strings.ContainsAny(name, " \t\n") {
		return fmt.Errorf("%q: want NAME=VALUE", kv)
	}
	*e = append(*e, kv)
	return nil
}

func main() {
	var c config
	limitMiB := flag.Int64("limit-mib", 256, "memory limit of the service's cgroup, in MiB")
	modes := flag.String("modes", strings.Join(defaultModes, ","), "comma-separated modes to run, in order; "+modeOomguardTrace+" (oomguard with the flight recorder) runs only when named")
	shapes := flag.String("shapes", "", "comma-separated shapes, names or numbers 1-9 (default all; with -quick, 1-3, 8 and 9)")
	flag.BoolVar(&c.quick, "quick", false, "shapes 1-3, 8 and 9 with short phases, the decode shape at one load (-quick-decode-load), for CI: a few minutes")
	flag.BoolVar(&c.check, "check", false, "exit 1 if oomguard or oomguard+cost is OOM-killed in a shape but the leak, serves less than -check-goodput of the reference, or under a CPU quota answers slower than -check-quota-p99")
	flag.Float64Var(&c.checkGoodput, "check-goodput", 0.5, "-check: the least goodput, as a fraction of the reference mode's (of the base rate where no reference ran)")
	flag.Float64Var(&c.checkQuotaP99, "check-quota-p99", 2.5, "-check: the longest p99 under a CPU quota (the quota shape), as a multiple of the shape's calibration p99")
	flag.StringVar(&c.out, "out", "", "directory for latest.json, latest.md and latest.svg (default: a new temporary directory; the committed bench/results only when named)")
	flag.Float64Var(&c.rate, "rate", 0, "base rate of the uniform shape in requests per second; 0 calibrates")
	flag.StringVar(&c.service, "service", "", "run this prebuilt examples/httpservice binary instead of building it (where there is no Go toolchain)")
	flag.BoolVar(&c.keep, "keep", false, "keep the scratch directory (service logs, heap profiles, samples)")
	flag.Var(&c.serviceEnv, "service-env", "NAME=VALUE added to the environment of the service in every mode, repeatable, such as OOMGUARD_TIME_BOUND=off; the harness's own GOMEMLIMIT, GOGC, GODEBUG, AUTOMEMLIMIT and OOMGUARD* never reach the service")
	flag.IntVar(&c.matrix.workBytes, "work-bytes", 1<<20, "bytes each request holds in the uniform, burst and offheap shapes")
	flag.DurationVar(&c.matrix.workHold, "work-hold", 300*time.Millisecond, "how long each request holds its memory (uniform, heavytail, burst, offheap)")
	flag.IntVar(&c.oracleCap, "oracle-cap", 0, "run the oracle at this in-flight cap: no bisection, and no retry at a lower cap if it is killed (to measure how often a cap lives); 0 bisects")
	flag.IntVar(&c.oracleLives, "oracle-lives", 0, "full-load runs in a row the oracle's cap must live through before it is the reference; a death moves to a lower cap. 0 means 3 (1 with -quick)")
	flag.IntVar(&c.matrix.conns, "burst-conns", 400, "closed-loop connections of the burst shape")
	leakMiB := flag.Float64("leak-mib-per-s", 8, "the leak shape's leak, MiB per second")
	cacheFracs := flag.String("cache-fracs", "0.78,0.84", "the cache shape's live set, as fractions of the limit")
	cacheRates := flag.String("cache-rates", "1500,3000", "the cache shape's request rates, per second")
	cacheSteady := flag.Duration("cache-steady", 0, "the cache shape's measured phase; 0 means 16s (5s with -quick). At 3000 a second, the p99 of 16s rests on the slowest 480 requests, 160ms of arrivals: one GC stall decides a shorter one")
	flag.IntVar(&c.matrix.cacheRounds, "cache-rounds", 3, "rounds of the reference (automemlimit), oomguard and oomguard+cost on each cache load, the other modes running in the first; each round compares with its own reference, and the summary and -check take the median")
	flag.IntVar(&c.matrix.cacheBytes, "cache-bytes", cacheBytes, "bytes each request of the cache shape holds")
	flag.DurationVar(&c.matrix.cacheHold, "cache-hold", cacheHold, "how long each request of the cache shape holds its bytes")
	cacheRebuild := flag.Int64("cache-rebuild-mib", 0, "the cache shape's service also rebuilds a block of this many MiB every 5s, in one allocation (examples/httpservice -rebuild-bytes); 0 none")
	cpuRounds := flag.Int("cpu-rounds", 3, "rounds of the reference (the oracle's cap), oomguard and oomguard+cost on each decode load and on the quota shape, the other modes running in the first; each round compares with its own reference, and the summary and -check take the median. With -quick, 1 on the decode shape and 3 on the quota shape unless given: one run of the quota's few scans is too few to judge")
	decodeLoads := flag.String("decode-loads", "2,3", "the decode shape's loads, as multiples of its capacity: one run of the shape each")
	quickDecodeLoad := flag.Float64("quick-decode-load", 3, "-quick: the decode shape's one load, as a multiple of its capacity, unless -decode-loads is given")
	decodeLimitMiB := flag.Int64("decode-limit-mib", 512, "memory limit of the decode and quota shapes' service, in MiB: a scan of 6000×4500 is 103 MiB decoded")
	flag.DurationVar(&c.matrix.decodeDeadline, "decode-deadline", 2*time.Second, "how long the decode shape's clients wait for a thumbnail; the quota shape's wait this over -quota-cpus")
	flag.Float64Var(&c.matrix.quotaCPUs, "quota-cpus", 0.2, "the quota shape's CPU quota, in CPUs (CFS quota over a period of 100ms)")
	flag.Float64Var(&c.matrix.quotaLoad, "quota-load", 2, "the quota shape's load, as a multiple of its capacity under the quota")
	flag.BoolVar(&c.rightsize, "rightsize", false, "in place of the matrix, test the guard's recommended memory limit: the uniform shape's spike at -limit-mib, then at the limit the guard recommends, then a bisection for the smallest limit that serves it; with -check, exit 1 unless the recommendation serves the load and is at most 1.5 times that smallest limit")
	flag.Parse()

	c.limit = *limitMiB << 20
	c.modes = strings.Split(*modes, ",")
	for _, m := range c.modes {
		if !slices.Contains(modeNames, m) {
			fatalf("-modes: unknown mode %q; want some of %s", m, strings.Join(modeNames, ", "))
		}
	}
	var err error
	switch {
	case *shapes != "":
		c.matrix.shapes, err = parseShapes(*shapes)
	case c.quick:
		c.matrix.shapes = append(slices.Clone(shapeNames[:3]), shapeDecode, shapeQuota)
	default:
		c.matrix.shapes = shapeNames
	}
	if err != nil {
		fatalf("-shapes: %v", err)
	}
	if c.matrix.cacheFracs, err = parseFloats(*cacheFracs, 0.99); err != nil {
		fatalf("-cache-fracs: %v", err)
	}
	if c.matrix.cacheRates, err = parseFloats(*cacheRates, maxRate); err != nil {
		fatalf("-cache-rates: %v", err)
	}
	if c.matrix.decodeLoads, err = parseFloats(*decodeLoads, 100); err != nil {
		fatalf("-decode-loads: %v", err)
	}
	if c.quick && !flagSet("decode-loads") {
		c.matrix.decodeLoads = []float64{*quickDecodeLoad}
	}
	c.matrix.cpuRounds, c.matrix.quotaRounds = *cpuRounds, *cpuRounds
	if c.quick && !flagSet("cpu-rounds") {
		c.matrix.cpuRounds = 1
	}
	switch {
	case *quickDecodeLoad <= 0 || *quickDecodeLoad > 100:
		fatalf("-quick-decode-load: %v: want a multiple in (0, 100]", *quickDecodeLoad)
	case *decodeLimitMiB <= 0:
		fatalf("-decode-limit-mib: %d: want a positive number", *decodeLimitMiB)
	case c.matrix.decodeDeadline <= 0:
		fatalf("-decode-deadline: %v: want a positive duration", c.matrix.decodeDeadline)
	case !(c.matrix.quotaCPUs >= 0.01) || c.matrix.quotaCPUs > float64(runtime.NumCPU()):
		fatalf("-quota-cpus: %v: want a quota from 0.01 to the %d CPUs of the machine", c.matrix.quotaCPUs, runtime.NumCPU())
	case !(c.matrix.quotaLoad > 0) || c.matrix.quotaLoad > 100:
		fatalf("-quota-load: %v: want a multiple in (0, 100]", c.matrix.quotaLoad)
	case !(c.checkGoodput >= 0):
		fatalf("-check-goodput: %v: want a fraction of 0 or more", c.checkGoodput)
	case !(c.checkQuotaP99 > 0):
		fatalf("-check-quota-p99: %v: want a positive multiple", c.checkQuotaP99)
	}
	c.matrix.decodeLimit = *decodeLimitMiB << 20
	// The quota's phases are as long with -quick: shorter ones hold too
	// few of its scans to compare one mode's goodput with another's.
	c.matrix.quotaStretch = 3
	if c.quick {
		if !flagSet("modes") {
			// The checked modes and their reference: bare and GOMEMLIMIT
			// alone die in the decode shape, and every run of the CPU-bound
			// shapes waits out its clients' deadline.
			c.matrix.cpuModes = []string{modeOracle, modeOomguard, modeOomguardCost}
		}
	}
	if *cacheSteady < 0 {
		fatalf("-cache-steady: %v is negative", *cacheSteady)
	}
	if c.oracleCap < 0 {
		fatalf("-oracle-cap: %d is negative", c.oracleCap)
	}
	if c.oracleLives < 0 {
		fatalf("-oracle-lives: %d is negative", c.oracleLives)
	}
	if *leakMiB <= 0 || c.matrix.cacheRounds <= 0 || c.matrix.cpuRounds <= 0 || c.matrix.conns <= 0 || c.matrix.workBytes <= 0 || c.matrix.workHold <= 0 ||
		c.matrix.cacheBytes <= 0 || c.matrix.cacheHold <= 0 {
		fatalf("-leak-mib-per-s, -cache-rounds, -cpu-rounds, -burst-conns, -work-bytes, -work-hold, -cache-bytes and -cache-hold must be positive")
	}
	if *cacheRebuild < 0 {
		fatalf("-cache-rebuild-mib: %d is negative", *cacheRebuild)
	}
	c.matrix.cacheRebuild = *cacheRebuild << 20
	c.matrix.leakRate = int64(*leakMiB * (1 << 20))

	c.probe, c.bisections, c.oracleProbes, c.capacityPasses = 4*time.Second, 3, 4, 2
	lives := 3
	c.durations = durations{warm: 3 * time.Second, spike: 12 * time.Second, recovery: 5 * time.Second,
		idle: 2 * time.Second, cacheWarm: 2 * time.Second, steady: 16 * time.Second, oracleProbe: 6 * time.Second}
	if c.quick {
		c.probe, c.bisections, c.oracleProbes, c.capacityPasses = 3*time.Second, 2, 3, 1
		lives = 1
		c.durations = durations{warm: 2 * time.Second, spike: 6 * time.Second, recovery: 3 * time.Second,
			idle: time.Second, cacheWarm: time.Second, steady: 5 * time.Second, oracleProbe: 4 * time.Second}
	}
	if *cacheSteady > 0 {
		c.durations.steady = *cacheSteady
	}
	if c.oracleLives == 0 {
		c.oracleLives = lives
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
	began := time.Now()
	var root string
	var err error
	if c.service == "" {
		if root, err = moduleRoot(ctx); err != nil {
			return fail(err)
		}
	}
	if c.out == "" {
		if c.out, err = os.MkdirTemp("", "oomguard-survival-results-"); err != nil {
			return fail(fmt.Errorf("results directory: %w", err))
		}
	}
	dir, err := os.MkdirTemp("", "oomguard-bench-")
	if err != nil {
		return fail(fmt.Errorf("scratch directory: %w", err))
	}
	if c.keep {
		fmt.Println("scratch directory (service logs, heap profiles, samples):", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	h := &harness{cfg: c, dir: dir, bin: c.service}
	if h.bin == "" {
		if h.bin, err = exampleservice.Build(ctx, root, dir); err != nil {
			return fail(err)
		}
	}
	if c.rightsize {
		return h.runRightsize(ctx, began)
	}
	rep := &report{Quick: c.quick, Limit: c.limit, CPUs: runtime.NumCPU(), LoadBefore: loadAverage(), ServiceEnv: c.serviceEnv}
	if h.enf, err = newEnforcer(c.limit); err != nil {
		fmt.Printf("no kernel enforcement (%v): running oomguard alone, with Config.Limit = -limit-mib (%s); the other modes cannot be killed without it\n", err, mib(c.limit))
		h.cfg.modes = []string{modeOomguard}
	} else {
		rep.Enforced = true
	}

	err = h.runMatrix(ctx, rep)
	rep.Wall, rep.LoadAfter = time.Since(began), loadAverage()
	if err != nil {
		return fail(err)
	}
	if err := rep.write(c.out); err != nil {
		return fail(err)
	}
	fmt.Println()
	rep.writeMarkdown(os.Stdout)
	fmt.Printf("\nwrote %s\n", filepath.Join(c.out, "latest.{json,md,svg}"))

	if c.check {
		if failures := rep.check(c.checkGoodput, c.checkQuotaP99); len(failures) > 0 {
			fmt.Println("CHECK FAILED:\n  " + strings.Join(failures, "\n  "))
			return 1
		}
		fmt.Printf("check passed: oomguard lived, with goodput >= %.2f of the reference (of the base rate where none ran), and under a CPU quota a p99 <= %.2f× the calibration's, in %s\n",
			c.checkGoodput, c.checkQuotaP99, strings.Join(rep.checked(), ", "))
	}
	return 0
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

// flagSet reports whether the command line gave the named flag.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "survival:", err)
	return 2
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "survival: "+format+"\n", args...)
	os.Exit(2)
}
