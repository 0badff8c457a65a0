package promguard_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/guard/promguard"
)

// start starts a guard that leaves GOMEMLIMIT alone, so that several may run
// at once, and stops it when the test ends.
func start(t *testing.T, cfg guard.Config) *guard.Guard {
	t.Helper()
	cfg.MemoryLimitRatio = -1
	g, err := guard.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop() })
	return g
}

func TestLint(t *testing.T) {
	g := start(t, guard.Config{Limit: 1 << 30})
	problems, err := testutil.CollectAndLint(promguard.NewCollector(g))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestScrapeCritical scrapes a guard that is Critical from its first sample
// (a 1 MiB limit) and has shed requests, over HTTP on loopback.
func TestScrapeCritical(t *testing.T) {
	// A one-hour interval freezes the sampled fields after Start's first
	// sample; only the admission counters move, and only through Enter.
	g := start(t, guard.Config{Limit: 1 << 20, Interval: time.Hour, MinInterval: time.Hour})
	if l := g.Level(); l != guard.LevelCritical {
		t.Fatalf("level = %v with a 1 MiB limit, want critical", l)
	}
	ctx := context.Background()
	enter := func(p guard.Priority, n int, wantOK bool) {
		for range n {
			_, tk, ok := g.Enter(ctx, p)
			if ok != wantOK {
				t.Fatalf("Enter(%v) admitted = %v at critical, want %v", p, ok, wantOK)
			}
			if ok {
				t.Cleanup(tk.Done)
			}
		}
	}
	// Critical work fills the floor the guard keeps for Default work.
	floor := 0
	for ; g.Admit(guard.PriorityDefault); floor++ {
		if floor > 1000 {
			t.Fatal("Default work still admitted with 1000 in flight past the limit")
		}
		enter(guard.PriorityCritical, 1, true)
	}
	enter(guard.PrioritySheddable, 5, false)
	enter(guard.PriorityDefault, 3, false)
	enter(guard.PriorityCritical, 2, true)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(promguard.NewCollector(g))
	fams, snap := scrapeStable(t, g, reg)
	compare(t, fams, snap)

	shed := fams["oomguard_requests_shed_total"]
	if got := value(t, shed, "priority", "sheddable"); got != 5 {
		t.Errorf(`oomguard_requests_shed_total{priority="sheddable"} = %v, want 5`, got)
	}
	if got := value(t, shed, "priority", "default"); got != 3 {
		t.Errorf(`oomguard_requests_shed_total{priority="default"} = %v, want 3`, got)
	}
	if got := value(t, shed, "priority", "critical"); got != 0 {
		t.Errorf(`oomguard_requests_shed_total{priority="critical"} = %v, want 0`, got)
	}
	if got := value(t, fams["oomguard_level"]); got != 3 {
		t.Errorf("oomguard_level = %v, want 3", got)
	}
	if got := value(t, fams["oomguard_memory_limit_bytes"], "source", "config"); got != 1<<20 {
		t.Errorf(`oomguard_memory_limit_bytes{source="config"} = %v, want %v`, got, 1<<20)
	}
	if got := value(t, fams["oomguard_requests_inflight"]); got != float64(floor+2) {
		t.Errorf("oomguard_requests_inflight = %v, want %d", got, floor+2)
	}
	if got := value(t, fams["oomguard_requests_admitted_total"]); got != float64(floor+2) {
		t.Errorf("oomguard_requests_admitted_total = %v, want %d", got, floor+2)
	}
	// +Inf until a growth rate is known; a sample after a GC cycle may
	// learn one, and then the limit, long passed, is 0 s away.
	if got := value(t, fams["oomguard_time_to_limit_seconds"]); !math.IsInf(got, 1) && got != 0 {
		t.Errorf("oomguard_time_to_limit_seconds = %v, want +Inf or 0", got)
	}
}

// TestScrapeRunning scrapes a guard sampling at its default pace, holding a
// reservation. The limit is the machine's: the test's own cgroup holds the
// other packages' tests too, and under pressure the guard samples every few
// milliseconds, faster than a scrape.
func TestScrapeRunning(t *testing.T) {
	g := start(t, guard.Config{})
	if release, err := g.Reserve(context.Background(), 1<<20); err == nil {
		defer release()
		if r := g.Snapshot().Reserved; r != 1<<20 {
			t.Fatalf("Snapshot().Reserved = %d after Reserve(1 MiB)", r)
		}
	} else {
		t.Logf("no reservation: %v (usage %d of %d)", err, g.Snapshot().Usage, g.Snapshot().Limit)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(promguard.NewCollector(g))
	fams, snap := scrapeStable(t, g, reg)
	compare(t, fams, snap)
}

// scrapeStable scrapes reg until the guard published no new sample during
// the scrape, and returns the families with the Snapshot they must show.
func scrapeStable(t *testing.T, g *guard.Guard, reg prometheus.Gatherer) (map[string]*dto.MetricFamily, guard.Snapshot) {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	for range 50 {
		before := g.Snapshot()
		fams := scrape(t, srv)
		if after := g.Snapshot(); after == before {
			return fams, before
		}
	}
	t.Fatal("the guard sampled during each of 50 scrapes")
	return nil, guard.Snapshot{}
}

// scrape GETs the text exposition from srv and parses it with expfmt.
func scrape(t *testing.T, srv *httptest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: %s, Content-Type %q", resp.Status, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the exposition: %v", err)
	}
	return fams
}

// want is one expected sample: its type, one label pair or none, and value.
type want struct {
	typ        dto.MetricType
	label, lv  string
	value      float64
	absentWhen bool
}

// expected lists every sample the collector must export for s.
func expected(s guard.Snapshot) map[string][]want {
	gauge, counter := dto.MetricType_GAUGE, dto.MetricType_COUNTER
	ttl := math.Inf(1)
	if s.TimeToLimit >= 0 {
		ttl = s.TimeToLimit.Seconds()
	}
	w := map[string][]want{
		"oomguard_memory_limit_bytes":     {{typ: gauge, label: "source", lv: string(s.LimitSource), value: float64(s.Limit)}},
		"oomguard_gomemlimit_bytes":       {{typ: gauge, value: float64(s.GoMemLimit)}},
		"oomguard_memory_usage_bytes":     {{typ: gauge, value: float64(s.Usage)}},
		"oomguard_memory_committed_bytes": {{typ: gauge, value: float64(s.Committed)}},
		"oomguard_heap_live_bytes":        {{typ: gauge, value: float64(s.HeapLive)}},
		"oomguard_level":                  {{typ: gauge, value: float64(s.Level)}},
		"oomguard_time_to_limit_seconds":  {{typ: gauge, value: ttl}},
		"oomguard_gc_cpu_fraction":        {{typ: gauge, value: s.GCCPUFraction}},
		"oomguard_requests_shed_total": {
			{typ: counter, label: "priority", lv: "sheddable", value: float64(s.Shed.Sheddable)},
			{typ: counter, label: "priority", lv: "default", value: float64(s.Shed.Default)},
			{typ: counter, label: "priority", lv: "critical", value: float64(s.Shed.Critical)},
		},
		"oomguard_requests_admitted_total":      {{typ: counter, value: float64(s.Admitted)}},
		"oomguard_previous_run_oom_killed":      {{typ: gauge, value: b2f(s.PreviousRunOOMKilled)}},
		"oomguard_requests_inflight":            {{typ: gauge, value: float64(s.InFlight)}},
		"oomguard_requests_inflight_limit":      {{typ: gauge, value: float64(s.InFlightLimit)}},
		"oomguard_requests_cancelled_total":     {{typ: counter, value: float64(s.Cancelled)}},
		"oomguard_requests_too_large_total":     {{typ: counter, value: float64(s.TooLarge)}},
		"oomguard_requests_shed_for_time_total": {{typ: counter, value: float64(s.ShedForTime)}},
		"oomguard_requests_late_total":          {{typ: counter, value: float64(s.ShedLate)}},
		"oomguard_requests_inflight_time_limit": {{typ: gauge, value: float64(s.TimeLimit)}},
		"oomguard_cpu_queue":                    {{typ: gauge, value: s.CPUQueue}},
		"oomguard_reserved_bytes":               {{typ: gauge, value: float64(s.Reserved)}},
		"oomguard_recommended_limit_bytes":      {{typ: gauge, value: float64(s.RecommendedLimit)}},
		"oomguard_profiles_written_total":       {{typ: counter, value: float64(s.ProfilesWritten)}},
		"oomguard_profile_write_errors_total":   {{typ: counter, value: float64(s.ProfileErrors)}},
		"oomguard_profiles_disk_bytes":          {{typ: gauge, value: float64(s.ProfileDiskBytes)}},
		"oomguard_cgroup_oom_kills_total":       {{typ: counter, value: float64(s.OOMKills), absentWhen: s.OOMKills < 0}},
		"oomguard_cgroup_read_errors_total":     {{typ: counter, value: float64(s.ReadErrors)}},
		"oomguard_cgroup_memory_events_total": {
			{typ: counter, label: "event", lv: "high", value: float64(s.MemoryEvents.High), absentWhen: !s.HasMemoryEvents},
			{typ: counter, label: "event", lv: "max", value: float64(s.MemoryEvents.Max)},
			{typ: counter, label: "event", lv: "oom", value: float64(s.MemoryEvents.OOM)},
			{typ: counter, label: "event", lv: "oom_kill", value: float64(s.MemoryEvents.OOMKill)},
		},
		"oomguard_cgroup_memory_pressure_avg10_ratio": {
			{typ: gauge, label: "kind", lv: "some", value: s.MemoryPressure.SomeAvg10 / 100, absentWhen: !s.HasMemoryPressure},
			{typ: gauge, label: "kind", lv: "full", value: s.MemoryPressure.FullAvg10 / 100},
		},
		"oomguard_cgroup_memory_pressure_seconds_total": {
			{typ: counter, label: "kind", lv: "some", value: s.MemoryPressure.Some.Seconds(), absentWhen: !s.HasMemoryPressure},
			{typ: counter, label: "kind", lv: "full", value: s.MemoryPressure.Full.Seconds()},
		},
	}
	return w
}

// compare checks that fams holds exactly the samples expected for s.
func compare(t *testing.T, fams map[string]*dto.MetricFamily, s guard.Snapshot) {
	t.Helper()
	for name, ws := range expected(s) {
		f := fams[name]
		if ws[0].absentWhen {
			if f != nil {
				t.Errorf("%s present, want it absent (unknown in the snapshot)", name)
			}
			continue
		}
		if f == nil {
			t.Errorf("%s missing from the scrape", name)
			continue
		}
		if f.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
		if f.GetType() != ws[0].typ {
			t.Errorf("%s is a %v, want %v", name, f.GetType(), ws[0].typ)
		}
		if len(f.GetMetric()) != len(ws) {
			t.Errorf("%s has %d samples, want %d", name, len(f.GetMetric()), len(ws))
		}
		for _, w := range ws {
			var labels []string
			if w.label != "" {
				labels = []string{w.label, w.lv}
			}
			if got := value(t, f, labels...); got != w.value {
				t.Errorf("%s%v = %v, want %v", name, labels, got, w.value)
			}
		}
	}
	for name := range fams {
		if _, ok := expected(s)[name]; !ok {
			t.Errorf("unexpected metric %s", name)
		}
	}
}

// value returns the value of the sample of f with the given label pair, or
// of its only sample.
func value(t *testing.T, f *dto.MetricFamily, labelPair ...string) float64 {
	t.Helper()
	if f == nil {
		t.Fatalf("no such metric family")
	}
	for _, m := range f.GetMetric() {
		if len(labelPair) == 2 {
			lp := m.GetLabel()
			if len(lp) != 1 || lp[0].GetName() != labelPair[0] || lp[0].GetValue() != labelPair[1] {
				continue
			}
		} else if len(m.GetLabel()) != 0 {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
		t.Fatalf("%s: unexpected type %v", f.GetName(), f.GetType())
	}
	t.Fatalf("%s: no sample with labels %v", f.GetName(), labelPair)
	return 0
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
