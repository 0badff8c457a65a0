package exampleservice

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "EXAMPLESERVICE_TEST_HELPER"

// TestMain runs the test binary as a stand-in for the example when
// helperEnv names what it should do.
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "serve":
		// Print the addresses as the example does, and exit 0 on SIGTERM.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		fmt.Println("some other line")
		fmt.Println("listening 127.0.0.1:1001")
		fmt.Fprintln(os.Stderr, "a log line")
		fmt.Println("debug 127.0.0.1:1002")
		<-sig
		os.Exit(0)
	case "die":
		fmt.Fprintln(os.Stderr, "failed to fill the cache")
		os.Exit(3)
	}
	os.Exit(2)
}

func helper(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(Env(), helperEnv+"="+mode)
	return cmd
}

func TestStartReadsTheAddressesAndStopEndsIt(t *testing.T) {
	log := filepath.Join(t.TempDir(), "service.log")
	p, err := Start(context.Background(), helper(t, "serve"), log)
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr != "127.0.0.1:1001" || p.DebugAddr != "127.0.0.1:1002" {
		t.Errorf("addresses %q and %q, want 127.0.0.1:1001 and 127.0.0.1:1002", p.Addr, p.DebugAddr)
	}
	if p.Exited() || !p.ExitedAt().IsZero() || p.State() != nil {
		t.Error("a running service reads as exited")
	}
	if code, sigkill := p.Stop(10 * time.Second); code != 0 || sigkill {
		t.Errorf("Stop = %d, %v; want 0, false (the helper exits 0 on SIGTERM)", code, sigkill)
	}
	if !p.Exited() || p.ExitedAt().IsZero() || p.State() == nil {
		t.Error("a stopped service does not read as exited")
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), "a log line") {
		t.Errorf("the log holds %q, want the service's stderr", b)
	}
}

func TestStartReportsAnEarlyExit(t *testing.T) {
	log := filepath.Join(t.TempDir(), "service.log")
	_, err := Start(context.Background(), helper(t, "die"), log)
	var early *ExitedEarly
	if !errors.As(err, &early) {
		t.Fatalf("Start = %v, want an *ExitedEarly", err)
	}
	if early.Code != 3 || early.SIGKILL || early.Log != log {
		t.Errorf("ExitedEarly = %+v, want code 3, no SIGKILL, log %s", early, log)
	}
}

func TestStartHonoursTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cmd := exec.Command("sleep", "30")
	if _, err := Start(ctx, cmd, filepath.Join(t.TempDir(), "service.log")); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled context = %v, want context.Canceled", err)
	}
	if cmd.ProcessState == nil {
		t.Error("the process was left running")
	}
}

func TestEnv(t *testing.T) {
	for _, kv := range []string{"GOMEMLIMIT=1GiB", "GOGC=50", "OOMGUARD=off", "OOMGUARD_LIMIT=1", "AUTOMEMLIMIT=0.5", "GODEBUG=x=1", "SURVIVAL_TEST_KEEP=1"} {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	env := Env()
	for _, gone := range []string{"GOMEMLIMIT=1GiB", "GOGC=50", "OOMGUARD=off", "OOMGUARD_LIMIT=1", "AUTOMEMLIMIT=0.5", "GODEBUG=x=1"} {
		if slices.Contains(env, gone) {
			t.Errorf("the service's environment keeps %s", gone)
		}
	}
	if !slices.Contains(env, "SURVIVAL_TEST_KEEP=1") {
		t.Error("the service's environment lost an unrelated variable")
	}
}
