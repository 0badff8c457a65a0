package promguard

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oomguard/oomguard/guard"
)

// fixed is a Snapshot with every field set, as a guard in a cgroup that saw
// OOM kills, with usage growing, would publish.
var fixed = guard.Snapshot{
	Level:                guard.LevelHigh,
	Limit:                256 << 20,
	LimitSource:          guard.LimitFromCgroup,
	GoMemLimit:           230 << 20,
	Usage:                220 << 20,
	Committed:            160 << 20,
	HeapLive:             150 << 20,
	GCCPUFraction:        0.125,
	TimeToLimit:          90 * time.Second,
	OOMKills:             2,
	Shed:                 guard.ShedCounts{Sheddable: 40, Default: 7, Critical: 0},
	InFlight:             12,
	Admitted:             1234,
	PreviousRunOOMKilled: true,
	InFlightLimit:        16,
	Reserved:             8 << 20,
	Cancelled:            3,
	TooLarge:             4,
	ShedForTime:          5,
	ShedLate:             6,
	TimeLimit:            7,
	CPUQueue:             1.5,
	RecommendedLimit:     384 << 20,
	ProfilesWritten:      5,
	ProfileErrors:        1,
	ReadErrors:           3,
	MemoryEvents:         guard.MemoryEvents{High: 12, Max: 3, OOM: 1, OOMKill: 1},
	MemoryPressure:       guard.MemoryPressure{SomeAvg10: 12.5, FullAvg10: 2.5, Some: 1500 * time.Millisecond, Full: 250 * time.Millisecond},
	HasMemoryEvents:      true,
	HasMemoryPressure:    true,
	ProfileDiskBytes:     123456,
}

const fixedText = `
# HELP oomguard_cgroup_memory_events_total What the memory cgroup's limits did since it was made (v2 memory.events): event is high (throttled over memory.high), max (reclaim at memory.max), oom (reclaim failed) or oom_kill. Absent on cgroup v1.
# TYPE oomguard_cgroup_memory_events_total counter
oomguard_cgroup_memory_events_total{event="high"} 12
oomguard_cgroup_memory_events_total{event="max"} 3
oomguard_cgroup_memory_events_total{event="oom"} 1
oomguard_cgroup_memory_events_total{event="oom_kill"} 1
# HELP oomguard_cgroup_memory_pressure_avg10_ratio Share of the last 10 seconds in which some task (kind=some) or every task (kind=full) of the memory cgroup waited for memory (v2 memory.pressure avg10), from 0 to 1. Absent where the kernel offers none.
# TYPE oomguard_cgroup_memory_pressure_avg10_ratio gauge
oomguard_cgroup_memory_pressure_avg10_ratio{kind="full"} 0.025
oomguard_cgroup_memory_pressure_avg10_ratio{kind="some"} 0.125
# HELP oomguard_cgroup_memory_pressure_seconds_total Time some task (kind=some) or every task (kind=full) of the memory cgroup waited for memory since it was made (v2 memory.pressure total), in seconds. Absent where the kernel offers none.
# TYPE oomguard_cgroup_memory_pressure_seconds_total counter
oomguard_cgroup_memory_pressure_seconds_total{kind="full"} 0.25
oomguard_cgroup_memory_pressure_seconds_total{kind="some"} 1.5
# HELP oomguard_cgroup_oom_kills_total Processes the kernel OOM killer killed in this memory cgroup, from the cgroup's own oom_kill counter; non-zero means the container was killed before. Absent where unknown.
# TYPE oomguard_cgroup_oom_kills_total counter
oomguard_cgroup_oom_kills_total 2
# HELP oomguard_cgroup_read_errors_total Readings of the memory cgroup's usage or limit that failed or gave a value past belief since the guard started; meanwhile usage is the process's resident memory and the limit its last value.
# TYPE oomguard_cgroup_read_errors_total counter
oomguard_cgroup_read_errors_total 3
# HELP oomguard_gc_cpu_fraction Share of the process's CPU the garbage collector took over recent cycles, from 0 to 1.
# TYPE oomguard_gc_cpu_fraction gauge
oomguard_gc_cpu_fraction 0.125
# HELP oomguard_gomemlimit_bytes Go runtime soft memory limit (GOMEMLIMIT) in force, in bytes; 9.223372036854776e18 when unlimited.
# TYPE oomguard_gomemlimit_bytes gauge
oomguard_gomemlimit_bytes 2.4117248e+08
# HELP oomguard_heap_live_bytes Go heap marked live by the last completed GC cycle, in bytes.
# TYPE oomguard_heap_live_bytes gauge
oomguard_heap_live_bytes 1.572864e+08
# HELP oomguard_level Memory pressure level of the working set: 0 normal, 1 elevated, 2 high, 3 critical.
# TYPE oomguard_level gauge
oomguard_level 2
# HELP oomguard_memory_limit_bytes Effective memory limit the guard enforces, in bytes; source is the bound that won: config, cgroup, cgroup-high or machine.
# TYPE oomguard_memory_limit_bytes gauge
oomguard_memory_limit_bytes{source="cgroup"} 2.68435456e+08
# HELP oomguard_memory_committed_bytes Working set minus the Go heap the GC and scavenger can reclaim, in bytes: the memory the work in flight holds, which load shedding judges.
# TYPE oomguard_memory_committed_bytes gauge
oomguard_memory_committed_bytes 1.6777216e+08
# HELP oomguard_memory_usage_bytes Working set in bytes: cgroup usage minus inactive file pages, as the kubelet computes it; process resident memory where no cgroup applies.
# TYPE oomguard_memory_usage_bytes gauge
oomguard_memory_usage_bytes 2.30686720e+08
# HELP oomguard_previous_run_oom_killed 1 when the guard concluded at start that the previous run on the same dump directory was likely OOM-killed, else 0.
# TYPE oomguard_previous_run_oom_killed gauge
oomguard_previous_run_oom_killed 1
# HELP oomguard_profile_write_errors_total Heap profile writes that failed since the guard started.
# TYPE oomguard_profile_write_errors_total counter
oomguard_profile_write_errors_total 1
# HELP oomguard_profiles_disk_bytes Total size of the heap profiles kept on disk, in bytes.
# TYPE oomguard_profiles_disk_bytes gauge
oomguard_profiles_disk_bytes 123456
# HELP oomguard_profiles_written_total Heap profiles written to disk since the guard started.
# TYPE oomguard_profiles_written_total counter
oomguard_profiles_written_total 5
# HELP oomguard_requests_cancelled_total Sheddable requests in flight the guard cancelled at critical pressure since it started.
# TYPE oomguard_requests_cancelled_total counter
oomguard_requests_cancelled_total 3
# HELP oomguard_requests_too_large_total Requests refused since the guard started for declaring more bytes than the admission target (HTTP 413).
# TYPE oomguard_requests_too_large_total counter
oomguard_requests_too_large_total 4
# HELP oomguard_requests_shed_for_time_total Requests refused since the guard started while the time bound, not memory, was the tighter: the CPUs could not have run them in time. Counted in oomguard_requests_shed_total too.
# TYPE oomguard_requests_shed_for_time_total counter
oomguard_requests_shed_for_time_total 5
# HELP oomguard_requests_late_total Requests refused since the guard started because their deadline was nearer than nearly all recent requests took while work waited for a CPU.
# TYPE oomguard_requests_late_total counter
oomguard_requests_late_total 6
# HELP oomguard_requests_inflight_time_limit Bound on requests in flight while work waits for a CPU; 0 when the CPU has no line and only memory bounds them.
# TYPE oomguard_requests_inflight_time_limit gauge
oomguard_requests_inflight_time_limit 7
# HELP oomguard_cpu_queue Mean count of goroutines ready to run and threads held back by the CPU quota that waited for a CPU over the last tenth of a second.
# TYPE oomguard_cpu_queue gauge
oomguard_cpu_queue 1.5
# HELP oomguard_recommended_limit_bytes Memory limit at which the load offered over the last 5 minutes would have been served without shedding for memory, in bytes; 0 when there is nothing to recommend: no shedding for memory, a likely leak, or shedding for time.
# TYPE oomguard_recommended_limit_bytes gauge
oomguard_recommended_limit_bytes 4.02653184e+08
# HELP oomguard_requests_admitted_total Requests the guard admitted since it started, of every priority.
# TYPE oomguard_requests_admitted_total counter
oomguard_requests_admitted_total 1234
# HELP oomguard_requests_inflight Requests admitted and not yet done.
# TYPE oomguard_requests_inflight gauge
oomguard_requests_inflight 12
# HELP oomguard_requests_inflight_limit Bound on Default-priority requests in flight: the tighter of the memory bound (the memory below the admission target at the learned cost per request) and the time bound.
# TYPE oomguard_requests_inflight_limit gauge
oomguard_requests_inflight_limit 16
# HELP oomguard_requests_shed_total Requests the guard refused since it started, by priority: sheddable, default or critical.
# TYPE oomguard_requests_shed_total counter
oomguard_requests_shed_total{priority="critical"} 0
oomguard_requests_shed_total{priority="default"} 7
oomguard_requests_shed_total{priority="sheddable"} 40
# HELP oomguard_reserved_bytes Bytes held by outstanding Reserve calls, counted against headroom for admission.
# TYPE oomguard_reserved_bytes gauge
oomguard_reserved_bytes 8.388608e+06
# HELP oomguard_time_to_limit_seconds Time until the working set reaches the limit at its smoothed growth rate, in seconds; +Inf when it is not growing.
# TYPE oomguard_time_to_limit_seconds gauge
oomguard_time_to_limit_seconds 90
`

func fixedCollector(s guard.Snapshot) collector {
	return collector{snapshot: func() guard.Snapshot { return s }}
}

// TestCollectFixed checks the whole exposition of one Snapshot.
func TestCollectFixed(t *testing.T) {
	if err := testutil.CollectAndCompare(fixedCollector(fixed), strings.NewReader(fixedText)); err != nil {
		t.Fatal(err)
	}
}

// TestLintAll lints every metric, the OOM kill counter included (a guard
// outside a cgroup does not export it).
func TestLintAll(t *testing.T) {
	problems, err := testutil.CollectAndLint(fixedCollector(fixed))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(fixedCollector(fixed)); n != len(descs)+7 {
		t.Errorf("collected %d samples, want %d (one per metric, three for shed, four for memory events, two for each pressure)", n, len(descs)+7)
	}
}

// TestUnknownAndNotGrowing checks the two special values: an unknown OOM
// kill count omits the sample, a usage not growing reads +Inf.
func TestUnknownAndNotGrowing(t *testing.T) {
	s := fixed
	s.OOMKills, s.TimeToLimit = -1, -1
	c := fixedCollector(s)
	if n := testutil.CollectAndCount(c, "oomguard_cgroup_oom_kills_total"); n != 0 {
		t.Errorf("oomguard_cgroup_oom_kills_total exported %d samples with OOMKills -1, want none", n)
	}
	const want = `
# HELP oomguard_time_to_limit_seconds Time until the working set reaches the limit at its smoothed growth rate, in seconds; +Inf when it is not growing.
# TYPE oomguard_time_to_limit_seconds gauge
oomguard_time_to_limit_seconds +Inf
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "oomguard_time_to_limit_seconds"); err != nil {
		t.Fatal(err)
	}
	s.TimeToLimit = 0
	if got := timeToLimit(s); got != 0 {
		t.Errorf("time to limit at the limit = %v, want 0", got)
	}
}

func TestNewCollectorNil(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewCollector(nil) did not panic")
		}
	}()
	NewCollector(nil)
}
