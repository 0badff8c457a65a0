package cgrouptest

import (
	"testing"
	"time"
)

func TestParseCPUStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     CPUThrottling
		ok       bool
	}{
		{"v1", "nr_periods 120\nnr_throttled 90\nthrottled_time 4500000000\n", CPUThrottling{120, 90, 4500 * time.Millisecond}, true},
		{"v2", "usage_usec 900\nuser_usec 800\nsystem_usec 100\nnr_periods 120\nnr_throttled 90\nthrottled_usec 4500000\nnr_bursts 0\n", CPUThrottling{120, 90, 4500 * time.Millisecond}, true},
		{"no throttling figures", "usage_usec 900\n", CPUThrottling{}, false},
		{"garbled", "nr_periods x\nnr_throttled 1\nthrottled_usec 2\n", CPUThrottling{Throttled: 1, ThrottledTime: 2 * time.Microsecond}, false},
	} {
		got, ok := parseCPUStat([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
