package guard

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"
)

// Config configures a Guard. The zero value is ready to use: the limit is
// detected, GOMEMLIMIT is set to 90% of it, and levels use the default
// thresholds. Every field documents its unit and default.
type Config struct {
	// Limit caps the effective memory limit, in bytes, at least 1 MiB.
	// The guard uses the smallest of Limit, the cgroup limits and, where no
	// cgroup limits memory, the machine's memory. 0 means detect only.
	Limit int64

	// MemoryLimitRatio sets GOMEMLIMIT to ratio × the effective limit,
	// in [0.1, 1]. 0 means 0.9; a negative value leaves GOMEMLIMIT alone. A GOMEMLIMIT
	// environment variable, whatever its value, always wins.
	MemoryLimitRatio float64

	// MachineGoMemLimit sets GOMEMLIMIT from the machine's memory too,
	// where no cgroup and no Limit bound memory. By default the guard
	// leaves GOMEMLIMIT alone then: a process rarely owns the whole
	// machine.
	MachineGoMemLimit bool

	// Interval is the sampling interval while memory is low. The guard
	// samples faster as headroom shrinks, down to MinInterval, and also
	// after every GC cycle. 0 means 500ms.
	Interval time.Duration

	// MinInterval is the shortest sampling interval, used near the limit
	// while memory climbs toward it. Memory that sits still is sampled
	// every 20ms at most often (or Interval, if shorter). 0 means 2ms.
	MinInterval time.Duration

	// Thresholds are the levels' entry points as fractions of the
	// effective limit. The zero value means 0.70, 0.85 and 0.95.
	Thresholds Thresholds

	// Hysteresis is how far below its threshold usage must fall, as a
	// fraction of the limit, before a level is left. 0 means 0.05.
	Hysteresis float64

	// Dwell is how long usage must stay below a level's exit point before
	// the level is left. 0 means 2s.
	Dwell time.Duration

	// GCThrashFraction is the share of the process's CPU the GC may take
	// before the guard counts it as thrashing and raises the level to at
	// least High. An engaged GC CPU limiter always counts. 0 means 0.4.
	GCThrashFraction float64

	// Classifier gives an HTTP request its priority for Middleware. nil
	// means the priority the request context carries (WithPriority), else
	// PriorityDefault.
	Classifier func(*http.Request) Priority

	// Cost declares the memory an HTTP request will hold while it runs, in
	// bytes, such as the size of a body it reads into memory or of a result
	// it builds. Middleware reserves the declared bytes before the handler
	// runs and releases them when it returns; a request whose bytes do not
	// fit is shed. A positive Content-Length counts as at least that many
	// bytes. nil means no declared costs: the guard learns the cost of
	// requests from the memory they use.
	Cost func(*http.Request) int64

	// DisableTimeBound turns off the bound on work in flight for time. By
	// default, while work waits for a CPU (goroutines ready to run and
	// waiting for a P, or threads held back by the CPU quota) more than
	// about two per CPU, the guard bounds the work in flight to what the
	// CPUs run without a longer line, never below two, as well as to what
	// fits in memory: the tighter bound wins. On one CPU or less, a request
	// in flight longer than half of recent work took is then let finish
	// alone: nothing more is admitted until it is done, for at most twice
	// as long as nearly all recent work takes. Then it also refuses at once
	// work whose deadline (the request context's, or DeadlineHeader's) is
	// nearer than nearly all recent work took in flight. The environment
	// variable OOMGUARD_TIME_BOUND=off does the same.
	DisableTimeBound bool

	// DeadlineHeader names a request header in which HTTP clients say how
	// long they will wait: whole milliseconds, as Envoy's
	// x-envoy-expected-rq-timeout-ms, or a Go duration such as "1.5s".
	// While the time bound is in force, Middleware refuses at once a
	// request whose deadline, this one or its context's, whichever is
	// nearer, cannot be met. Empty, the default, means the context's
	// deadline alone. The header informs admission only: it does not
	// change the request's context.
	DeadlineHeader string

	// ReportLoad makes Middleware write the service's load (Guard.Load) on
	// every response, refusals included, in the header a proxy in front
	// reads to send work where there is room before this guard must shed
	// it: endpoint-load-metrics, ORCA's load report in the TEXT form Envoy
	// parses, such as
	//
	//	endpoint-load-metrics: TEXT application_utilization:0.52,mem_utilization:0.61,rps_fractional:120.5,eps:3
	//
	// It is set before the handler runs, as of the guard's last reading. Off
	// by default: the header tells whoever can read the responses how
	// loaded the service is. The environment variable
	// OOMGUARD_REPORT_LOAD=on or off overrides it.
	ReportLoad bool

	// RetryAfter is how long shed clients are asked to wait: the HTTP
	// Retry-After header (whole seconds, rounded up) and the gRPC
	// retry pushback. 0 means 1s.
	RetryAfter time.Duration

	// ReadyHold is how long ReadyHandler keeps answering 503 after the
	// level leaves Critical. 0 means 5s.
	ReadyHold time.Duration

	// DumpDir is the directory for heap profiles; "" writes none. The
	// guard writes one when the level rises to Elevated, High or Critical,
	// at new high-water marks of usage (at most 3 per climb), and when the
	// limit is less than DumpBeforeLimit away at the current growth; each
	// is followed by one on the next GC cycle, for a clean diff. Profiles
	// in the directory from before a restart are kept and served.
	//
	// It is created with mode 0750 if missing. An existing DumpDir must be
	// a directory, not a symbolic link, that group and others cannot
	// write in (on Unix, mode 0750 or stricter; a Kubernetes emptyDir is
	// 0777, so name a directory inside it): otherwise profiles are off,
	// with an ERROR saying why, and the guard runs without them.
	DumpDir string

	// FlightRecorder, if set, keeps the last moments of an execution trace
	// in memory (runtime/trace's flight recorder) and writes a snapshot
	// into DumpDir on entering Critical, listed and served with the
	// profiles; "go tool trace" opens it. It needs DumpDir. Tracing costs
	// CPU on every scheduling event: bench/README.md has the figure.
	FlightRecorder *FlightRecorderConfig

	// DumpMinInterval is the least time between two profiles, except
	// level crossings and their pairs. 0 means 1s.
	DumpMinInterval time.Duration

	// DumpMaxCount is the most profiles kept; the oldest are deleted after
	// a newer one is written. 0 means 20.
	DumpMaxCount int

	// DumpMaxBytes caps the profiles' total size on disk, in bytes.
	// 0 means 256 MiB.
	DumpMaxBytes int64

	// DumpBeforeLimit writes a profile when usage, growing at its current
	// rate, would reach the limit within this time. 0 means 10s.
	DumpBeforeLimit time.Duration

	// DebugWrite enables POST /heap on DebugHandler, which writes a
	// profile on demand, at most one per DumpMinInterval. After a run on
	// DumpDir that ended without Stop, a profile on demand never deletes
	// the profiles that run left, and is refused when they fill
	// DumpMaxCount or DumpMaxBytes.
	DebugWrite bool

	// DebugAuthorize, if set, must return nil for every DebugHandler
	// request; its error is answered with 403 Forbidden. nil means only
	// loopback clients that no proxy relayed and whose Host is a loopback
	// IP or localhost are answered, since heap profiles reveal the code and
	// how much memory each allocation site holds. When set, it replaces
	// that whole check, the Host check included: a function that admits by
	// client address alone lets a DNS-rebinding page in a browser that can
	// reach the endpoint read it, so check the Host too, or require a
	// credential that a browser does not send by itself.
	DebugAuthorize func(*http.Request) error

	// Logger receives the guard's decisions, each with the attribute
	// component=oomguard. nil means slog.Default(), as it is at Start; a
	// logger of slog.DiscardHandler silences the guard.
	Logger *slog.Logger
}

// FlightRecorderConfig bounds the execution trace the flight recorder
// keeps: at least MinAge of it, at most about MaxBytes. Zero fields take
// their defaults: 10s and 16 MiB.
type FlightRecorderConfig struct {
	MinAge   time.Duration
	MaxBytes uint64
}

// Thresholds are the pressure levels' entry points, as fractions of the
// effective limit, in increasing order within (0, 1]. Each zero field takes
// its default.
type Thresholds struct {
	Elevated float64 // 0 means 0.70
	High     float64 // 0 means 0.85
	Critical float64 // 0 means 0.95
}

// A ConfigError names the Config field, or the environment variable, that
// Start refused, and its value.
type ConfigError struct {
	Field    string // the Config field, e.g. "Thresholds.High"; empty for a variable
	Variable string // the environment variable, e.g. "OOMGUARD_LIMIT"; empty for a field
	Value    any
	Reason   string
}

func (e *ConfigError) Error() string {
	if e.Variable != "" {
		return fmt.Sprintf("guard: environment variable %s = %q: %s", e.Variable, e.Value, e.Reason)
	}
	return fmt.Sprintf("guard: Config.%s = %v: %s", e.Field, e.Value, e.Reason)
}

// withDefaults returns c with zero fields set to their defaults, or the
// first bad field.
func (c Config) withDefaults() (Config, error) {
	bad := func(field string, v any, reason string) (Config, error) {
		return Config{}, &ConfigError{Field: field, Value: v, Reason: reason}
	}
	if c.Limit < 0 || (c.Limit > 0 && c.Limit < 1<<20) {
		return bad("Limit", c.Limit, "must be 0 (detect) or at least 1 MiB (1048576 bytes)")
	}
	if math.IsNaN(c.MemoryLimitRatio) || c.MemoryLimitRatio > 1 {
		return bad("MemoryLimitRatio", c.MemoryLimitRatio, "must be at most 1 (negative leaves GOMEMLIMIT alone)")
	}
	if c.MemoryLimitRatio == 0 {
		c.MemoryLimitRatio = 0.9
	}
	if c.MemoryLimitRatio > 0 && c.MemoryLimitRatio < 0.1 {
		return bad("MemoryLimitRatio", c.MemoryLimitRatio, "must be at least 0.1: a smaller GOMEMLIMIT keeps the GC running flat out")
	}
	// Durations: negative is an error, zero takes the default.
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Interval", &c.Interval, 500 * time.Millisecond},
		{"Dwell", &c.Dwell, 2 * time.Second},
		{"DumpMinInterval", &c.DumpMinInterval, time.Second},
		{"DumpBeforeLimit", &c.DumpBeforeLimit, 10 * time.Second},
		{"RetryAfter", &c.RetryAfter, time.Second},
		{"ReadyHold", &c.ReadyHold, 5 * time.Second},
	} {
		if *d.v < 0 {
			return bad(d.name, *d.v, "must not be negative")
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.MinInterval < 0 {
		return bad("MinInterval", c.MinInterval, "must not be negative")
	}
	if c.MinInterval == 0 {
		c.MinInterval = min(2*time.Millisecond, c.Interval)
	}
	if c.MinInterval > c.Interval {
		return bad("MinInterval", c.MinInterval, fmt.Sprintf("must not exceed Interval (%v)", c.Interval))
	}

	t := &c.Thresholds
	for _, f := range []struct {
		v   *float64
		def float64
	}{{&t.Elevated, 0.70}, {&t.High, 0.85}, {&t.Critical, 0.95}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"Thresholds.Elevated", t.Elevated}, {"Thresholds.High", t.High}, {"Thresholds.Critical", t.Critical}} {
		if math.IsNaN(f.v) || f.v <= 0 || f.v > 1 {
			return bad(f.name, f.v, "must be a fraction of the limit in (0, 1]")
		}
	}
	if t.High <= t.Elevated {
		return bad("Thresholds.High", t.High, fmt.Sprintf("must be above Thresholds.Elevated (%v)", t.Elevated))
	}
	if t.Critical <= t.High {
		return bad("Thresholds.Critical", t.Critical, fmt.Sprintf("must be above Thresholds.High (%v)", t.High))
	}

	if math.IsNaN(c.Hysteresis) || c.Hysteresis < 0 {
		return bad("Hysteresis", c.Hysteresis, "must be a non-negative fraction of the limit")
	}
	if c.Hysteresis == 0 {
		c.Hysteresis = 0.05
	}
	if c.Hysteresis >= t.Elevated {
		return bad("Hysteresis", c.Hysteresis, fmt.Sprintf("must be below Thresholds.Elevated (%v)", t.Elevated))
	}
	if math.IsNaN(c.GCThrashFraction) || c.GCThrashFraction < 0 || c.GCThrashFraction > 1 {
		return bad("GCThrashFraction", c.GCThrashFraction, "must be a fraction in [0, 1]")
	}
	if c.GCThrashFraction == 0 {
		c.GCThrashFraction = 0.4
	}
	if fr := c.FlightRecorder; fr != nil {
		if c.DumpDir == "" {
			return bad("FlightRecorder", "set", "needs DumpDir, where its snapshots go")
		}
		if fr.MinAge < 0 {
			return bad("FlightRecorder.MinAge", fr.MinAge, "must not be negative")
		}
		f := *fr
		if f.MinAge == 0 {
			f.MinAge = 10 * time.Second
		}
		if f.MaxBytes == 0 {
			f.MaxBytes = 16 << 20
		}
		c.FlightRecorder = &f
	}
	if c.DumpMaxCount < 0 {
		return bad("DumpMaxCount", c.DumpMaxCount, "must not be negative")
	}
	if c.DumpMaxBytes < 0 {
		return bad("DumpMaxBytes", c.DumpMaxBytes, "must not be negative")
	}
	return c, nil
}
