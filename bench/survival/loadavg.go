package main

import (
	"os"
	"strconv"
	"strings"
)

// loadAverage is the machine's one-minute load average from /proc/loadavg;
// -1 where there is none. The harness records it before and after, so that
// a run on a busy machine shows as one.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
