package main

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// A probe is the service at one constant rate, fresh, for a while.
type probe struct {
	Rate      float64
	P99       time.Duration // of successful responses
	Failed    int           // responses other than 200, and errors
	PeakUsage int64         // working set, bytes; -1 unknown
	Died      bool
	OK        bool // sustainable: see calibration
}

// calibration is the highest rate the service sustains in its limit: no
// failed request, p99 near the unloaded p99, and usage below
// usageCap of the limit. Every mode gets the same load built on Rate.
type calibration struct {
	Mode        string // the mode probed
	Rate        float64
	P99         time.Duration // at Rate
	UnloadedP99 time.Duration
	Probes      []probe
	// ScaledFrom is the uniform shape's rate that Rate was scaled from by
	// mean bytes held per request times hold; 0 if Rate was searched.
	ScaledFrom float64
	// Clients and Passes are a capacity's closed loop (calibrateCapacity):
	// its clients, and how many times it asked for every picture; 0 where
	// Rate was not so measured. ClassMeans is the mean latency of each
	// class of pictures there.
	Clients, Passes int
	ClassMeans      []time.Duration
}

// capacityTimeout is how long a client of calibrateCapacity waits for an
// answer: it measures how long each picture takes, and a deadline would
// cut the slowest short.
const capacityTimeout = time.Minute

// calibrateCapacity measures the capacity of a CPU-bound shape, the rate
// its load is a multiple of, and its calibration p99, in mode, in a fresh
// service: a closed loop of one client a CPU (cpuClients) asks for every
// picture of the mix in turn, passes times, after a request for the
// largest picture that warms the service (its heap grown to the largest
// decoding, its pages faulted in) and is not counted.
//
// One client a CPU keeps the CPUs busy without a queue, so each answer
// takes the picture's own time, and the loop's throughput is the most the
// service does: by Little's law, clients / mean latency, the latency of
// each class weighed by the class's share of the mix. Asking for every
// picture in turn, rather than drawing them, measures the rare large ones
// as surely as the small; weighing them by the mix makes the rate that of
// the mix the load sends. The p99 is the mix's, each answer weighed
// likewise: the 99th percentile of the latency the load's requests would
// see unqueued.
func (h *harness) calibrateCapacity(ctx context.Context, s shape, mode string, passes int) (calibration, error) {
	clients := s.cpuClients()
	cal := calibration{Mode: mode, Clients: clients, Passes: passes}
	in, err := h.launch(ctx, s, mode, 0, fmt.Sprintf("calibrate-%s-%s", s.key(), mode))
	if err != nil {
		return cal, err
	}
	gen := newPictureGen("http://"+in.svc.Addr+"/work", s.Pictures, sizeSeed, true)
	gen.turn = len(gen.all) - 1 // the largest first: the mix is smallest first
	client := closedLoopClient(clients, capacityTimeout)
	start := time.Now()
	since := func() time.Duration { return time.Since(start) }
	n := 1 + passes*len(gen.all)
	hits := closedLoop(ctx, clients, time.Duration(n)*capacityTimeout, int64(n), since, httpSender(client, gen))
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Compare(a.At, b.At) })
	hits = hits[min(len(hits), 1):] // the warm-up
	client.CloseIdleConnections()
	died := in.svc.Exited()
	in.stop()
	if err := ctx.Err(); err != nil {
		return cal, err
	}
	p := probe{PeakUsage: -1, Died: died}
	for _, ht := range hits {
		if !ht.ok() {
			p.Failed++
		}
	}
	rate, p99, means, err := capacity(s.Pictures, clients, hits)
	p.Rate, p.P99, p.OK = rate, p99, err == nil && !died && p.Failed == 0
	cal.ClassMeans = means
	cal.Probes = append(cal.Probes, p)
	switch {
	case died:
		return cal, fmt.Errorf("calibration: the %s service died under a closed loop of %d clients; see its log in the scratch directory (-keep)", mode, clients)
	case p.Failed > 0:
		return cal, fmt.Errorf("calibration: %d of %d requests failed under a closed loop of %d clients", p.Failed, len(hits), clients)
	case err != nil:
		return cal, fmt.Errorf("calibration: %w", err)
	}
	cal.Rate, cal.P99 = rate, p99
	return cal, nil
}

// capacity is the rate clients in a closed loop without think time
// sustain, by Little's law clients / mean latency, and the p99, from the
// successful hits, each class's latencies weighed by its share of mix;
// and each class's mean latency. Every class needs a success.
func capacity(mix pictureMix, clients int, hits []hit) (rate float64, p99 time.Duration, means []time.Duration, err error) {
	classes := mix.sizes()
	sums := make([]time.Duration, len(classes))
	counts := make([]int, len(classes))
	for _, h := range hits {
		if i := classes.class(h.Bytes); i >= 0 && h.ok() {
			sums[i] += h.Latency
			counts[i]++
		}
	}
	var mean float64 // seconds
	for i, c := range classes {
		if counts[i] == 0 {
			return 0, 0, nil, fmt.Errorf("no picture of class %s was served", c.Name)
		}
		means = append(means, sums[i]/time.Duration(counts[i]))
		mean += c.Weight * means[i].Seconds()
	}
	var lat []time.Duration
	var weights []float64
	for _, h := range hits {
		if i := classes.class(h.Bytes); i >= 0 && h.ok() {
			lat = append(lat, h.Latency)
			weights = append(weights, classes[i].Weight/float64(counts[i]))
		}
	}
	return round(float64(clients)/mean, 1), weightedQuantile(lat, weights, 0.99), means, nil
}

// weightedQuantile is the q-quantile of ds, each weighing its weight: the
// least d whose cumulative weight, from the smallest, reaches q of the
// total. 0 for none.
func weightedQuantile(ds []time.Duration, weights []float64, q float64) time.Duration {
	idx := make([]int, len(ds))
	var total float64
	for i := range idx {
		idx[i] = i
		total += weights[i]
	}
	if len(ds) == 0 || total <= 0 {
		return 0
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(ds[a], ds[b]) })
	var sum float64
	for _, i := range idx {
		if sum += weights[i]; sum >= q*total*(1-1e-12) {
			return ds[i]
		}
	}
	return ds[idx[len(idx)-1]]
}

// calibrate probes the service for shape s in mode at rising rates, each in
// a fresh process: doubling from startRate until a probe fails, then
// bisecting between the last rate that held and the first that did not.
func (h *harness) calibrate(ctx context.Context, s shape, mode string) (calibration, error) {
	cal := calibration{Mode: mode}
	unloaded, err := h.probe(ctx, s, mode, unloadedRate, math.Inf(1))
	if err != nil {
		return cal, err
	}
	if !unloaded.OK {
		return cal, fmt.Errorf("calibration: the service fails even unloaded at %v rps: %+v", unloadedRate, unloaded)
	}
	cal.UnloadedP99 = unloaded.P99
	maxP99 := time.Duration(float64(unloaded.P99)*p99Slack) + p99Margin
	fmt.Printf("calibration (%s mode): unloaded p99 %v; a rate holds with no failure, p99 <= %v and usage < %.0f%% of the limit\n",
		mode, unloaded.P99.Round(time.Millisecond), maxP99.Round(time.Millisecond), 100*usageCap)

	try := func(rate float64) (bool, error) {
		p, err := h.probe(ctx, s, mode, rate, float64(maxP99))
		if err != nil {
			return false, err
		}
		cal.Probes = append(cal.Probes, p)
		fmt.Printf("  %6.0f rps: p99 %8v  failed %5d  peak %s  %s\n", p.Rate, p.P99.Round(time.Millisecond), p.Failed, mib(p.PeakUsage), verdict(p.OK))
		if p.OK && p.Rate > cal.Rate {
			cal.Rate, cal.P99 = p.Rate, p.P99
		}
		return p.OK, nil
	}

	lo, hi := 0.0, 0.0
	// A slow machine (an emulated VM runs the service 10 to 30 times
	// slower) may not hold startRate: halve it, down to minRate, before
	// giving up.
	first := startRate
	for ; first > minRate; first /= 2 {
		ok, err := try(first)
		if err != nil {
			return cal, err
		}
		if ok {
			break
		}
	}
	if cal.Rate == 0 {
		return cal, fmt.Errorf("calibration: the service does not sustain even %v rps in %s", 2*first, mib(h.cfg.limit))
	}
	for rate := 2 * first; rate <= maxRate; rate *= 2 {
		ok, err := try(rate)
		if err != nil {
			return cal, err
		}
		if !ok {
			hi = rate
			break
		}
		lo = rate
	}
	lo = max(lo, cal.Rate)
	for i := 0; i < h.cfg.bisections && hi > 0 && hi-lo > lo/16; i++ {
		mid := math.Round((lo + hi) / 2)
		ok, err := try(mid)
		if err != nil {
			return cal, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return cal, nil
}

// calibrateScaled gives shape s the rate that holds as much memory as the
// uniform shape's calibrated rate does (scaled by mean bytes times hold),
// and checks it with one probe in mode, which also gives the shape's p99.
// If the probe fails, a second one tries scaledRetry of that rate; its
// outcome stands either way. The check has no latency bound: the shape's
// unloaded latency is its own.
func (h *harness) calibrateScaled(ctx context.Context, s shape, mode string, uniform shape, base calibration) (calibration, error) {
	rate := math.Round(base.Rate * uniform.byteSeconds() / s.byteSeconds())
	cal := calibration{Mode: mode, Rate: rate, ScaledFrom: base.Rate}
	for try := range 2 {
		p, err := h.probe(ctx, s, mode, rate, math.Inf(1))
		if err != nil {
			return cal, err
		}
		cal.Probes = append(cal.Probes, p)
		fmt.Printf("  %6.0f rps (scaled from %.0f): p99 %8v  failed %5d  peak %s  %s\n",
			p.Rate, base.Rate, p.P99.Round(time.Millisecond), p.Failed, mib(p.PeakUsage), verdict(p.OK))
		cal.Rate, cal.P99 = rate, p.P99
		if p.OK || try == 1 {
			break
		}
		rate = math.Round(rate * scaledRetry)
	}
	return cal, nil
}

// probe runs the service for shape s fresh in mode at rate for the probe
// duration. maxP99 (nanoseconds; +Inf for none) is the latency a
// sustainable rate keeps.
func (h *harness) probe(ctx context.Context, s shape, mode string, rate, maxP99 float64) (probe, error) {
	name := fmt.Sprintf("calibrate-%s-%s-%.0f", s.key(), mode, rate)
	in, err := h.launch(ctx, s, mode, 0, name)
	if err != nil {
		return probe{}, err
	}
	sched := schedule{{Name: phaseProbe, Rate: rate, Duration: h.cfg.probe}}
	hits, samples := h.drive(ctx, in, s, mode, time.Now(), sched, sizeSeed)
	died := in.svc.Exited()
	in.stop()
	if err := ctx.Err(); err != nil {
		return probe{}, err
	}

	p := probe{Rate: rate, Died: died, PeakUsage: peakUsage(samples)}
	var ok []time.Duration
	for _, ht := range hits {
		if ht.ok() {
			ok = append(ok, ht.Latency)
		} else {
			p.Failed++
		}
	}
	p.P99 = quantile(ok, 0.99)
	p.OK = !died && p.Failed == 0 && len(ok) > 0 && float64(p.P99) <= maxP99 &&
		p.PeakUsage >= 0 && float64(p.PeakUsage) < usageCap*float64(h.limit(s))
	return p, nil
}

func verdict(ok bool) string {
	if ok {
		return "holds"
	}
	return "too much"
}

// mib formats bytes as MiB; negative is unknown.
func mib(b int64) string {
	if b < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}
