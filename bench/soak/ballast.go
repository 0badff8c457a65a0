package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/oomguard/oomguard/internal/cgrouptest"
)

// Ballast: memory in the cgroup that the guard cannot shed, as a sidecar's
// or a cgo library's. Once a swing, in its last calm quarter, a process of
// this binary started in the cgroup fills it to ballastTo of the limit for
// ballastHold: the service goes to Critical and back, and nothing it does
// can prevent it.
const (
	ballastTo   = 0.97 // past Critical (0.95) by what the guard frees there, short of the limit
	ballastHold = 3 * time.Second
	ballastFlag = "-ballast-bytes"
)

// runBallast is the ballast process: it allocates and touches n bytes,
// holds them, and exits.
func runBallast(n int) {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	time.Sleep(ballastHold)
	runtime.KeepAlive(b)
	os.Exit(0)
}

// ballast starts a ballast process in cg at the start of each swing's last
// quarter, plus a second, sized from the cgroup's usage then. It counts the
// ballasts run.
func ballast(ctx context.Context, cg *cgrouptest.Child, limit int64, period, d time.Duration, ran *int) {
	self, err := os.Executable()
	if err != nil {
		return
	}
	r, err := cg.NewReader()
	if err != nil {
		return
	}
	defer r.Close()
	start := time.Now()
	for at := 3*period/4 + time.Second; at < d; at += period {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(at))):
		}
		u, err := r.Usage()
		if err != nil {
			continue
		}
		// The working set, as the guard judges it: page cache the kernel
		// can drop does not count.
		n := int64(ballastTo*float64(limit)) - u.WorkingSet()
		if n <= 0 {
			continue
		}
		cmd := cg.Command(self, ballastFlag, strconv.FormatInt(n, 10))
		if err := cmd.Run(); err != nil {
			fmt.Printf("soak: ballast of %s: %v\n", mib(n), err)
			continue
		}
		*ran++
	}
}
