package statuspage

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestChartLabels: the axes are labelled in round units people read, at
// round steps.
func TestChartLabels(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{agoLabel(0), "now"}, {agoLabel(30 * time.Second), "30 s ago"}, {agoLabel(2 * time.Minute), "2 min ago"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	for _, tt := range []struct{ hi, unit, want float64 }{
		{280 << 20, 1 << 20, 50 << 20}, {1.05 * (1 << 20), 1 << 20, 0.2 * (1 << 20)}, {4.4, 1, 1}, {1.1, 1, 0.2}, {700 << 30, 1 << 30, 200 << 30},
	} {
		if got := niceStep(tt.hi, tt.unit); got != tt.want || tt.hi/got > 6 {
			t.Errorf("niceStep(%v, %v) = %v, want %v", tt.hi, tt.unit, got, tt.want)
		}
	}
}

// TestRequestsChartTicks: the request chart's y axis is labelled at its
// round steps as people write them, however the steps add up in floating
// point: at most one request in flight makes steps of 0.2, and three of
// them are 0.6000000000000001.
func TestRequestsChartTicks(t *testing.T) {
	t0 := time.Now()
	var pts []Point
	for i := range 10 {
		pts = append(pts, Point{T: t0.Add(time.Duration(i) * time.Second).UnixNano(), InFlight: int32(i % 2)})
	}
	var b strings.Builder
	writeRequestsChart(&b, pts)
	var labels []string
	for _, m := range regexp.MustCompile(`<text x="`+num(chartLeft-6)+`" y="[^"]*" text-anchor="end">([^<]*)</text>`).FindAllStringSubmatch(b.String(), -1) {
		labels = append(labels, m[1])
	}
	if got, want := strings.Join(labels, " "), "0 0.2 0.4 0.6 0.8 1"; got != want {
		t.Errorf("the y axis is labelled %q, want %q", got, want)
	}
}
