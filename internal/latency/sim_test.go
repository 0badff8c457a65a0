package latency

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// The simulation: a CPU-bound service on cpus processors that share their
// time equally among the work in flight (processor sharing), under
// open-loop arrivals, admitting by the Policy or by a fixed cap. It steps
// at the guard's quick pace and reads the line as the guard does.

const simStep = 2 * time.Millisecond

// class is one kind of request: the CPU time it needs and how often it
// comes.
type class struct {
	cpu    time.Duration
	io     time.Duration // waited before the CPU work, off the CPUs
	weight float64
}

// photoMix spans 40× in cost, the largest rare, as a thumbnail server's
// photos and scans do.
var photoMix = []class{
	{cpu: 10 * time.Millisecond, weight: 0.55},
	{cpu: 40 * time.Millisecond, weight: 0.30},
	{cpu: 120 * time.Millisecond, weight: 0.12},
	{cpu: 400 * time.Millisecond, weight: 0.03},
}

// cacheMix is a cache's requests: short, mostly waiting off the CPU.
var cacheMix = []class{
	{cpu: 300 * time.Microsecond, io: 5 * time.Millisecond, weight: 1},
}

// meanCPU is the mix's mean CPU time a request.
func meanCPU(mix []class) time.Duration {
	var m, w float64
	for _, c := range mix {
		m += c.weight * c.cpu.Seconds()
		w += c.weight
	}
	return seconds(m / w)
}

type simConfig struct {
	cpus     float64 // processors the runtime schedules on (GOMAXPROCS)
	quota    float64 // CPUs the quota allows; 0: cpus
	mix      []class
	rate     float64 // arrivals a second
	duration time.Duration
	deadline time.Duration // the clients give up after it
	fixedCap int64         // > 0: a fixed cap instead of the Policy
	seed     uint64
	// calm is a first phase at calmRate, uncounted, as a service starts
	// before its load comes: the Policy learns the uncongested time in
	// flight there.
	calm     time.Duration
	calmRate float64
	// fanout is the goroutines each request's CPU work runs on at once,
	// as an image library that resizes on every P; 0 means 1.
	fanout int
	// refuseCPU is the CPU time answering one refusal takes, on a
	// goroutine of its own that shares the CPUs with the work.
	refuseCPU time.Duration
	// background is goroutines that always wait for a P beside the work,
	// as a service's own timers and loops do; read in the line only.
	background float64
	// clients > 0 replaces the open-loop arrivals with that many clients
	// in a closed loop, as hey and wrk drive a service: each sends its
	// next request as soon as its last is answered, refused or given up
	// on at the deadline. Work given up on still runs to its end.
	clients int
}

// substeps is how finely the CPUs' sharing is stepped between two of the
// guard's readings: finely enough that the shortest request's CPU time
// spans several steps.
func (c simConfig) substeps() int {
	least := c.mix[0].cpu
	for _, k := range c.mix {
		least = min(least, k.cpu)
	}
	return max(1, min(40, int(4*simStep/least)))
}

type job struct {
	client  int  // the closed loop's client waiting for it; -1: none
	counted bool // arrived after the calm phase
	class   int
	io      float64 // seconds of waiting off the CPUs left
	left    float64 // CPU seconds left
	arrived time.Duration
}

// A refusal is the answer to one refused request, on a goroutine of its
// own: the CPU seconds it still needs, and its closed loop's client (-1:
// none).
type refusal struct {
	left   float64
	client int
}

// refusedJob marks a closed loop's client waiting for its refusal.
var refusedJob = &job{}

type simResult struct {
	offered, served, inTime [8]int // by class
	goodput                 float64
	p99                     time.Duration // of admitted work that finished
	meanLimit               float64
	took                    []time.Duration
}

func (r simResult) total(a [8]int) int {
	n := 0
	for _, v := range a {
		n += v
	}
	return n
}

// share is the share of class c's requests served within the deadline.
func (r simResult) share(c int) float64 {
	if r.offered[c] == 0 {
		return 0
	}
	return float64(r.inTime[c]) / float64(r.offered[c])
}

func simulate(cfg simConfig) simResult {
	rng := rand.New(rand.NewPCG(cfg.seed, 1))
	quota := cfg.quota
	if quota == 0 {
		quota = cfg.cpus
	}
	capacity := math.Min(cfg.cpus, quota)
	var (
		p         Policy
		res       simResult
		flight    []*job
		done      uint64
		refused   uint64
		throttled time.Duration
		idle      time.Duration
		next      time.Duration
		limitSum  float64
		steps     int
		took      []time.Duration
		ages      []time.Duration
		dec       Decision
		overhead  []refusal // the refusals being answered
	)
	fan := float64(max(1, cfg.fanout))
	weights := 0.0
	for _, c := range cfg.mix {
		weights += c.weight
	}
	pick := func() int {
		x := rng.Float64() * weights
		for i, c := range cfg.mix {
			if x < c.weight {
				return i
			}
			x -= c.weight
		}
		return len(cfg.mix) - 1
	}
	rateAt := func(t time.Duration) float64 {
		if t < cfg.calm {
			return cfg.calmRate
		}
		return cfg.rate
	}
	next = time.Duration(rng.ExpFloat64() / rateAt(0) * float64(time.Second))
	k := cfg.substeps()
	sub := simStep / time.Duration(k)
	// The closed loop's clients: the work each waits for (nil: none), and
	// when each sends next.
	waiting := make([]*job, cfg.clients)
	due := make([]time.Duration, cfg.clients)
	// send offers one request at t, from client (-1: open loop).
	send := func(t time.Duration, client int) {
		c := pick()
		counted := t >= cfg.calm
		if counted {
			res.offered[c]++
		}
		limit := dec.Limit
		if cfg.fixedCap > 0 {
			limit = cfg.fixedCap
		}
		if limit > 0 && int64(len(flight)) >= limit {
			refused++
			switch {
			case cfg.refuseCPU > 0:
				overhead = append(overhead, refusal{left: cfg.refuseCPU.Seconds(), client: client})
				if client >= 0 {
					waiting[client] = refusedJob // until the refusal is answered
				}
			case client >= 0:
				due[client] = t + sub
			}
			return
		}
		j := &job{client: client, counted: counted, class: c, io: cfg.mix[c].io.Seconds(), left: cfg.mix[c].cpu.Seconds(), arrived: t}
		flight = append(flight, j)
		if client >= 0 {
			waiting[client] = j
		}
	}
	for i, now := 1, time.Duration(0); now < cfg.calm+cfg.duration; i, now = i+1, now+sub {
		if cfg.clients > 0 {
			for c := range waiting {
				if j := waiting[c]; j != nil && j != refusedJob && now-j.arrived >= cfg.deadline {
					waiting[c], due[c] = nil, now // given up on; the work runs on
				}
				if waiting[c] == nil && due[c] <= now {
					send(now, c)
				}
			}
		} else {
			for next <= now {
				send(next, -1)
				next += time.Duration(rng.ExpFloat64() / rateAt(next) * float64(time.Second))
			}
		}
		// Processor sharing: each goroutine, a request's past its wait or
		// a refusal's, gets an equal share of the CPUs, at most one.
		n := 0.0
		for _, j := range flight {
			if j.io <= 0 {
				n += fan
			}
		}
		n += float64(len(overhead))
		runnable := math.Max(0, n-cfg.cpus)
		share := math.Min(1, capacity/math.Max(n, 1)) * sub.Seconds()
		// A refusal uses what it needs of its share; the work gets what
		// the refusals leave.
		if len(overhead) > 0 {
			spare, work := 0.0, n-float64(len(overhead))
			kept := overhead[:0]
			for _, o := range overhead {
				u := math.Min(o.left, share)
				spare += share - u
				if o.left -= u; o.left > 1e-12 {
					kept = append(kept, o)
				} else if o.client >= 0 {
					waiting[o.client], due[o.client] = nil, now+sub // answered: again
				}
			}
			overhead = kept
			if work > 0 {
				share = math.Min(sub.Seconds(), share+spare/work)
			}
		}
		if want := math.Min(n, cfg.cpus); want > quota {
			throttled += seconds((want - quota) * sub.Seconds())
		}
		idle += seconds(math.Max(0, math.Min(cfg.cpus, quota)-n) * sub.Seconds())
		if len(flight) > 0 {
			each := fan * share
			kept := flight[:0]
			for _, j := range flight {
				if j.io > 0 {
					j.io -= sub.Seconds()
					kept = append(kept, j)
					continue
				}
				j.left -= each
				if j.left > 1e-12 {
					kept = append(kept, j)
					continue
				}
				d := now + sub - j.arrived
				done++
				took = append(took, d)
				if j.client >= 0 && waiting[j.client] == j {
					waiting[j.client], due[j.client] = nil, now+sub
				}
				if !j.counted {
					continue
				}
				res.served[j.class]++
				res.took = append(res.took, d)
				if d <= cfg.deadline {
					res.inTime[j.class]++
				}
			}
			flight = kept
		}
		if i%k != 0 {
			continue
		}
		// The guard's reading: the line as it is at this moment.
		ages = ages[:0]
		for _, j := range flight {
			ages = append(ages, now+sub-j.arrived)
		}
		dec = p.OnSample(Reading{
			Now:       time.Unix(0, 0).Add(now + sub),
			CPUs:      capacity,
			InFlight:  int64(len(flight)),
			Done:      done,
			Refused:   refused,
			Runnable:  runnable + cfg.background,
			Throttled: throttled,
			Idle:      idle,
			Took:      took,
			Ages:      ages,
		})
		took = took[:0]
		limitSum += float64(dec.Limit)
		steps++
	}
	res.goodput = float64(res.total(res.inTime)) / cfg.duration.Seconds()
	res.meanLimit = limitSum / float64(steps)
	if len(res.took) > 0 {
		s := slices.Clone(res.took)
		slices.Sort(s)
		res.p99 = s[int(0.99*float64(len(s)-1))]
	}
	return res
}
