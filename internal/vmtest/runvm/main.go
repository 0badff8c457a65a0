//go:build linux

// Command runvm runs the real-cgroup tests of every package that makes
// cgroups, and a quick survival run, in a QEMU VM whose kernel mounts
// cgroup v2: the host's memory controller may be on v1, and most users run
// v2. .ci/vm-test fetches QEMU and the kernel and starts it:
//
//	go run ./internal/vmtest/runvm -kernel vmlinuz
//
// It builds everything on the host (the guest has no Go toolchain), static
// and without -race (the race detector's shadow memory would be charged to
// the tests' small cgroups), packs it with /init into an initramfs, boots
// it, prints each step's ok or FAIL line as the guest reports it, and exits
// 1 if any step failed, skipped a test, left a cgroup behind, or the VM
// did not finish within -timeout.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/oomguard/oomguard/internal/vmtest"
)

// testPackages are the packages that make cgroups, the pattern of their
// real-cgroup tests, and of the tests the VM leaves out: the cgroup v1
// tests, and the guard's burst test. None of the others may skip in the VM.
//
// The burst test loads the service with hundreds of connections a wave;
// on the guest's emulated CPUs, many times slower than the host's, the
// service then starves its own sampler, and the test measures that, not
// admission. It runs on the host's real cgroup in every CI run; the
// guard's admission under load on v2 is the survival step's, below. The
// last-profile test is left out for the same cause: it measures how soon
// the profile writer runs as the kernel is about to strike, and the
// emulated CPUs delay it past its bar; it runs on the host in every CI
// run. The measurements behind both are in CONTRIBUTING.md.
var testPackages = []struct {
	pkg, run, skip string
	timeout        time.Duration
}{
	{"./internal/cgroup", "^TestReal", "", 4 * time.Minute},
	{"./internal/cgrouptest", ".", "", 4 * time.Minute},
	{"./internal/notify", ".", "OnV1$", 4 * time.Minute},
	{"./guard", "^TestCgroup", "^(TestCgroupBurstSurvives|TestCgroupLastProfileNearTheKill)$", 8 * time.Minute},
}

const module = "github.com/oomguard/oomguard"

type config struct {
	kernel  string
	timeout time.Duration
	memMiB  int
	cpus    int
	accel   string
	verbose bool
	keep    bool
	run     *regexp.Regexp
}

func main() {
	var c config
	flag.StringVar(&c.kernel, "kernel", "", "the kernel image (bzImage) to boot; required")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "the VM is killed, and the run fails, after this long")
	flag.IntVar(&c.memMiB, "mem-mib", 2048, "guest memory in MiB")
	flag.IntVar(&c.cpus, "cpus", 2, "guest CPUs")
	flag.StringVar(&c.accel, "accel", "auto", "kvm, tcg, or auto: KVM where it is real, else (or when the guest stays silent) TCG")
	flag.BoolVar(&c.verbose, "v", false, "print the guest's whole output, not only failures")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (binaries, initramfs, logs)")
	runRE := flag.String("run", "", "run only the steps (package paths) this regular expression matches")
	flag.Parse()
	var err error
	if c.run, err = regexp.Compile(*runRE); err != nil {
		fmt.Fprintf(os.Stderr, "runvm: -run %q: %v\n", *runRE, err)
		os.Exit(2)
	}
	if c.kernel == "" {
		fmt.Fprintln(os.Stderr, "runvm: -kernel is required")
		os.Exit(2)
	}
	os.Exit(run(c))
}

func run(c config) int {
	work, err := os.MkdirTemp("", "oomguard-vm-")
	if err != nil {
		return fail(err)
	}
	failed := true
	defer func() {
		if c.keep || failed {
			fmt.Println("runvm: work directory (logs, initramfs):", work)
		} else {
			os.RemoveAll(work)
		}
	}()

	start := time.Now()
	plan, err := build(work, c.run)
	if err != nil {
		return fail(err)
	}
	initrd := filepath.Join(work, "initramfs.cpio")
	if err := pack(initrd, work, plan); err != nil {
		return fail(err)
	}
	fmt.Printf("runvm: built and packed in %.0fs\n", time.Since(start).Seconds())

	r := &reporter{verbose: c.verbose, plan: plan}
	if err := boot(c, work, initrd, r); err != nil {
		r.failf("vm: %v", err)
	}
	r.finish()
	fmt.Printf("runvm: %.0fs in all\n", time.Since(start).Seconds())
	if r.failures > 0 {
		return 1
	}
	failed = false
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "runvm:", err)
	return 2
}

// build compiles the guest's programs into work/bin and returns the plan.
func build(work string, run *regexp.Regexp) (vmtest.Plan, error) {
	var plan vmtest.Plan
	bin := filepath.Join(work, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return plan, err
	}
	gobuild := func(args ...string) error {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-trimpath")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	ldflags := "-ldflags=-s -w"
	for _, p := range []struct{ pkg, name string }{
		{"./internal/vmtest/guestinit", "init"},
		{"./guard/internal/testservice", "testservice"},
		{"./bench/survival", "survival"},
		{"./examples/httpservice", "httpservice"},
	} {
		out := filepath.Join(bin, p.name)
		if p.name == "init" {
			out = filepath.Join(work, "init")
		}
		if err := gobuild("build", ldflags, "-o", out, p.pkg); err != nil {
			return plan, err
		}
	}
	env := []string{"OOMGUARD_REQUIRE_CGROUP=1", "OOMGUARD_TESTSERVICE=/bin/testservice"}
	for _, t := range testPackages {
		if !run.MatchString(module + strings.TrimPrefix(t.pkg, ".")) {
			continue
		}
		name := filepath.Base(t.pkg) + ".test"
		if err := gobuild("test", "-c", ldflags, "-o", filepath.Join(bin, name), t.pkg); err != nil {
			return plan, err
		}
		plan.Steps = append(plan.Steps, vmtest.Step{
			Name:    module + strings.TrimPrefix(t.pkg, "."),
			Args:    []string{"/bin/" + name, "-test.v", "-test.count=1", "-test.run=" + t.run, "-test.skip=" + t.skip, "-test.timeout=" + t.timeout.String()},
			Env:     env,
			Timeout: t.timeout + 30*time.Second,
		})
	}
	if run.MatchString(survivalStep) {
		plan.Steps = append(plan.Steps, vmtest.Step{
			Name: survivalStep,
			// The uniform shape alone, without the oracle's bisection: the
			// emulated guest runs the service many times slower, and the
			// whole quick matrix would take too long there.
			Args:    []string{"/bin/survival", "-quick", "-check", "-shapes", "uniform", "-modes", "bare,automemlimit,oomguard", "-out", "/tmp/survival", "-service", "/bin/httpservice"},
			Timeout: 8 * time.Minute,
		})
	}
	if len(plan.Steps) == 0 {
		return plan, fmt.Errorf("-run %q matches no step", run)
	}
	return plan, nil
}

const survivalStep = module + "/bench/survival"

// pack writes the initramfs: /init, /plan.json and work/bin as /bin.
func pack(path, work string, plan vmtest.Plan) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := vmtest.NewCPIOWriter(f)
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "sys", "tmp"} {
		w.Dir(d, 0o755)
	}
	planJSON, err := json.Marshal(plan)
	if err != nil {
		return err
	}
	w.File(vmtest.PlanPath, 0o644, int64(len(planJSON)), strings.NewReader(string(planJSON)))
	addFile := func(name, src string) error {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		fi, err := in.Stat()
		if err != nil {
			return err
		}
		return w.File(name, 0o755, fi.Size(), in)
	}
	if err := addFile("init", filepath.Join(work, "init")); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := addFile("bin/"+e.Name(), filepath.Join(work, "bin", e.Name())); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}

// errSilent means the guest printed nothing in time: KVM that is not real.
var errSilent = errors.New("the guest printed nothing")

// boot runs the VM, feeding the guest's report to r, with KVM where it is
// real and TCG otherwise or when KVM leaves the guest silent.
func boot(c config, work, initrd string, r *reporter) error {
	accel := c.accel
	if accel == "auto" {
		accel = "tcg"
		if why := kvmUsable(); why == "" {
			accel = "kvm"
		} else {
			fmt.Printf("runvm: TCG (software emulation): %s\n", why)
		}
	}
	deadline := time.Now().Add(c.timeout)
	err := qemu(c, accel, work, initrd, deadline, r)
	if errors.Is(err, errSilent) && accel == "kvm" && c.accel == "auto" {
		fmt.Println("runvm: the guest stayed silent under KVM; falling back to TCG")
		err = qemu(c, "tcg", work, initrd, deadline, r)
	}
	return err
}

// kvmUsable returns why KVM cannot be used, or "".
func kvmUsable() string {
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return "/dev/kvm is PVM, which stock kernels do not boot under"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "no usable /dev/kvm"
	}
	f.Close()
	return ""
}

// silentLimit is how long a guest may stay silent before KVM is judged
// unusable; under TCG the kernel reaches /init in a few seconds.
const silentLimit = 60 * time.Second

func qemu(c config, accel, work, initrd string, deadline time.Time, r *reporter) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	cpu := "max"
	if accel == "kvm" {
		cpu = "host"
	}
	// tsc=reliable: without it the kernel distrusts the emulated TSC and
	// falls back to the HPET, where each clock read traps into QEMU, and
	// Go, which reads the clock all the time, runs many times slower. QEMU derives the TSC from the host's
	// monotonic clock, so it is as steady as the kernel is told.
	args := []string{
		"-machine", "pc,accel=" + accel, "-cpu", cpu,
		"-smp", fmt.Sprint(c.cpus), "-m", fmt.Sprint(c.memMiB),
		"-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot",
		"-kernel", c.kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 oops=panic loglevel=4 tsc=reliable",
		"-serial", "file:" + filepath.Join(work, "console-"+accel+".log"),
		"-serial", "stdio",
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	// A killed runner takes the VM with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	log, err := os.Create(filepath.Join(work, "guest-"+accel+".log"))
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Printf("runvm: booting %s under %s, %d CPUs, %d MiB\n", filepath.Base(c.kernel), strings.ToUpper(accel), c.cpus, c.memMiB)
	if err := cmd.Start(); err != nil {
		return err
	}
	heard := make(chan struct{})
	silent := time.AfterFunc(silentLimit, func() {
		select {
		case <-heard:
		default:
			cmd.Process.Kill()
		}
	})
	defer silent.Stop()
	sc := bufio.NewScanner(io.TeeReader(stdout, log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	first := true
	for sc.Scan() {
		if first {
			close(heard)
			first = false
		}
		r.line(strings.TrimRight(sc.Text(), "\r"))
	}
	werr := cmd.Wait()
	switch {
	case first:
		return fmt.Errorf("%w within %v (%v %s); kernel log: %s", errSilent, silentLimit, werr, strings.TrimSpace(stderr.String()), filepath.Join(work, "console-"+accel+".log"))
	case ctx.Err() != nil:
		return fmt.Errorf("timeout: killed after %v; kernel log: %s", c.timeout, filepath.Join(work, "console-"+accel+".log"))
	case !r.done:
		return fmt.Errorf("the guest ended before finishing (%v %s); kernel log tail:\n%s", werr, strings.TrimSpace(stderr.String()), tail(filepath.Join(work, "console-"+accel+".log"), 15))
	}
	return nil
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// A reporter follows the guest's report and prints a go test style line
// per step.
type reporter struct {
	verbose  bool
	plan     vmtest.Plan
	done     bool
	failures int
	ended    map[string]bool

	step   string   // running step, "" between steps
	output []string // its output

	// recap is each failed test's output, printed again at the end: a CI
	// log that keeps only its tail would otherwise lose it under the
	// steps that ran after.
	recap []string
}

// recapLines bounds the recap of one failed test: its last lines, where
// t.Error and the test's own summary are.
const recapLines = 60

var resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)

func (r *reporter) line(l string) {
	if r.verbose {
		fmt.Println("  | " + l)
	}
	switch {
	case l == vmtest.DoneLine:
		r.done = true
		return
	case strings.HasPrefix(l, vmtest.ReadyLine):
		fmt.Println("runvm: guest" + strings.TrimPrefix(l, vmtest.ReadyLine))
		return
	}
	if name, ok := vmtest.ParseStart(l); ok {
		r.step, r.output = name, nil
		return
	}
	if e, ok := vmtest.ParseEnd(l); ok {
		r.end(e)
		r.step, r.output = "", nil
		return
	}
	if r.step != "" {
		r.output = append(r.output, l)
	} else if !r.verbose && l != "" {
		fmt.Println("  | " + l)
	}
}

func (r *reporter) end(e vmtest.End) {
	if r.ended == nil {
		r.ended = map[string]bool{}
	}
	r.ended[e.Name] = true
	var passed, skipped []string
	run := 0 // where the running test's output starts
	for i, l := range r.output {
		if strings.HasPrefix(l, "=== RUN") {
			run = i
		}
		if m := resultLine.FindStringSubmatch(l); m != nil {
			switch m[1] {
			case "PASS":
				passed = append(passed, m[2])
			case "SKIP":
				skipped = append(skipped, m[2])
			case "FAIL":
				r.addRecap(e.Name, r.output[run:i+1])
			}
		}
	}
	note := e.Note
	if len(skipped) > 0 {
		note = strings.TrimSpace(note + " skipped in the VM: " + strings.Join(skipped, ","))
	}
	ok := e.Code == 0 && note == ""
	if !ok || (e.Name == survivalStep && !r.verbose) {
		for _, l := range r.output {
			fmt.Println("  | " + l)
		}
	}
	if len(passed) > 0 {
		fmt.Printf("passed in the VM: %s\n", strings.Join(passed, " "))
	}
	vm := fmt.Sprintf("(cgroup v2 VM; longest guest stall %s, host load %s)", e.Stall, loadAverage())
	if ok {
		fmt.Printf("ok  \t%s\t%s %s\n", e.Name, e.Elapsed, vm)
		return
	}
	r.failures++
	fmt.Printf("FAIL\t%s\t%s %s exit %d %s\n", e.Name, e.Elapsed, vm, e.Code, note)
}

// loadAverage is the host's one-minute load average: a busy host stalls
// an emulated guest.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func (r *reporter) addRecap(step string, lines []string) {
	if len(lines) > recapLines {
		lines = append([]string{"...", fmt.Sprintf("(%d lines left out)", len(lines)-recapLines)}, lines[len(lines)-recapLines:]...)
	}
	r.recap = append(r.recap, "in "+step+":")
	for _, l := range lines {
		r.recap = append(r.recap, "  | "+l)
	}
}

func (r *reporter) failf(format string, args ...any) {
	r.failures++
	fmt.Printf("FAIL\t"+format+"\n", args...)
}

// finish fails every step the guest never ended, after the output of the
// one it was running, if any.
func (r *reporter) finish() {
	if r.step != "" && !r.verbose {
		for _, l := range r.output {
			fmt.Println("  | " + l)
		}
	}
	for _, s := range r.plan.Steps {
		if !r.ended[s.Name] {
			r.failf("%s\t(cgroup v2 VM) did not finish", s.Name)
		}
	}
	if len(r.recap) > 0 {
		fmt.Println("runvm: the failed tests, again:")
		for _, l := range r.recap {
			fmt.Println(l)
		}
	}
}
