// Package vmtest is what the cgroup v2 VM test runner's two halves share:
// the plan the host packs into the initramfs and the guest's /init runs,
// the lines by which the guest reports back over its serial port, and the
// initramfs format.
//
// The runner (internal/vmtest/runvm, started by .ci/vm-test) builds test
// binaries on the host, because the guest has no Go toolchain, packs them
// with /init (internal/vmtest/guestinit) into an initramfs, and boots a
// stock kernel in QEMU with cgroup2 mounted.
package vmtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PlanPath is where the plan lies in the initramfs, as JSON.
const PlanPath = "/plan.json"

// A Plan is what the guest runs, in order.
type Plan struct {
	Steps []Step
}

// A Step is one program run in the guest, in a leaf cgroup of its own.
type Step struct {
	Name    string   // the package or program, as reported; no spaces
	Args    []string // Args[0] is the program's path in the initramfs
	Env     []string // added to the guest's base environment
	Timeout time.Duration
}

// The guest reports each step between a start and an end line; the end
// line carries the exit code (-1: killed at the timeout) and the time.
const (
	linePrefix = "@vmtest "
	ReadyLine  = linePrefix + "ready"
	DoneLine   = linePrefix + "done"
)

// StartLine is the line before a step's output.
func StartLine(name string) string { return linePrefix + "start " + name }

// EndLine is the line after a step's output. stall is the longest time
// the guest's CPUs did not run during the step (the host did not schedule
// the VM); note says what else went wrong (cgroups left behind), empty if
// nothing.
func EndLine(name string, code int, elapsed, stall time.Duration, note string) string {
	s := fmt.Sprintf("%send %s %d %.1fs %.2fs", linePrefix, name, code, elapsed.Seconds(), stall.Seconds())
	if note != "" {
		s += " " + note
	}
	return s
}

// An End is a parsed end line.
type End struct {
	Name           string
	Code           int
	Elapsed, Stall string
	Note           string
}

// ParseStart returns the step name of a start line.
func ParseStart(line string) (string, bool) {
	return strings.CutPrefix(line, linePrefix+"start ")
}

// ParseEnd parses an end line.
func ParseEnd(line string) (End, bool) {
	rest, ok := strings.CutPrefix(line, linePrefix+"end ")
	if !ok {
		return End{}, false
	}
	f := strings.SplitN(rest, " ", 5)
	if len(f) < 4 {
		return End{}, false
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return End{}, false
	}
	e := End{Name: f[0], Code: code, Elapsed: f[2], Stall: f[3]}
	if len(f) == 5 {
		e.Note = f[4]
	}
	return e, true
}
