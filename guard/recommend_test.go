package guard

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/admission"
)

// TestRecommendationSaid drives the sampler's recommendation with a clock
// of the test's: a steady overload for memory is said at once and then
// once a minute, in MiB, with the limit it would replace; a leak and
// shedding for time are said as reasons, with no limit.
func TestRecommendationSaid(t *testing.T) {
	sizing := admission.Sizing{Base: 100 << 20, Unit: 1 << 20, Critical: 0.95, TailFree: math.Inf(1), TailOne: math.Inf(1)}
	for _, tt := range []struct {
		name    string
		leak    bool
		forTime bool
		want    string
		reason  string
	}{
		{"memory", false, false, "recommended memory limit 270.3 MiB (now 256.0 MiB) to serve the offered load of the last 5 minutes without shedding: 150 units of work in flight", ""},
		{"leak", true, false, "no memory limit recommended: memory grows independent of load, likely a leak; more memory would only put the kill off", "leak"},
		{"time", false, true, "no memory limit recommended: the time bound refuses most of the work shed; the CPUs, not memory, are short", "time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := quietGuard(t, Config{})
			var logs syncBuffer
			g.log = slog.New(slog.NewTextHandler(&logs, nil))
			s := &g.sampler
			s.limit.bytes = 256 << 20
			d := admission.Decision{Leak: tt.leak, Sizing: sizing}
			// 50 in flight; every 20 ms, 2 admitted and done, 4 refused:
			// half a second in flight, 150 units offered.
			g.admitted.Add(50)
			now := time.Unix(1e9, 0)
			var snap Snapshot
			for range 130 * 50 {
				now = now.Add(20 * time.Millisecond)
				g.admitted.Add(2)
				g.finished.Add(2)
				g.shed[1].Add(4)
				if tt.forTime {
					g.shedForTime.Add(4)
				}
				snap = Snapshot{Limit: s.limit.bytes}
				s.recommend(now, &snap, d)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 3 {
				t.Fatalf("%d lines over 130 s, want 3, at 1 s, 61 s and 121 s:\n%s", len(lines), logs.String())
			}
			for _, l := range lines {
				if !strings.Contains(l, "level=INFO") || !strings.Contains(l, tt.want) {
					t.Errorf("line %q, want INFO %q", l, tt.want)
				}
			}
			if tt.reason == "" && (snap.RecommendedLimit != sizing.LimitFor(150, false) || snap.RecommendedLimitReason != "") {
				t.Errorf("Snapshot: %d bytes, %q; want %d", snap.RecommendedLimit, snap.RecommendedLimitReason, sizing.LimitFor(150, false))
			}
			if tt.reason != "" && (snap.RecommendedLimit != 0 || snap.RecommendedLimitReason != tt.reason) {
				t.Errorf("Snapshot: %d bytes, %q; want 0, %q", snap.RecommendedLimit, snap.RecommendedLimitReason, tt.reason)
			}
		})
	}
}

// TestRecommendationOutside: a guard that sheds for memory recommends a
// limit above its own, in its Snapshot and in GET /status; one that does
// not says so.
func TestRecommendationOutside(t *testing.T) {
	g := quietGuard(t, Config{Limit: 1 << 20, Interval: 20 * time.Millisecond, MinInterval: 20 * time.Millisecond})
	s := &g.sampler
	now := time.Now().Round(0)
	s.sample(now, false)
	if r := g.Snapshot().RecommendedLimitReason; r != "not shedding" {
		t.Errorf("before any work, reason %q, want %q", r, "not shedding")
	}
	var held []Ticket
	for range 3 * 50 {
		// Each 20 ms, the work in flight ends and ten units arrive; the
		// 1 MiB limit admits the floor's few.
		for _, tk := range held {
			tk.Done()
		}
		held = held[:0]
		for range 10 {
			if _, tk, ok := g.Enter(context.Background(), PriorityDefault); ok {
				held = append(held, tk)
			}
		}
		now = now.Add(20 * time.Millisecond)
		s.sample(now, false)
	}
	for _, tk := range held {
		tk.Done()
	}
	snap := g.Snapshot()
	if snap.Shed.Default == 0 || snap.Admitted == 0 {
		t.Fatalf("shed %d, admitted %d: the test sheds nothing or admits nothing", snap.Shed.Default, snap.Admitted)
	}
	if snap.RecommendedLimit <= snap.Limit || snap.RecommendedLimitReason != "" {
		t.Errorf("recommended %d bytes (%q) at a limit of %d, shedding for memory", snap.RecommendedLimit, snap.RecommendedLimitReason, snap.Limit)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/status", nil)
	req.RemoteAddr = "127.0.0.1:1234"
	req.Host = "127.0.0.1"
	g.DebugHandler().ServeHTTP(rec, req)
	var st struct {
		RecommendedLimit       int64
		RecommendedLimitReason string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.RecommendedLimit != snap.RecommendedLimit {
		t.Errorf("GET /status: %d bytes, %v; want %d, from %s", st.RecommendedLimit, err, snap.RecommendedLimit, rec.Body.String())
	}
}
