// Command fleet runs three guarded gRPC servers, each in a memory cgroup of
// its own with a real limit, one of them holding a large cache, and calls
// them from one grpc-go client, first balanced by round_robin and then by
// weighted_round_robin fed by the guard's per-call ORCA load reports. It
// prints what each balancer got refused, and by which server.
//
// Round robin sends every server the same share, so the server whose
// cache leaves least room refuses what the others could have served. The
// weighted balancer reads each answer's load report (application
// utilization: how full the guard judges the server) and sends less to the
// fuller server, before it must refuse.
//
//	go run ./examples/fleet           # a minute a balancer
//	go run ./examples/fleet -short    # 20 s a balancer, as CI runs it
//
// It needs root on Linux and a memory cgroup it can make children in.
// -check exits 1 unless the weighted fleet refused at most -max-ratio of
// what round robin refused and at most -max-refused of its calls, and no
// server was killed.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/oomguard/oomguard/internal/cgrouptest"
)

const mib = 1 << 20

type options struct {
	balancers   string
	servers     int
	rate        int
	duration    time.Duration
	deadline    time.Duration
	limit       int64
	cache       int64
	server      serverOptions
	check       bool
	maxRatio    float64
	maxRefused  float64
	short       bool
	serveOnly   bool
	cacheServer int64
}

func main() {
	var o options
	flag.StringVar(&o.balancers, "balancers", "round_robin,weighted_round_robin", "the balancers to compare, comma-separated, each on a fresh fleet")
	flag.IntVar(&o.servers, "servers", 3, "servers in the fleet; the first holds the cache")
	flag.IntVar(&o.rate, "rate", 300, "calls a second, open loop")
	flag.DurationVar(&o.duration, "duration", time.Minute, "how long each balancer is loaded")
	flag.BoolVar(&o.short, "short", false, "load each balancer for 20 s")
	flag.DurationVar(&o.deadline, "deadline", 5*time.Second, "each call's deadline")
	flag.Int64Var(&o.limit, "limit-mib", 256, "each server's memory limit, in MiB")
	flag.Int64Var(&o.cache, "cache-mib", 150, "the live cache the first server holds, in MiB")
	flag.Int64Var(&o.server.callBytes, "call-mib", 2, "the memory each call holds, in MiB")
	flag.DurationVar(&o.server.hold, "hold", 500*time.Millisecond, "how long each call holds its memory")
	flag.BoolVar(&o.check, "check", false, "exit 1 unless the weighted fleet met -max-ratio and -max-refused and nothing was killed")
	flag.Float64Var(&o.maxRatio, "max-ratio", 0.3, "-check: the most the weighted fleet may refuse, as a share of what round robin refused")
	flag.Float64Var(&o.maxRefused, "max-refused", 0.03, "-check: the most the weighted fleet may refuse, as a share of its calls")
	flag.BoolVar(&o.serveOnly, "serve", false, "run one server (the fleet starts itself so, in each cgroup)")
	flag.Int64Var(&o.cacheServer, "serve-cache-bytes", 0, "-serve: the live cache, in bytes")
	flag.Parse()
	o.server.callBytes *= mib

	if o.serveOnly {
		o.server.cacheBytes = o.cacheServer
		if err := serve(o.server); err != nil {
			fmt.Fprintln(os.Stderr, "fleet server:", err)
			os.Exit(1)
		}
		return
	}
	if o.short {
		o.duration = 20 * time.Second
	}
	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
	if o.check && !ok {
		os.Exit(1)
	}
}

// result is what one balancer got from a fresh fleet.
type result struct {
	balancer string
	tally    *tally
	addrs    []string // the servers' addresses, the cache's first
	killed   []int    // indexes of servers the kernel killed
}

func (r result) refusedShare() float64 {
	n := 0
	for _, v := range r.tally.refused {
		n += v
	}
	return float64(n) / float64(max(1, r.tally.sent))
}

func run(o options) (bool, error) {
	switch {
	case o.servers < 1:
		return false, fmt.Errorf("-servers = %d: want at least 1", o.servers)
	case o.rate < 1:
		return false, fmt.Errorf("-rate = %d: want at least 1 call a second", o.rate)
	case o.duration <= 0 || o.deadline <= 0 || o.server.hold < 0:
		return false, fmt.Errorf("-duration = %v, -deadline = %v, -hold = %v: want positive durations", o.duration, o.deadline, o.server.hold)
	case o.limit <= 0 || o.cache < 0 || o.cache >= o.limit || o.server.callBytes < 0:
		return false, fmt.Errorf("-limit-mib = %d, -cache-mib = %d, -call-mib = %d: want a positive limit above the cache", o.limit, o.cache, o.server.callBytes/mib)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := cgrouptest.RemoveStale(childPrefix); err != nil {
		return false, fmt.Errorf("remove stale cgroups of an earlier run: %w", err)
	}
	var results []result
	for _, b := range strings.Split(o.balancers, ",") {
		if _, ok := serviceConfigs[b]; !ok {
			return false, fmt.Errorf("-balancers: unknown balancer %q; want round_robin or weighted_round_robin", b)
		}
		r, err := runFleet(ctx, o, b)
		if err != nil {
			return false, fmt.Errorf("%s: %w", b, err)
		}
		results = append(results, r)
	}
	return report(o, results), nil
}

// childPrefix names the fleet's cgroups, so that a later run removes what
// a crashed one left.
const childPrefix = "oomguard-fleet-"

// runFleet starts a fresh fleet, loads it through the balancer, and stops
// it.
func runFleet(ctx context.Context, o options, balancer string) (result, error) {
	res := result{balancer: balancer}
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for i := range o.servers {
		cache := int64(0)
		if i == 0 {
			cache = o.cache * mib
		}
		s, err := startServer(fmt.Sprintf("%s%d-%s-%d", childPrefix, os.Getpid(), balancer, i), o, cache)
		if err != nil {
			return res, err
		}
		servers = append(servers, s)
		res.addrs = append(res.addrs, s.addr)
	}
	t, err := load(ctx, res.addrs, balancer, o.rate, o.duration, o.deadline)
	res.tally = t
	for i, s := range servers {
		if s.killed() {
			res.killed = append(res.killed, i)
		}
	}
	return res, err
}

// server is one fleet member, running in its own cgroup.
type server struct {
	cg     *cgrouptest.Child
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	state  *os.ProcessState
}

func startServer(name string, o options, cache int64) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cg, err := cgrouptest.Make(name, o.limit*mib)
	if err != nil {
		return nil, err
	}
	s := &server{cg: cg, exited: make(chan struct{})}
	s.cmd = cg.Command(self, "-serve",
		fmt.Sprintf("-serve-cache-bytes=%d", cache),
		fmt.Sprintf("-call-mib=%d", o.server.callBytes/mib),
		fmt.Sprintf("-hold=%v", o.server.hold))
	s.cmd.Stderr = os.Stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, errors.Join(err, cg.Remove())
	}
	if err := s.cmd.Start(); err != nil {
		return nil, errors.Join(err, cg.Remove())
	}
	go func() {
		_ = s.cmd.Wait()
		s.state = s.cmd.ProcessState
		close(s.exited)
	}()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "listening ") {
		s.stop()
		return nil, fmt.Errorf("server %s did not say where it listens: %q", name, lines.Text())
	}
	s.addr = strings.TrimPrefix(lines.Text(), "listening ")
	return s, nil
}

// killed reports a server that died of SIGKILL before the fleet stopped
// it: the kernel's OOM killer.
func (s *server) killed() bool {
	select {
	case <-s.exited:
	default:
		return false
	}
	ws, ok := s.state.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// stop ends the server, waits for it, and removes its cgroup.
func (s *server) stop() {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if err := s.cg.Remove(); err != nil {
		fmt.Fprintln(os.Stderr, "fleet: remove cgroup:", err)
	}
}

// report prints each balancer's refusals, by server, and says whether the
// weighted fleet met the bars.
func report(o options, results []result) bool {
	fmt.Printf("%d servers of %d MiB, the first holding %d MiB of cache; %d calls a second, each holding %d MiB for %v, for %v a balancer\n\n",
		o.servers, o.limit, o.cache, o.rate, o.server.callBytes/mib, o.server.hold, o.duration)
	fmt.Printf("%-22s %7s %7s %8s %8s  %s\n", "balancer", "sent", "served", "refused", "share", "served/refused by server (cache first)")
	ok := true
	byName := map[string]result{}
	for _, r := range results {
		byName[r.balancer] = r
		t := r.tally
		var per []string
		served, refused := 0, 0
		for _, a := range r.addrs {
			per = append(per, fmt.Sprintf("%d/%d", t.served[a], t.refused[a]))
			served += t.served[a]
			refused += t.refused[a]
		}
		fmt.Printf("%-22s %7d %7d %8d %7.2f%%  %s\n", r.balancer, t.sent, served, refused, 100*r.refusedShare(), strings.Join(per, "  "))
		if len(r.killed) > 0 {
			fmt.Printf("  killed: servers %v\n", r.killed)
			ok = false
		}
	}
	rr, okRR := byName["round_robin"]
	w, okW := byName["weighted_round_robin"]
	if !okRR || !okW {
		return ok
	}
	ratio := w.refusedShare() / max(rr.refusedShare(), 1e-9)
	fmt.Printf("\nweighted_round_robin refused %.2f%% of its calls (bar: at most %.0f%%), %.2f of what round_robin refused (bar: at most %.2f)\n",
		100*w.refusedShare(), 100*o.maxRefused, ratio, o.maxRatio)
	if rr.refusedShare() == 0 {
		fmt.Println("round_robin refused nothing: the fleet was not loaded past its cache's server, and the comparison says nothing")
		ok = false
	}
	if ratio > o.maxRatio || w.refusedShare() > o.maxRefused {
		ok = false
	}
	if ok {
		fmt.Println("PASS")
	} else {
		fmt.Println("FAIL")
	}
	return ok
}
