package main

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The shapes of the matrix, numbered as in issues 9, 14 and 31.
const (
	shapeUniform   = "uniform"
	shapeHeavyTail = "heavytail"
	shapeBurst     = "burst"
	shapeUploads   = "uploads"
	shapeOffHeap   = "offheap"
	shapeLeak      = "leak"
	shapeCache     = "cache"
	shapeDecode    = "decode"
	shapeQuota     = "quota"
)

var shapeNames = []string{shapeUniform, shapeHeavyTail, shapeBurst, shapeUploads, shapeOffHeap, shapeLeak, shapeCache, shapeDecode, shapeQuota}

// The phases of a run. The figures come from one of them, the measured
// phase: the spike, the burst, or the steady load.
const (
	phaseIdle     = "idle"
	phaseWarm     = "base"
	phaseSpike    = "spike"
	phaseBurst    = "burst"
	phaseRecovery = "recovery"
	phaseSteady   = "steady"
	phaseOverload = "overload"
	phaseProbe    = "probe"
)

// The fixed loads of the leak and cache shapes.
const (
	leakRate      = 20.0 // light load: requests per second
	leakBytes     = 16 << 10
	leakHold      = 10 * time.Millisecond
	leakMaxFactor = 1.25 // the run lasts this many times limit / leak rate at most
	leakMax       = 2 * time.Minute
	cacheBytes    = 256 << 10
	cacheHold     = 5 * time.Millisecond
	uploadHold    = time.Second
)

// warmShare is the warm-up of a CPU-bound shape, as a share of its
// capacity: a load it serves without a queue.
const warmShare = 0.5

// A shape is one workload of the matrix: what the service does per request
// and how the harness loads it.
type shape struct {
	Name   string
	Number int      // 1-9
	Label  string   // Name with its parameters where one name has several runs
	Args   []string // service flags that make the shape, beyond -mode and the work flags
	Bytes  int      // held per request when there is no mix
	Mix    sizeMix  // request sizes chosen by the harness; nil: Bytes
	Upload bool     // sizes go as POST bodies
	Hold   time.Duration

	// Pictures are the decode shapes' requests, pictures that the service
	// decodes anew, in place of sizes to hold: the work is bound by CPU.
	Pictures pictureMix
	// Factor is a CPU-bound shape's load, its overload phase's rate as a
	// multiple of its capacity (see calibrateCapacity); 0 for the others.
	Factor float64
	// Deadline is how long a client waits for its answer (vegeta's
	// timeout): a 200 after it is not served. 0 means requestTimeout, and
	// figures without a deadline.
	Deadline time.Duration
	// CPUs is the CPU quota the service runs under, in CPUs; 0 none.
	CPUs float64
	// Limit is the memory limit of the shape's service, in bytes; 0 means
	// -limit-mib.
	Limit int64
	// Stretch lengthens the shape's warm-up, overload and oracle probes by
	// this factor: a shape of a low rate needs longer phases for as many
	// requests. 0 means 1.
	Stretch float64
	// Only is the modes the shape runs, where not every one: nil runs all.
	Only []string

	Conns     int     // closed-loop connections of the burst; 0: open loop
	FixedRate float64 // the rate of the leak and cache shapes; 0: calibrated
	Reference string  // the mode the others are compared with; "" none
	// Rounds is how many times every mode runs, one round of all the modes
	// after another; each compares with the reference of its own round.
	// The cache's p99 moves by half between two runs of one mode: one run
	// cannot tell a 1.2× from the noise. 0 means 1.
	Rounds int
}

// key names the shape's files: its label with dashes.
func (s shape) key() string {
	return strings.NewReplacer(" ", "-", ",", "", "/", "-").Replace(s.Label)
}

// meanBytes is the mean memory a request holds; of a decode shape, the
// mean pixelBytes.
func (s shape) meanBytes() float64 {
	switch {
	case len(s.Pictures) > 0:
		return s.Pictures.mean()
	case len(s.Mix) > 0:
		return s.Mix.mean()
	}
	return float64(s.Bytes)
}

// classes is the size classes whose requests the figures count apart:
// the mix's, or the pictures' by pixelBytes; nil without.
func (s shape) classes() sizeMix {
	if len(s.Pictures) > 0 {
		return s.Pictures.sizes()
	}
	return s.Mix
}

// timeout is how long a client waits for an answer.
func (s shape) timeout() time.Duration { return cmp.Or(s.Deadline, requestTimeout) }

// cpuClients is how many clients at once keep the service's CPUs busy
// without a queue: one a CPU, of its quota or else of the machine.
func (s shape) cpuClients() int {
	if s.CPUs > 0 {
		return max(1, int(math.Ceil(s.CPUs)))
	}
	return runtime.NumCPU()
}

// byteSeconds is the mean memory a request holds times how long.
func (s shape) byteSeconds() float64 { return s.meanBytes() * s.Hold.Seconds() }

// calibrated reports whether the shape's rate comes from calibration.
func (s shape) calibrated() bool { return s.FixedRate == 0 }

// scaled reports whether the shape's rate comes from the uniform shape's
// calibrated rate: all calibrated shapes but the CPU-bound, whose rate is
// their own capacity.
func (s shape) scaled() bool { return s.calibrated() && s.Factor == 0 }

// measured is the name of the phase whose requests the figures count.
func (s shape) measured() string {
	switch {
	case s.Conns > 0:
		return phaseBurst
	case s.Factor > 0:
		return phaseOverload
	case !s.calibrated():
		return phaseSteady
	}
	return phaseSpike
}

// describe is one line on what a request does and how the load comes.
func (s shape) describe() string {
	var b strings.Builder
	if len(s.Pictures) > 0 {
		fmt.Fprintf(&b, "GET ?img=K decodes picture K anew (imaging, image/jpeg and image/png) and answers its thumbnail of %d pixels; K: %s; mean %s decoded at 4 bytes a pixel",
			thumbPixels, s.Pictures.describe(), size(int64(s.meanBytes())))
		if s.Deadline > 0 {
			fmt.Fprintf(&b, "; clients wait %v", s.Deadline)
		}
		if s.CPUs > 0 {
			fmt.Fprintf(&b, "; CPU quota %g CPU", s.CPUs)
		}
		if s.Limit > 0 {
			fmt.Fprintf(&b, "; memory limit %s", mib(s.Limit))
		}
		return b.String()
	}
	if len(s.Mix) > 0 {
		verb := "GET ?bytes=N holds N"
		if s.Upload {
			verb = "POST of N bytes read into memory"
		}
		var parts []string
		for _, c := range s.Mix {
			parts = append(parts, fmt.Sprintf("%g%% %s–%s", 100*c.Weight, size(c.Min), size(c.Max)))
		}
		fmt.Fprintf(&b, "%s, N: %s (mean %s), held %v", verb, strings.Join(parts, ", "), size(int64(s.meanBytes())), s.Hold)
	} else {
		fmt.Fprintf(&b, "each request holds %s for %v", size(int64(s.Bytes)), s.Hold)
	}
	if len(s.Args) > 0 {
		fmt.Fprintf(&b, "; service flags %s", strings.Join(s.Args, " "))
	}
	return b.String()
}

// The durations of a run's phases.
type durations struct {
	warm, spike, recovery time.Duration // spike shapes
	idle                  time.Duration // before the burst
	cacheWarm, steady     time.Duration // cache
	oracleProbe           time.Duration
}

// stretched is d with the shape's Stretch.
func (s shape) stretched(d durations) durations {
	if s.Stretch <= 0 || s.Stretch == 1 {
		return d
	}
	f := func(t time.Duration) time.Duration { return time.Duration(float64(t) * s.Stretch).Round(time.Second) }
	d.warm, d.spike, d.oracleProbe = f(d.warm), f(d.spike), f(d.oracleProbe)
	return d
}

// schedule is the load of a run at base rate base (requests per second).
func (s shape) schedule(d durations, base float64, limit int64) schedule {
	d = s.stretched(d)
	switch {
	case s.Conns > 0:
		return schedule{{Name: phaseIdle, Duration: d.idle}, {Name: phaseBurst, Conns: s.Conns, Duration: d.spike}}
	case s.Factor > 0:
		return schedule{{Name: phaseWarm, Rate: warmShare * base, Duration: d.warm}, {Name: phaseOverload, Rate: s.Factor * base, Duration: d.spike}}
	case s.Name == shapeLeak:
		return schedule{{Name: phaseSteady, Rate: base, Duration: s.leakDuration(limit)}}
	case !s.calibrated():
		return schedule{{Name: phaseWarm, Rate: base, Duration: d.cacheWarm}, {Name: phaseSteady, Rate: base, Duration: d.steady}}
	}
	return schedule{
		{Name: phaseWarm, Rate: base, Duration: d.warm},
		{Name: phaseSpike, Rate: spikeFactor * base, Duration: d.spike},
		{Name: phaseRecovery, Rate: base, Duration: d.recovery},
	}
}

// probeSchedule is the load of one oracle probe: the spike or the
// overload from the start, or the burst from idle.
func (s shape) probeSchedule(d durations, base float64) schedule {
	d = s.stretched(d)
	switch {
	case s.Conns > 0:
		return schedule{{Name: phaseBurst, Conns: s.Conns, Duration: d.oracleProbe}}
	case s.Factor > 0:
		return schedule{{Name: phaseProbe, Rate: s.Factor * base, Duration: d.oracleProbe}}
	}
	return schedule{{Name: phaseProbe, Rate: spikeFactor * base, Duration: d.oracleProbe}}
}

// spikeSchedule is the full load's spike alone, at its length: the
// oracle's lives but the last (see settleCap).
func (s shape) spikeSchedule(d durations, base float64) schedule {
	sched := s.probeSchedule(d, base)
	sched[0].Duration = s.stretched(d).spike
	return sched
}

// leakDuration is how long the leak runs at most: long enough for the leak
// to pass the limit.
func (s shape) leakDuration(limit int64) time.Duration {
	rate := leakRateOf(s.Args)
	if rate <= 0 {
		return leakMax
	}
	d := time.Duration(leakMaxFactor * float64(limit) / float64(rate) * float64(time.Second))
	return min(leakMax, d.Round(time.Second))
}

// leakRateOf is the -leak-rate among service flags; 0 if absent.
func leakRateOf(args []string) int64 {
	for i, a := range args[:max(0, len(args)-1)] {
		if a == "-leak-rate" {
			n, _ := strconv.ParseInt(args[i+1], 10, 64)
			return n
		}
	}
	return 0
}

// matrixOptions are the command line's say on the shapes.
type matrixOptions struct {
	shapes      []string // names, in order
	workBytes   int
	workHold    time.Duration
	conns       int
	leakRate    int64 // bytes per second
	cacheFracs  []float64
	cacheRates  []float64
	cacheRounds int
	// cacheBytes and cacheHold are the cache shape's requests; 0 means
	// cacheBytes and cacheHold. cacheRebuild is the block its service
	// rebuilds beside them every 5 s (-rebuild-bytes); 0 none.
	cacheBytes   int
	cacheHold    time.Duration
	cacheRebuild int64
	// decodeLoads are the decode shape's loads, multiples of its capacity:
	// one run of the shape each. decodeLimit is the memory limit of the
	// decode and quota shapes, decodeDeadline the decode shape's client
	// deadline. quotaCPUs is the quota shape's CPU quota and quotaLoad its
	// load; its deadline is decodeDeadline / quotaCPUs (see matrix), its
	// phases quotaStretch times as long. cpuModes, where not nil, are the
	// only modes the decode and quota shapes run, cpuRounds the decode
	// shape's rounds and quotaRounds the quota shape's.
	decodeLoads    []float64
	decodeLimit    int64
	decodeDeadline time.Duration
	quotaCPUs      float64
	quotaLoad      float64
	quotaStretch   float64
	cpuModes       []string
	cpuRounds      int
	quotaRounds    int
}

// matrix returns the shapes to run, in the order of o.shapes.
func matrix(o matrixOptions) []shape {
	var out []shape
	for _, name := range o.shapes {
		switch name {
		case shapeUniform:
			out = append(out, shape{Name: name, Number: 1, Bytes: o.workBytes, Hold: o.workHold, Reference: modeOracle})
		case shapeHeavyTail:
			out = append(out, shape{Name: name, Number: 2, Mix: heavyTailMix, Hold: o.workHold, Reference: modeOracle})
		case shapeBurst:
			out = append(out, shape{Name: name, Number: 3, Bytes: o.workBytes, Hold: o.workHold, Conns: o.conns, Reference: modeOracle})
		case shapeUploads:
			out = append(out, shape{Name: name, Number: 4, Mix: uploadMix, Upload: true, Hold: uploadHold, Reference: modeOracle})
		case shapeOffHeap:
			out = append(out, shape{Name: name, Number: 5, Bytes: o.workBytes, Hold: o.workHold, Args: []string{"-offheap"}, Reference: modeOracle})
		case shapeLeak:
			out = append(out, shape{Name: name, Number: 6, Bytes: leakBytes, Hold: leakHold, FixedRate: leakRate,
				Args: []string{"-leak-rate", strconv.FormatInt(o.leakRate, 10)}})
		case shapeCache:
			bytes, hold := cmp.Or(o.cacheBytes, cacheBytes), cmp.Or(o.cacheHold, cacheHold)
			for _, f := range o.cacheFracs {
				for _, r := range o.cacheRates {
					label := fmt.Sprintf("cache %.2f, %.0f rps", f, r)
					if bytes != cacheBytes || hold != cacheHold {
						label += fmt.Sprintf(", %d KiB for %v", bytes>>10, hold)
					}
					args := []string{"-cache-frac", strconv.FormatFloat(f, 'f', -1, 64)}
					if o.cacheRebuild > 0 {
						label += fmt.Sprintf(", rebuilds %d MiB", o.cacheRebuild>>20)
						args = append(args, "-rebuild-bytes", strconv.FormatInt(o.cacheRebuild, 10))
					}
					out = append(out, shape{Name: name, Number: 7, Label: label,
						Bytes: bytes, Hold: hold, FixedRate: r, Reference: modeAutomemlimit, Rounds: o.cacheRounds, Args: args})
				}
			}
		case shapeDecode:
			for _, f := range o.decodeLoads {
				out = append(out, shape{Name: name, Number: 8, Label: fmt.Sprintf("decode %gx", f), Args: decodeArgs(), Only: o.cpuModes,
					Pictures: decodeMix, Factor: f, Deadline: o.decodeDeadline, Limit: o.decodeLimit, Reference: modeOracle, Rounds: o.cpuRounds})
			}
		case shapeQuota:
			// The deadline buys the same CPU time as the decode shape's
			// on a whole CPU: under a fifth of one, a scan that takes a
			// second alone takes five.
			deadline := time.Duration(float64(o.decodeDeadline) / min(1, o.quotaCPUs)).Round(time.Millisecond)
			out = append(out, shape{Name: name, Number: 9, Label: fmt.Sprintf("quota %g CPU, %gx", o.quotaCPUs, o.quotaLoad), Args: decodeArgs(), Only: o.cpuModes,
				Pictures: decodeMix, Factor: o.quotaLoad, Deadline: deadline, CPUs: o.quotaCPUs, Limit: o.decodeLimit, Reference: modeOracle,
				Stretch: o.quotaStretch, Rounds: o.quotaRounds})
		}
	}
	for i := range out {
		if out[i].Label == "" {
			out[i].Label = out[i].Name
		}
	}
	return out
}

// decodeArgs are the service flags of the decode and quota shapes.
func decodeArgs() []string {
	return []string{"-work", "decode", "-pictures", decodeMix.arg()}
}

// thumbPixels is the bound of the service's thumbnails, wide and high:
// examples/httpservice's thumbSize.
const thumbPixels = 256

// modesFor is the modes that run on s, in the order of modes: the oracle
// only where it is the reference (a fixed cap means nothing against a leak
// or a cache that no request holds), and only those of Only where it is
// set.
func (s shape) modesFor(modes []string) []string {
	var out []string
	for _, m := range modes {
		if m == modeOracle && s.Reference != modeOracle || s.Only != nil && !slices.Contains(s.Only, m) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// inRound reports whether mode runs in round r of s's rounds. The
// reference and the modes -check judges run in every round: each round's
// ratio is to its own reference, and -check judges their medians. The
// other modes run in the first only: bare dies beside the cache at once.
func (s shape) inRound(mode string, r int) bool {
	return r <= 1 || mode == s.Reference || mode == modeOomguard || mode == modeOomguardCost
}

// parseShapes reads -shapes: names or numbers 1-9, comma-separated.
func parseShapes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if n, err := strconv.Atoi(f); err == nil && n >= 1 && n <= len(shapeNames) {
			f = shapeNames[n-1]
		}
		found := false
		for _, name := range shapeNames {
			found = found || f == name
		}
		if !found {
			return nil, fmt.Errorf("unknown shape %q; want 1-%d or %s", f, len(shapeNames), strings.Join(shapeNames, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// parseFloats reads a comma-separated list of numbers in (0, maxV].
func parseFloats(s string, maxV float64) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v > maxV || math.IsNaN(v) {
			return nil, fmt.Errorf("%q: want numbers in (0, %g]", f, maxV)
		}
		out = append(out, v)
	}
	return out, nil
}

// size formats bytes in KiB or MiB.
func size(b int64) string {
	if b >= 1<<20 {
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(b)/(1<<20)), ".0") + " MiB"
	}
	return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
}
