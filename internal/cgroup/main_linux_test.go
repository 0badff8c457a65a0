//go:build linux

package cgroup_test

// Tests on the real kernel: each makes a child memory cgroup with
// internal/cgrouptest (which skips, saying why, without root or a writable
// memory controller, and removes the cgroup when the test ends) and runs the
// test binary itself in it as a helper process.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/oomguard/oomguard/internal/cgroup"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

const (
	mib       = 1 << 20
	helperEnv = "OOMGUARD_CGROUP_HELPER"
)

// crossCheck, when set (automemlimit_linux_test.go), is a second opinion on
// the limit, computed inside the helper process.
var crossCheck func() (uint64, error)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		helper(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// report is what the "limit" helper prints.
type report struct {
	Version       cgroup.Version
	Dir, Mount    string
	Limit         cgroup.Limit
	Err           string
	CrossCheck    uint64
	CrossErr      string
	HasCrossCheck bool
}

func helper(mode string) {
	switch mode {
	case "limit":
		var r report
		g, err := cgroup.Self()
		if err == nil {
			r.Version, r.Dir, r.Mount = g.Version, g.Dir, g.Mount
			r.Limit, err = g.Limit()
		}
		if err != nil {
			r.Err = err.Error()
		}
		if crossCheck != nil {
			r.HasCrossCheck = true
			r.CrossCheck, err = crossCheck()
			if err != nil {
				r.CrossErr = err.Error()
			}
		}
		json.NewEncoder(os.Stdout).Encode(r)
	case "touch":
		// Touch 50 MiB, say so, and hold it until stdin closes.
		b := make([]byte, 50*mib)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		runtime.KeepAlive(b)
	case "oom":
		// Allocate and touch far past any limit the test sets.
		var keep [][]byte
		for i := 0; i < 256; i++ {
			b := make([]byte, 8*mib)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		runtime.KeepAlive(keep)
		fmt.Println("survived 2 GiB")
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		os.Exit(2)
	}
}

func helperCommand(t *testing.T, c *cgrouptest.Child, mode string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := c.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	return cmd
}
