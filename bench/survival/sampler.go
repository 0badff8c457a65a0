package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/oomguard/oomguard/internal/cgroup"
)

// A sample is one reading of the service's memory and, in oomguard mode, of
// the guard's state.
type sample struct {
	At            time.Duration // since the attack started; negative before
	Usage         int64         // working set in bytes; -1 unknown
	Level         int           // guard level 0-3 (normal..critical); -1 without a guard
	InFlight      int64
	InFlightLimit int64
	WorkCost      int64 // the guard's learned bytes per unit of work
	Reserved      int64 // bytes declared by the work in flight
	Profiles      int64
	HeapLive      int64   // the guard's reading of the live Go heap
	GrowthRate    float64 // the guard's smoothed usage growth, bytes/s
	Shed          int64   // requests the guard refused so far
	Target        int64   // the guard's admission target, bytes
	HeapGoal      int64   // the Go runtime's heap goal, bytes
	GCCPU         float64 // the GC's share of the CPU
	Thrashing     bool    // the guard counts the GC as thrashing
	// The time bound: its limit (0 none), the line for a CPU, and the
	// mean and uncongested times in flight.
	TimeLimit                 int64
	CPUQueue                  float64
	TimeInFlight, Uncongested time.Duration
	// Recommended is the guard's right-sizing recommendation, bytes; 0
	// none.
	Recommended int64
}

// guardStatus is the part of the guard's /debug/guard/status (a
// guard.Snapshot) that the harness reads.
type guardStatus struct {
	Level           string
	Usage           int64
	InFlight        int64
	InFlightLimit   int64
	WorkCost        int64
	Reserved        int64
	ProfilesWritten int64
	HeapLive        int64
	GrowthRate      float64
	AdmissionTarget int64
	HeapGoal        int64
	GCCPUFraction   float64
	GCThrashing     bool
	TimeLimit       int64
	CPUQueue        float64
	TimeInFlight    time.Duration
	// UncongestedTimeInFlight is the Snapshot's field of that name.
	UncongestedTimeInFlight time.Duration
	Shed                    struct{ Sheddable, Default, Critical int64 }
	RecommendedLimit        int64
}

var levelIndex = map[string]int{"normal": 0, "elevated": 1, "high": 2, "critical": 3}

// sampler reads the child cgroup's usage (if any) and the guard's status (if
// any) every interval until ctx is done. Usage comes from the cgroup when
// there is one, else from the guard's own reading.
type sampler struct {
	usage     *cgroup.Reader // nil without a child cgroup
	statusURL string         // "" without a guard
	client    *http.Client
}

func (s *sampler) run(ctx context.Context, start time.Time, every time.Duration) []sample {
	var out []sample
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		out = append(out, s.read(ctx, start))
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}

func (s *sampler) read(ctx context.Context, start time.Time) sample {
	sm := sample{At: time.Since(start), Usage: -1, Level: -1}
	if s.usage != nil {
		if u, err := s.usage.Usage(); err == nil {
			sm.Usage = u.WorkingSet()
		}
	}
	if s.statusURL == "" {
		return sm
	}
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.statusURL, nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return sm
	}
	defer resp.Body.Close()
	var st guardStatus
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return sm
	}
	if l, ok := levelIndex[st.Level]; ok {
		sm.Level = l
	}
	if s.usage == nil {
		sm.Usage = st.Usage
	}
	sm.InFlight, sm.InFlightLimit, sm.Profiles = st.InFlight, st.InFlightLimit, st.ProfilesWritten
	sm.WorkCost, sm.Reserved = st.WorkCost, st.Reserved
	sm.HeapLive, sm.GrowthRate = st.HeapLive, st.GrowthRate
	sm.Target, sm.HeapGoal, sm.GCCPU, sm.Thrashing = st.AdmissionTarget, st.HeapGoal, st.GCCPUFraction, st.GCThrashing
	sm.TimeLimit, sm.CPUQueue, sm.TimeInFlight, sm.Uncongested = st.TimeLimit, st.CPUQueue, st.TimeInFlight, st.UncongestedTimeInFlight
	sm.Shed = st.Shed.Sheddable + st.Shed.Default + st.Shed.Critical
	sm.Recommended = st.RecommendedLimit
	return sm
}

// writeSeries writes the samples as CSV, for a closer look at a run (kept
// with -keep).
func writeSeries(path string, samples []sample) error {
	var b strings.Builder
	b.WriteString("seconds,usage_bytes,level,in_flight,in_flight_limit,work_cost_bytes,reserved_bytes,profiles,heap_live_bytes,growth_bytes_per_s,shed,target_bytes,heap_goal_bytes,gc_cpu,gc_thrashing,time_limit,cpu_queue,time_in_flight_ms,uncongested_ms,recommended_bytes\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "%.2f,%d,%d,%d,%d,%d,%d,%d,%d,%.0f,%d,%d,%d,%.3f,%t,%d,%.2f,%.1f,%.1f,%d\n", s.At.Seconds(), s.Usage, s.Level, s.InFlight, s.InFlightLimit,
			s.WorkCost, s.Reserved, s.Profiles, s.HeapLive, s.GrowthRate, s.Shed, s.Target, s.HeapGoal, s.GCCPU, s.Thrashing,
			s.TimeLimit, s.CPUQueue, ms(s.TimeInFlight), ms(s.Uncongested), s.Recommended)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write series: %w", err)
	}
	return nil
}
