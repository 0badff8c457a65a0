package auto

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/oomguard/oomguard/internal/cgrouptest"
)

// TestBlankImportInACgroup: a program that only blank-imports the package,
// in a real 200 MiB memory cgroup, runs with GOMEMLIMIT at 180 MiB; with
// OOMGUARD=off, GOMEMLIMIT stays unlimited.
func TestBlankImportInACgroup(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no Go toolchain to build the program: ", err)
	}
	bin := filepath.Join(t.TempDir(), "blankimport")
	if out, err := exec.Command(gobin, "build", "-o", bin, "./testdata/blankimport").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	child := cgrouptest.New(t, 200<<20)
	for _, tt := range []struct {
		env  string
		want int64
	}{
		{"", 180 << 20},
		{"OOMGUARD=off", math.MaxInt64},
	} {
		cmd := child.Command(bin)
		cmd.Env = append(withoutOOMGuard(os.Environ()), tt.env)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v", tt.env, bin, err)
		}
		got, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil || got != tt.want {
			t.Errorf("with %q in a 200 MiB cgroup: GOMEMLIMIT %s, want %d", tt.env, out, tt.want)
		}
	}
}

// withoutOOMGuard drops the variables that would configure the guard, and
// GOMEMLIMIT, which would win over it.
func withoutOOMGuard(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OOMGUARD") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			out = append(out, kv)
		}
	}
	return out
}
