package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

// The modes of the example service, in the order the harness runs them.
const (
	modeBare         = "bare"
	modeAutomemlimit = "automemlimit"
	modeOomguard     = "oomguard"
)

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
	svc     *service
	cg      *cgrouptest.Child // nil without enforcement
	reader  *cgroup.Reader    // nil without enforcement
	logPath string
}

// launch starts the service in mode, named name for its cgroup and log.
func (h *harness) launch(ctx context.Context, mode, name string) (*instance, error) {
	args := []string{
		"-mode", mode,
		"-work-bytes", strconv.Itoa(h.cfg.workBytes),
		"-work-hold", h.cfg.workHold.String(),
	}
	if mode == modeOomguard {
		args = append(args, "-dump-dir", filepath.Join(h.dir, name+"-profiles"))
	}
	if h.enf == nil {
		// Without a cgroup limit the guard must be told the limit.
		args = append(args, "-limit", strconv.FormatInt(h.cfg.limit, 10))
	}
	in := &instance{logPath: filepath.Join(h.dir, name+".log")}
	cmd := exec.Command(h.bin, args...)
	if h.enf != nil {
		cg, err := h.enf.child(name)
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
	svc, err := startService(ctx, cmd, in.logPath)
	if err != nil {
		in.release()
		return nil, fmt.Errorf("start %s service: %w", mode, err)
	}
	in.svc = svc
	return in, nil
}

// sampler returns a sampler for the instance.
func (in *instance) sampler(mode string) *sampler {
	s := &sampler{usage: in.reader, client: &http.Client{Timeout: time.Second}}
	if mode == modeOomguard {
		s.statusURL = "http://" + in.svc.DebugAddr + "/debug/guard/status"
	}
	return s
}

// stop ends the service and returns how it ended and the OOM kills its
// cgroup counted; -1 without a cgroup.
func (in *instance) stop() (code int, sigkill bool, oomKills int64) {
	code, sigkill = in.svc.stop(15 * time.Second)
	oomKills = -1
	if in.cg != nil {
		if n, ok := in.cg.ReadOOMKills(); ok {
			oomKills = n
		}
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

// A modeRun is everything measured for one mode: the summary that goes to
// latest.json and the raw series behind the chart.
type modeRun struct {
	Result   Result
	Schedule schedule
	Hits     []hit
	Samples  []sample
	DiedAt   time.Duration // since the attack started; -1 if it lived to the end
}

// runMode starts a fresh service in mode and drives the schedule at it:
// the base rate, the spike, then the base rate again.
func (h *harness) runMode(ctx context.Context, mode string, cal calibration) (modeRun, error) {
	in, err := h.launch(ctx, mode, mode)
	if err != nil {
		return modeRun{}, err
	}
	sched := schedule{
		{Name: phaseWarm, Rate: cal.Rate, Duration: h.cfg.warm},
		{Name: phaseSpike, Rate: spikeFactor * cal.Rate, Duration: h.cfg.spike},
		{Name: phaseRecovery, Rate: cal.Rate, Duration: h.cfg.recovery},
	}
	start := time.Now()
	hits, samples := h.drive(ctx, in, mode, start, sched, spikeFactor*cal.Rate)

	run := modeRun{Schedule: sched, Hits: hits, Samples: samples, DiedAt: -1}
	if in.svc.exited() {
		run.DiedAt = in.svc.exitAt.Sub(start)
	}
	code, sigkill, oomKills := in.stop()
	if err := ctx.Err(); err != nil {
		return modeRun{}, err
	}
	if err := writeSeries(filepath.Join(h.dir, mode+"-series.csv"), samples); err != nil {
		fmt.Println("warning:", err)
	}
	run.Result = summarize(mode, sched, cal, hits, samples, h.cfg.limit)
	run.Result.ExitCode = code
	run.Result.OOMKilled = sigkill && oomKills > 0
	if run.DiedAt >= 0 && !run.Result.OOMKilled {
		fmt.Printf("%s: the service died during the run (exit %d); see %s\n", mode, code, in.logPath)
	}
	return run, nil
}

// loadOptions bound the generator for a peak rate: enough workers to keep
// the arrival rate while every request waits out its timeout.
func (h *harness) loadOptions(peakRate float64) loadOptions {
	return loadOptions{
		Timeout:    requestTimeout,
		MaxWorkers: uint64(min(maxWorkers, max(64, peakRate*requestTimeout.Seconds()))),
	}
}

// drive sends the schedule's open-loop load to the instance's work
// endpoint while sampling its memory, and returns both once the load ends.
// peakRate sizes the attacker's workers and connections.
func (h *harness) drive(ctx context.Context, in *instance, mode string, start time.Time, sched schedule, peakRate float64) ([]hit, []sample) {
	sctx, stopSampling := context.WithCancel(ctx)
	var samples []sample
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		samples = in.sampler(mode).run(sctx, start, sampleEvery)
	}()
	hits := attack(ctx, start, "http://"+in.svc.Addr+"/work", sched, h.loadOptions(peakRate))
	stopSampling()
	wg.Wait()
	return hits, samples
}
