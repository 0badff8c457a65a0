package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oomguard/oomguard/bench/internal/exampleservice"
	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

// The modes, in the order the harness runs them. oracle is automemlimit
// with the best fixed in-flight cap; oomguard+cost declares each request's
// bytes through guard.Config.Cost.
const (
	modeBare         = "bare"
	modeAutomemlimit = "automemlimit"
	modeOracle       = "oracle"
	modeOomguard     = "oomguard"
	modeOomguardCost = "oomguard+cost"
	// modeOomguardTrace is oomguard with the execution-trace flight
	// recorder on: not in the matrix by default, named with -modes to
	// measure what the recorder costs.
	modeOomguardTrace = "oomguard+trace"
)

// modeNames is every mode, in the reports' order; defaultModes those the
// matrix runs unless -modes says otherwise.
var (
	modeNames    = []string{modeBare, modeAutomemlimit, modeOracle, modeOomguard, modeOomguardCost, modeOomguardTrace}
	defaultModes = modeNames[:5]
)

// guarded reports whether mode runs the guard.
func guarded(mode string) bool {
	return mode == modeOomguard || mode == modeOomguardCost || mode == modeOomguardTrace
}

// serviceArgs are the example service's flags for mode; maxInFlight is
// the oracle's cap.
func serviceArgs(mode string, maxInFlight int) []string {
	switch mode {
	case modeOracle:
		return []string{"-mode", modeAutomemlimit, "-max-inflight", strconv.Itoa(maxInFlight)}
	case modeOomguardCost:
		return []string{"-mode", modeOomguard, "-cost"}
	case modeOomguardTrace:
		return []string{"-mode", modeOomguard, "-flight-recorder"}
	}
	return []string{"-mode", mode}
}

// harness holds what every run shares: the built service, the work
// directory and, where the kernel can enforce the limit, the enforcer.
type harness struct {
	cfg config
	bin string
	dir string    // scratch: service logs, heap profiles
	enf *enforcer // nil: no kernel enforcement, the guard alone knows the limit
}

// An instance is the service running in one mode, in its own child cgroup
// when the limit is enforced.
type instance struct {
	svc     *exampleservice.Process
	cg      *cgrouptest.Child // nil without enforcement
	reader  *cgroup.Reader    // nil without enforcement
	logPath string
	// throttling is what the kernel counted of the CPU quota by the end,
	// read by stop; ok false without a quota.
	throttling   cgroup.CPUStat
	throttlingOK bool
}

// limit is the memory limit of shape s's service, in bytes.
func (h *harness) limit(s shape) int64 { return cmp.Or(s.Limit, h.cfg.limit) }

// launch starts the service for shape s in mode (maxInFlight: the
// oracle's cap), named name for its cgroup and log.
func (h *harness) launch(ctx context.Context, s shape, mode string, maxInFlight int, name string) (*instance, error) {
	args := append(serviceArgs(mode, maxInFlight),
		"-work-bytes", strconv.Itoa(s.Bytes),
		"-work-hold", s.Hold.String(),
	)
	if len(s.Mix) > 0 {
		args = append(args, "-max-bytes", strconv.FormatInt(s.Mix.largest(), 10))
	}
	if len(s.Pictures) > 0 {
		// Drawn by the first service of the run, read by the others.
		args = append(args, "-picture-cache", filepath.Join(h.dir, "pictures"))
	}
	args = append(args, s.Args...)
	if guarded(mode) {
		args = append(args, "-dump-dir", filepath.Join(h.dir, name+"-profiles"))
	}
	if h.enf == nil {
		// Without a cgroup limit the guard must be told the limit.
		args = append(args, "-limit", strconv.FormatInt(h.limit(s), 10))
	}
	in := &instance{logPath: filepath.Join(h.dir, name+".log")}
	cmd := exec.Command(h.bin, args...)
	if h.enf != nil {
		cg, err := h.enf.child(name, h.limit(s))
		if err != nil {
			return nil, err
		}
		in.cg = cg
		cmd = cg.Command(h.bin, args...)
		if in.reader, err = cg.NewReader(); err != nil {
			cg.Remove()
			return nil, fmt.Errorf("read usage of %s: %w", cg.Dir, err)
		}
	}
	if len(h.cfg.serviceEnv) > 0 {
		cmd.Env = append(exampleservice.Env(), h.cfg.serviceEnv...)
	}
	svc, err := exampleservice.Start(ctx, cmd, in.logPath)
	if err != nil {
		if early := (*exampleservice.ExitedEarly)(nil); errors.As(err, &early) {
			d := &startupDeath{ExitedEarly: early, oomKills: -1}
			if in.cg != nil {
				if n, ok := in.cg.ReadOOMKills(); ok {
					d.oomKills = n
				}
			}
			err = d
		}
		in.release()
		return nil, fmt.Errorf("start %s service: %w", mode, err)
	}
	in.svc = svc
	if s.CPUs > 0 {
		// The quota starts once the service listens: drawing its
		// pictures at start-up would take a fifth of a CPU the better
		// part of a minute, and start-up is not what the shape measures.
		err := errors.New("no cgroup to set a CPU quota in")
		if in.cg != nil {
			err = in.cg.LimitCPU(s.CPUs)
		}
		if err != nil {
			in.stop()
			return nil, fmt.Errorf("%s service: CPU quota of %g: %w", mode, s.CPUs, err)
		}
	}
	return in, nil
}

// sampler returns a sampler for the instance.
func (in *instance) sampler(mode string) *sampler {
	s := &sampler{usage: in.reader, client: &http.Client{Timeout: time.Second}}
	if guarded(mode) {
		s.statusURL = "http://" + in.svc.DebugAddr + "/debug/guard/status"
	}
	return s
}

// stop ends the service and returns how it ended and the OOM kills its
// cgroup counted; -1 without a cgroup.
func (in *instance) stop() (code int, sigkill bool, oomKills int64) {
	code, sigkill = in.svc.Stop(15 * time.Second)
	oomKills = -1
	if in.cg != nil {
		if n, ok := in.cg.ReadOOMKills(); ok {
			oomKills = n
		}
		in.throttling, in.throttlingOK = in.cg.Throttling()
	}
	in.release()
	return code, sigkill, oomKills
}

// release closes the usage reader and removes the cgroup, killing what
// still runs in it.
func (in *instance) release() {
	if in.reader != nil {
		in.reader.Close()
	}
	if in.cg != nil {
		if err := in.cg.Remove(); err != nil {
			fmt.Println("warning:", err)
		}
	}
}

// A shapeRun is one shape's part of the matrix: its load, the oracle's
// search, and a run per mode.
type shapeRun struct {
	Shape        shape
	BaseRate     float64     // requests per second
	Calibration  calibration // of this shape's rate
	Schedule     schedule
	OracleCap    int // 0 without the oracle
	OracleProbes []capProbe
	Runs         []modeRun
	Wall         time.Duration // the shape's whole time: calibration, probes and every run
}

// A modeRun is everything measured for one mode: the summary that goes to
// latest.json and the raw series behind the chart.
type modeRun struct {
	Result   Result
	Schedule schedule
	Hits     []hit
	Samples  []sample
	DiedAt   time.Duration // since the load started; -1 if it lived to the end
}

// runOnce starts a fresh service for sr's shape in mode (maxInFlight:
// the oracle's cap) and drives sched at it, the sizes of a mix drawn from
// seed. A service killed before it listens is a run that died at 0; one
// that exits otherwise is an error.
func (h *harness) runOnce(ctx context.Context, sr *shapeRun, mode string, maxInFlight int, name string, sched schedule, seed uint64) (modeRun, error) {
	s := sr.Shape
	run := modeRun{Schedule: sched, DiedAt: -1}
	var cpu float64
	finish := func(code int, sigkill bool, oomKills int64) {
		run.Result = summarize(mode, s, sched, sr.BaseRate, sr.Calibration.P99, run.Hits, run.Samples, h.limit(s))
		run.Result.CPUSeconds = round(cpu, 2)
		run.Result.InFlightCap = maxInFlight
		run.Result.ExitCode = code
		run.Result.OOMKilled = sigkill && oomKills > 0
		if run.DiedAt >= 0 {
			run.Result.DiedAtSeconds = ptr(round(run.DiedAt.Seconds(), 1))
			if run.Result.RecoverySeconds != nil {
				run.Result.RecoverySeconds = ptr(-1.0) // the load stopped when it died
			}
		}
	}
	in, err := h.launch(ctx, s, mode, maxInFlight, name)
	var early *startupDeath
	if errors.As(err, &early) && early.SIGKILL { // killed at start-up, as while filling a cache
		fmt.Printf("  %s: the service died before it listened (exit %d); see %s\n", mode, early.Code, early.Log)
		run.DiedAt = 0
		finish(early.Code, early.SIGKILL, early.oomKills)
		return run, nil
	} else if err != nil {
		return run, err
	}
	start := time.Now()
	run.Hits, run.Samples = h.drive(ctx, in, s, mode, start, sched, seed)
	if in.svc.Exited() {
		run.DiedAt = in.svc.ExitedAt().Sub(start)
	}
	code, sigkill, oomKills := in.stop()
	if err := ctx.Err(); err != nil {
		return modeRun{}, err
	}
	if st := in.svc.State(); st != nil {
		cpu = (st.UserTime() + st.SystemTime()).Seconds()
	}
	if err := writeSeries(filepath.Join(h.dir, name+"-series.csv"), run.Samples); err != nil {
		fmt.Println("warning:", err)
	}
	finish(code, sigkill, oomKills)
	if t := in.throttling; in.throttlingOK && t.Periods > 0 {
		run.Result.CPUThrottledShare = ptr(round(float64(t.ThrottledPeriods)/float64(t.Periods), 3))
	}
	if run.DiedAt >= 0 && !run.Result.OOMKilled {
		fmt.Printf("  %s: the service died during the run (exit %d); see %s\n", mode, code, in.logPath)
	}
	return run, nil
}

// runMode is one mode's run of sr's full schedule.
func (h *harness) runMode(ctx context.Context, sr *shapeRun, mode string, round int) (modeRun, error) {
	maxInFlight := 0
	if mode == modeOracle {
		maxInFlight = sr.OracleCap
	}
	name := sr.Shape.key() + "-" + strings.ReplaceAll(mode, "+", "-")
	if round > 1 {
		name += "-" + strconv.Itoa(round)
	}
	return h.runOnce(ctx, sr, mode, maxInFlight, name, sr.Schedule, sizeSeed)
}

// loadOptionsFor bounds the generator for a peak rate and a client
// timeout: enough workers to keep the arrival rate while every request
// waits out its timeout.
func loadOptionsFor(peakRate float64, timeout time.Duration) loadOptions {
	return loadOptions{
		Timeout:    timeout,
		MaxWorkers: uint64(min(maxWorkers, max(64, peakRate*timeout.Seconds()))),
	}
}

// drive sends the schedule's load to the instance's work endpoint while
// sampling its memory, and returns both once the load ends; a mix's sizes
// are drawn from seed. Open-loop phases go through vegeta, closed-loop
// phases through closedLoop; the load stops early if the service dies.
func (h *harness) drive(ctx context.Context, in *instance, s shape, mode string, start time.Time, sched schedule, seed uint64) ([]hit, []sample) {
	sctx, stopSampling := context.WithCancel(ctx)
	var samples []sample
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		samples = in.sampler(mode).run(sctx, start, sampleEvery)
	}()

	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	go func() {
		select {
		case <-in.svc.Done():
			stopLoad()
		case <-lctx.Done():
		}
	}()
	gen := s.requestGen("http://"+in.svc.Addr+"/work", seed)
	var hits []hit
	var offset time.Duration
	for _, seg := range sched.segments() {
		if lctx.Err() != nil {
			break
		}
		if wait := time.Until(start.Add(offset)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-lctx.Done():
			}
		}
		if seg[0].Conns > 0 {
			p := seg[0]
			client := closedLoopClient(p.Conns, s.timeout())
			since := func() time.Duration { return time.Since(start) }
			hits = append(hits, closedLoop(lctx, p.Conns, offset+p.Duration, maxClosedLoopHits, since, httpSender(client, gen))...)
			client.CloseIdleConnections()
		} else {
			hits = append(hits, attack(lctx, start, gen, seg, loadOptionsFor(seg.peakRate(), s.timeout()))...)
		}
		offset += seg.Duration()
	}
	stopSampling()
	wg.Wait()
	return hits, samples
}
