// Package promguard exports a Guard's readings as Prometheus metrics.
//
// It lives apart from package guard so that only services that use
// Prometheus link github.com/prometheus/client_golang. Register the
// collector once per Guard:
//
//	g, err := guard.Start(ctx, guard.Config{})
//	if err != nil {
//		return err
//	}
//	defer g.Stop()
//	prometheus.MustRegister(promguard.NewCollector(g))
//	http.Handle("/metrics", promhttp.Handler())
//
// Each scrape reads the guard's latest Snapshot once: it never samples
// memory again, reads no file and takes no lock the guard holds, so a
// scrape cannot slow the guard down, and all the values of one scrape come
// from the same reading. Sizes are in bytes and durations in seconds. The
// metrics are listed in README.md beside this file.
package promguard

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oomguard/oomguard/guard"
)

// The metrics. Each Desc is made once; Collect makes const metrics from one
// Snapshot.
var (
	// limitBytes is Snapshot.Limit, the effective memory limit; the source
	// label is Snapshot.LimitSource: "config", "cgroup", "cgroup-high" or
	// "machine".
	limitBytes = prometheus.NewDesc("oomguard_memory_limit_bytes",
		"Effective memory limit the guard enforces, in bytes; source is the bound that won: config, cgroup, cgroup-high or machine.",
		[]string{"source"}, nil)

	// goMemLimitBytes is Snapshot.GoMemLimit, the runtime's soft memory
	// limit as last read; 9.223372036854776e18 (math.MaxInt64) when none.
	goMemLimitBytes = prometheus.NewDesc("oomguard_gomemlimit_bytes",
		"Go runtime soft memory limit (GOMEMLIMIT) in force, in bytes; 9.223372036854776e18 when unlimited.",
		nil, nil)

	// usageBytes is Snapshot.Usage, the working set the levels are judged
	// on.
	usageBytes = prometheus.NewDesc("oomguard_memory_usage_bytes",
		"Working set in bytes: cgroup usage minus inactive file pages, as the kubelet computes it; process resident memory where no cgroup applies.",
		nil, nil)

	// committedBytes is Snapshot.Committed, what admission judges.
	committedBytes = prometheus.NewDesc("oomguard_memory_committed_bytes",
		"Working set minus the Go heap the GC and scavenger can reclaim, in bytes: the memory the work in flight holds, which load shedding judges.",
		nil, nil)

	// heapLiveBytes is Snapshot.HeapLive.
	heapLiveBytes = prometheus.NewDesc("oomguard_heap_live_bytes",
		"Go heap marked live by the last completed GC cycle, in bytes.",
		nil, nil)

	// level is Snapshot.Level as a number: 0 normal, 1 elevated, 2 high,
	// 3 critical.
	level = prometheus.NewDesc("oomguard_level",
		"Memory pressure level of the working set: 0 normal, 1 elevated, 2 high, 3 critical.",
		nil, nil)

	// timeToLimitSeconds is Snapshot.TimeToLimit; +Inf when usage is not
	// growing.
	timeToLimitSeconds = prometheus.NewDesc("oomguard_time_to_limit_seconds",
		"Time until the working set reaches the limit at its smoothed growth rate, in seconds; +Inf when it is not growing.",
		nil, nil)

	// gcCPUFraction is Snapshot.GCCPUFraction.
	gcCPUFraction = prometheus.NewDesc("oomguard_gc_cpu_fraction",
		"Share of the process's CPU the garbage collector took over recent cycles, from 0 to 1.",
		nil, nil)

	// requestsShedTotal is Snapshot.Shed, by priority: "sheddable",
	// "default" or "critical".
	requestsShedTotal = prometheus.NewDesc("oomguard_requests_shed_total",
		"Requests the guard refused since it started, by priority: sheddable, default or critical.",
		[]string{"priority"}, nil)

	// previousRunOOMKilled is Guard.PostMortem().LikelyOOMKilled.
	previousRunOOMKilled = prometheus.NewDesc("oomguard_previous_run_oom_killed",
		"1 when the guard concluded at start that the previous run on the same dump directory was likely OOM-killed, else 0.", nil, nil)
	// requestsAdmittedTotal is Snapshot.Admitted.
	requestsAdmittedTotal = prometheus.NewDesc("oomguard_requests_admitted_total",
		"Requests the guard admitted since it started, of every priority.", nil, nil)
	// requestsInFlight is Snapshot.InFlight.
	requestsInFlight = prometheus.NewDesc("oomguard_requests_inflight",
		"Requests admitted and not yet done.",
		nil, nil)

	// requestsInFlightLimit is Snapshot.InFlightLimit: the adaptive limit
	// on requests in flight, 0 when no limit is in force.
	requestsInFlightLimit = prometheus.NewDesc("oomguard_requests_inflight_limit",
		"Bound on Default-priority requests in flight: the tighter of the memory bound (the memory below the admission target at the learned cost per request) and the time bound.",
		nil, nil)

	// requestsShedForTimeTotal is Snapshot.ShedForTime.
	requestsShedForTimeTotal = prometheus.NewDesc("oomguard_requests_shed_for_time_total",
		"Requests refused since the guard started while the time bound, not memory, was the tighter: the CPUs could not have run them in time. Counted in oomguard_requests_shed_total too.",
		nil, nil)
	// requestsLateTotal is Snapshot.ShedLate.
	requestsLateTotal = prometheus.NewDesc("oomguard_requests_late_total",
		"Requests refused since the guard started because their deadline was nearer than nearly all recent requests took while work waited for a CPU.",
		nil, nil)
	// timeInFlightLimit is Snapshot.TimeLimit.
	timeInFlightLimit = prometheus.NewDesc("oomguard_requests_inflight_time_limit",
		"Bound on requests in flight while work waits for a CPU; 0 when the CPU has no line and only memory bounds them.",
		nil, nil)
	// cpuQueue is Snapshot.CPUQueue.
	cpuQueue = prometheus.NewDesc("oomguard_cpu_queue",
		"Mean count of goroutines ready to run and threads held back by the CPU quota that waited for a CPU over the last tenth of a second.",
		nil, nil)

	// recommendedLimitBytes is Snapshot.RecommendedLimit; 0 when there is
	// nothing to recommend (Snapshot.RecommendedLimitReason says why, on
	// the status page and in the log): a reason as a label would make a
	// series of each.
	recommendedLimitBytes = prometheus.NewDesc("oomguard_recommended_limit_bytes",
		"Memory limit at which the load offered over the last 5 minutes would have been served without shedding for memory, in bytes; 0 when there is nothing to recommend: no shedding for memory, a likely leak, or shedding for time.",
		nil, nil)

	// requestsTooLargeTotal is Snapshot.TooLarge.
	requestsTooLargeTotal = prometheus.NewDesc("oomguard_requests_too_large_total",
		"Requests refused since the guard started for declaring more bytes than the admission target (HTTP 413).",
		nil, nil)
	// requestsCancelledTotal is Snapshot.Cancelled.
	requestsCancelledTotal = prometheus.NewDesc("oomguard_requests_cancelled_total",
		"Sheddable requests in flight the guard cancelled at critical pressure since it started.",
		nil, nil)

	// reservedBytes is Snapshot.Reserved.
	reservedBytes = prometheus.NewDesc("oomguard_reserved_bytes",
		"Bytes held by outstanding Reserve calls, counted against headroom for admission.",
		nil, nil)

	// profilesWrittenTotal is Snapshot.ProfilesWritten.
	profilesWrittenTotal = prometheus.NewDesc("oomguard_profiles_written_total",
		"Heap profiles written to disk since the guard started.",
		nil, nil)

	// profileWriteErrorsTotal is Snapshot.ProfileErrors.
	profileWriteErrorsTotal = prometheus.NewDesc("oomguard_profile_write_errors_total",
		"Heap profile writes that failed since the guard started.",
		nil, nil)

	// readErrorsTotal is Snapshot.ReadErrors.
	readErrorsTotal = prometheus.NewDesc("oomguard_cgroup_read_errors_total",
		"Readings of the memory cgroup's usage or limit that failed or gave a value past belief since the guard started; meanwhile usage is the process's resident memory and the limit its last value.",
		nil, nil)

	// memoryEventsTotal is Snapshot.MemoryEvents, on cgroup v2.
	memoryEventsTotal = prometheus.NewDesc("oomguard_cgroup_memory_events_total",
		"What the memory cgroup's limits did since it was made (v2 memory.events): event is high (throttled over memory.high), max (reclaim at memory.max), oom (reclaim failed) or oom_kill. Absent on cgroup v1.",
		[]string{"event"}, nil)

	// memoryPressureRatio and memoryPressureSeconds are
	// Snapshot.MemoryPressure, on cgroup v2.
	memoryPressureRatio = prometheus.NewDesc("oomguard_cgroup_memory_pressure_avg10_ratio",
		"Share of the last 10 seconds in which some task (kind=some) or every task (kind=full) of the memory cgroup waited for memory (v2 memory.pressure avg10), from 0 to 1. Absent where the kernel offers none.",
		[]string{"kind"}, nil)
	memoryPressureSeconds = prometheus.NewDesc("oomguard_cgroup_memory_pressure_seconds_total",
		"Time some task (kind=some) or every task (kind=full) of the memory cgroup waited for memory since it was made (v2 memory.pressure total), in seconds. Absent where the kernel offers none.",
		[]string{"kind"}, nil)

	// profilesDiskBytes is Snapshot.ProfileDiskBytes.
	profilesDiskBytes = prometheus.NewDesc("oomguard_profiles_disk_bytes",
		"Total size of the heap profiles kept on disk, in bytes.",
		nil, nil)

	// cgroupOOMKillsTotal is Snapshot.OOMKills, the kernel's own count of
	// OOM kills in the container's memory cgroup (v1 memory.oom_control,
	// v2 memory.events oom_kill). It is absent where the count is unknown.
	cgroupOOMKillsTotal = prometheus.NewDesc("oomguard_cgroup_oom_kills_total",
		"Processes the kernel OOM killer killed in this memory cgroup, from the cgroup's own oom_kill counter; non-zero means the container was killed before. Absent where unknown.",
		nil, nil)
)

// descs lists every metric the collector may export, for Describe.
var descs = []*prometheus.Desc{
	limitBytes, goMemLimitBytes, usageBytes, committedBytes, heapLiveBytes, level,
	timeToLimitSeconds, gcCPUFraction,
	requestsShedTotal, requestsAdmittedTotal, requestsInFlight, requestsInFlightLimit, requestsCancelledTotal, requestsTooLargeTotal, reservedBytes,
	requestsShedForTimeTotal, requestsLateTotal, timeInFlightLimit, cpuQueue, recommendedLimitBytes,
	profilesWrittenTotal, profileWriteErrorsTotal, profilesDiskBytes, readErrorsTotal,
	cgroupOOMKillsTotal, previousRunOOMKilled,
	memoryEventsTotal, memoryPressureRatio, memoryPressureSeconds,
}

// collector exports the Snapshot that snapshot returns.
type collector struct {
	snapshot func() guard.Snapshot
}

// NewCollector returns a Prometheus collector for g's metrics. Register it
// once per Guard, in any prometheus.Registerer. Each Collect reads
// g.Snapshot once and never blocks the guard. It panics if g is nil.
func NewCollector(g *guard.Guard) prometheus.Collector {
	if g == nil {
		panic("promguard: NewCollector of a nil *guard.Guard")
	}
	return collector{snapshot: g.Snapshot}
}

// Describe sends the descriptors of every metric the collector may export.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

// Collect sends the metrics of one Snapshot.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	gauge(limitBytes, float64(s.Limit), string(s.LimitSource))
	gauge(goMemLimitBytes, float64(s.GoMemLimit))
	gauge(usageBytes, float64(s.Usage))
	gauge(committedBytes, float64(s.Committed))
	gauge(heapLiveBytes, float64(s.HeapLive))
	gauge(level, float64(s.Level))
	gauge(timeToLimitSeconds, timeToLimit(s))
	gauge(gcCPUFraction, s.GCCPUFraction)

	counter(requestsShedTotal, s.Shed.Sheddable, guard.PrioritySheddable.String())
	counter(requestsShedTotal, s.Shed.Default, guard.PriorityDefault.String())
	counter(requestsShedTotal, s.Shed.Critical, guard.PriorityCritical.String())
	gauge(requestsInFlight, float64(s.InFlight))
	gauge(requestsInFlightLimit, float64(s.InFlightLimit))
	counter(requestsAdmittedTotal, s.Admitted)
	counter(requestsCancelledTotal, s.Cancelled)
	counter(requestsTooLargeTotal, s.TooLarge)
	counter(requestsShedForTimeTotal, s.ShedForTime)
	counter(requestsLateTotal, s.ShedLate)
	gauge(timeInFlightLimit, float64(s.TimeLimit))
	gauge(cpuQueue, s.CPUQueue)
	gauge(recommendedLimitBytes, float64(s.RecommendedLimit))
	gauge(reservedBytes, float64(s.Reserved))

	counter(profilesWrittenTotal, s.ProfilesWritten)
	counter(profileWriteErrorsTotal, s.ProfileErrors)
	gauge(profilesDiskBytes, float64(s.ProfileDiskBytes))
	counter(readErrorsTotal, s.ReadErrors)

	if s.OOMKills >= 0 {
		counter(cgroupOOMKillsTotal, s.OOMKills)
	}
	if e := s.MemoryEvents; s.HasMemoryEvents {
		counter(memoryEventsTotal, e.High, "high")
		counter(memoryEventsTotal, e.Max, "max")
		counter(memoryEventsTotal, e.OOM, "oom")
		counter(memoryEventsTotal, e.OOMKill, "oom_kill")
	}
	if p := s.MemoryPressure; s.HasMemoryPressure {
		gauge(memoryPressureRatio, p.SomeAvg10/100, "some")
		gauge(memoryPressureRatio, p.FullAvg10/100, "full")
		ch <- prometheus.MustNewConstMetric(memoryPressureSeconds, prometheus.CounterValue, p.Some.Seconds(), "some")
		ch <- prometheus.MustNewConstMetric(memoryPressureSeconds, prometheus.CounterValue, p.Full.Seconds(), "full")
	}
	killed := 0.0
	if s.PreviousRunOOMKilled {
		killed = 1
	}
	gauge(previousRunOOMKilled, killed)
}

// timeToLimit is s.TimeToLimit in seconds, +Inf when usage is not growing.
func timeToLimit(s guard.Snapshot) float64 {
	if s.TimeToLimit < 0 {
		return math.Inf(1)
	}
	return s.TimeToLimit.Seconds()
}
