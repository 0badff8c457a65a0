package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

// Ballast: memory in the cgroup that the guard cannot shed, as a sidecar's
// or a cgo library's. Once a swing, in its last calm quarter, a process of
// this binary started in the cgroup holds its working set at ballastTo of
// the limit for ballastHold: the service goes to Critical and back, and
// nothing it does can prevent it.
const (
	ballastTo   = 0.97 // past Critical (0.95), short of the limit
	ballastHold = 3 * time.Second
	ballastFlag = "-ballast-limit"
)

// runBallast is the ballast process, in the cgroup whose limit is limit:
// for ballastHold it tops the cgroup's working set up to ballastTo of the
// limit every 20ms, since the service frees memory at Critical (sized once,
// the ballast left the working set under Critical in 2 swings of 10), and
// exits.
func runBallast(limit int64) {
	g, err := cgroup.Self()
	if err != nil {
		fatalf("ballast: %v", err)
	}
	r, err := g.NewReader()
	if err != nil {
		fatalf("ballast: %v", err)
	}
	var held [][]byte
	for end := time.Now().Add(ballastHold); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		u, err := r.Usage()
		if err != nil {
			fatalf("ballast: %v", err)
		}
		if n := int64(ballastTo*float64(limit)) - u.WorkingSet(); n >= 1<<20 {
			b := make([]byte, n)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			held = append(held, b)
		}
	}
	runtime.KeepAlive(held)
	os.Exit(0)
}

// ballast starts a ballast process in cg at the start of each swing's last
// quarter, plus a second, and counts those that ran their course.
func ballast(ctx context.Context, cg *cgrouptest.Child, limit int64, period, d time.Duration, ran *int) {
	self, err := os.Executable()
	if err != nil {
		return
	}
	start := time.Now()
	for at := 3*period/4 + time.Second; at < d; at += period {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(at))):
		}
		cmd := cg.Command(self, ballastFlag, strconv.FormatInt(limit, 10))
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Printf("soak: ballast: %v %s\n", err, out)
			continue
		}
		*ran++
	}
}
