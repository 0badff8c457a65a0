package guard

import "time"

// Snapshot is one consistent reading of every signal the guard watches.
// Sizes are in bytes.
type Snapshot struct {
	Time  time.Time
	Level Level

	// Off reports a guard switched off by OOMGUARD=off: it watches
	// nothing and admits everything.
	Off bool

	// Limit is the effective memory limit; LimitSource says which bound
	// won and LimitDetail names the control file and cgroup.
	Limit       int64
	LimitSource LimitSource
	LimitDetail string

	// GoMemLimit is the runtime's GOMEMLIMIT now; GoMemLimitSource says
	// who set it.
	GoMemLimit       int64
	GoMemLimitSource GoMemLimitSource

	// Usage is the memory measured against Limit; UsageSource says what it
	// is. With a cgroup limit (LimitFromCgroup, LimitFromCgroupHigh), it is
	// the cgroup's working set, usage minus inactive file pages, as the
	// kubelet computes it: every process in the container counts. With a
	// limit from Config.Limit or the machine, it is this process's own
	// memory: its resident set on Linux, and off Linux what the Go runtime
	// holds from the OS (which misses memory allocated outside Go).
	Usage       int64
	UsageSource UsageSource

	// Committed is Usage minus the Go heap the GC and scavenger can reclaim
	// without the program freeing anything (garbage since the last GC cycle,
	// free heap not yet returned to the OS). Under GOMEMLIMIT the working
	// set sits near the limit by design; Committed is closer to what the
	// program holds. Admission uses its own model of it (see Guard.Enter):
	// between GC cycles this figure misses the heap new work allocated.
	Committed int64

	HeapLive   int64 // heap marked live by the last GC cycle
	HeapGoal   int64 // heap size at which the next GC cycle ends
	GoResident int64 // memory the Go runtime holds from the OS

	// GCCPUFraction is the share of CPU the GC took over recent cycles;
	// GCThrashing reports it past Config.GCThrashFraction or the GC CPU
	// limiter engaged in the last cycles.
	GCCPUFraction float64
	GCThrashing   bool

	// GrowthRate is the smoothed change of Usage, in bytes per second.
	// TimeToLimit is the time until Usage reaches Limit at that rate;
	// negative when usage is not growing.
	GrowthRate  float64
	TimeToLimit time.Duration

	// OOMKills is the cgroup's own count of OOM kills (v1 memory.oom_control,
	// v2 memory.events): non-zero means this container lost a process to the
	// kernel before. -1 where unknown.
	OOMKills int64

	// Notifications names the kernel's memory notifications the guard
	// listens to, comma-separated; empty when it only polls.
	Notifications string

	// MemoryEvents are a v2 cgroup's memory.events counters, and
	// MemoryPressure its memory.pressure stall information; zero on v1 and
	// where the kernel offers none, which HasMemoryEvents and
	// HasMemoryPressure tell apart from a true zero.
	MemoryEvents      MemoryEvents
	MemoryPressure    MemoryPressure
	HasMemoryEvents   bool
	HasMemoryPressure bool

	// Interval is the sampling interval in force after this reading.
	Interval time.Duration

	// Admission, as of the reading: the bound on work in flight of Default
	// priority, the tighter of the memory bound and the time bound; the
	// learned bytes one unit of work holds while it runs; and the
	// committed memory admission steers below (see Guard.Enter).
	InFlightLimit   int64
	WorkCost        int64
	AdmissionTarget int64

	// The time bound, as of the reading (see Config.DisableTimeBound):
	// TimeLimit bounds the work in flight while work waits for a CPU, 0
	// when it does not; CPUQueue is the mean count of goroutines and
	// threads that waited for a CPU over the last tenth of a second;
	// TimeInFlight is the mean time in flight of recent work, and
	// UncongestedTimeInFlight the same learned while nothing waited.
	TimeLimit               int64
	CPUQueue                float64
	TimeInFlight            time.Duration
	UncongestedTimeInFlight time.Duration

	// Admission, as of the call to Guard.Snapshot.
	Shed      ShedCounts // requests refused since Start, by priority
	Admitted  int64      // requests admitted since Start
	InFlight  int64      // requests admitted and not yet done
	Reserved  int64      // bytes declared by the work in flight: Reserve, Config.Cost, Content-Length
	Cancelled int64      // Sheddable requests cancelled at Critical since Start
	// TooLarge counts work refused since Start for declaring more bytes
	// than the admission target (HTTP 413): it could never fit. It is not
	// counted in Shed, as it says nothing of the memory's pressure.
	TooLarge int64
	// ShedForTime counts, of Shed, the refusals while the time bound was
	// the tighter: work the CPUs could not have run in time. ShedLate
	// counts work refused since Start, apart from Shed, because its
	// deadline was nearer than nearly all recent work took.
	ShedForTime int64
	ShedLate    int64

	// PreviousRunOOMKilled reports that the previous run on the same
	// Config.DumpDir was likely OOM-killed (see Guard.PostMortem).
	PreviousRunOOMKilled bool

	// LeakSuspected reports memory growing while the work in flight and its
	// rate did not: likely a leak, which shedding cannot slow.
	LeakSuspected bool

	// RecommendedLimit is the memory limit, in bytes, at which the load
	// offered over the last five minutes would have been served without
	// shedding for memory: the largest, over those minutes, of the least
	// limit whose admission target holds the work admitted and refused
	// together, at the learned cost per unit of work, the base and the
	// margins. It is 0 when there is nothing to recommend, and
	// RecommendedLimitReason says why: "not shedding" (no work refused for
	// memory in the last five minutes), "leak" (memory grows independent
	// of load: more memory would only put the kill off) or "time" (the
	// time bound refused most of the work shed: the CPUs are short, not
	// memory). RecommendedLimitReason is empty when RecommendedLimit is
	// set. It may be at or below Limit after shedding that was not for
	// want of memory at this limit, such as a slow start from idle; only
	// one above Limit is logged. See docs/design.md, "The limit that would
	// have served".
	RecommendedLimit       int64
	RecommendedLimitReason string

	// EventsDropped counts events that slow subscribers lost since Start:
	// past 64 waiting, the oldest are dropped.
	EventsDropped int64

	// ProfilesWritten counts the heap profiles written to Config.DumpDir
	// since Start.
	ProfilesWritten int64

	// ProfileErrors counts the heap profile writes that failed since Start.
	ProfileErrors int64

	// ReadErrors counts the readings of the memory cgroup (usage, limit)
	// that failed or gave a value past belief since Start: a file that
	// vanished with its cgroup, could not be read or parsed, or a usage
	// above the machine's memory. Meanwhile usage falls back to the
	// process's resident set and the limit keeps its last value; the log
	// says when a fault starts and when it ends.
	ReadErrors int64

	// ProfileDiskBytes is the total size, in bytes, of the heap profiles
	// the store holds on disk now.
	ProfileDiskBytes int64
}

// UsageSource says what Snapshot.Usage measures.
type UsageSource string

// The sources of Snapshot.Usage.
const (
	UsageFromCgroup  UsageSource = "cgroup"  // the memory cgroup's working set
	UsageFromRSS     UsageSource = "rss"     // the process's resident set (/proc/self/statm)
	UsageFromRuntime UsageSource = "runtime" // what the Go runtime holds from the OS
)

// GoMemLimitSource says who set GOMEMLIMIT.
type GoMemLimitSource string

// The sources of Snapshot.GoMemLimit.
const (
	GoMemLimitFromGuard GoMemLimitSource = "guard"     // this guard: ratio × the limit
	GoMemLimitFromEnv   GoMemLimitSource = "env"       // the GOMEMLIMIT environment variable, which always wins
	GoMemLimitUnchanged GoMemLimitSource = "unchanged" // Config.MemoryLimitRatio < 0: left as it was
)

// MemoryEvents counts what a v2 memory cgroup's limits did since it was
// made (memory.events).
type MemoryEvents struct {
	High    int64 // usage went over memory.high: throttled and made to reclaim
	Max     int64 // usage was about to go over memory.max: direct reclaim
	OOM     int64 // reclaim failed at memory.max: the OOM killer was called on
	OOMKill int64 // processes the OOM killer killed
}

// MemoryPressure is a v2 memory cgroup's pressure stall information
// (memory.pressure): the share of the last 10 seconds in which at least one
// task (Some) or all of them (Full) waited for memory, in percent, and the
// total time since the cgroup was made.
type MemoryPressure struct {
	SomeAvg10, FullAvg10 float64
	Some, Full           time.Duration
}

// ShedCounts counts refused requests by priority.
type ShedCounts struct {
	Sheddable, Default, Critical int64
}

// Pressure is Usage as a fraction of Limit.
func (s Snapshot) Pressure() float64 {
	if s.Limit <= 0 {
		return 0
	}
	return float64(s.Usage) / float64(s.Limit)
}

// CommittedPressure is Committed as a fraction of Limit.
func (s Snapshot) CommittedPressure() float64 {
	if s.Limit <= 0 {
		return 0
	}
	return float64(s.Committed) / float64(s.Limit)
}

// Headroom is Limit minus Usage, in bytes; negative past the limit.
func (s Snapshot) Headroom() int64 { return s.Limit - s.Usage }
