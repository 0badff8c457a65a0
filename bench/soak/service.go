package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/oomguard/oomguard/bench/internal/exampleservice"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

// service is the example service running in the soak's cgroup.
type service struct {
	*exampleservice.Process
	addr, debugAddr string // with the scheme
	log             string
}

// startService runs the service in cg with its profiles and log under dir,
// and waits for it to print its addresses.
func startService(ctx context.Context, cg *cgrouptest.Child, bin, dir string) (*service, error) {
	log := filepath.Join(dir, "service.log")
	cmd := cg.Command(bin, "-mode", "oomguard", "-dump-dir", filepath.Join(dir, "profiles"))
	// A heap profile sample every 4 KiB allocated, not 512: the guard's
	// own heap is tens of KiB, which the default rate sees as 0 or 512.
	cmd.Env = append(exampleservice.Env(), "GODEBUG=memprofilerate=4096")
	p, err := exampleservice.Start(ctx, cmd, log)
	if early := (*exampleservice.ExitedEarly)(nil); errors.As(err, &early) {
		return nil, fmt.Errorf("service exited at start (%v); see its log:\n%s", early.State, readTail(log))
	} else if err != nil {
		return nil, err
	}
	return &service{Process: p, addr: "http://" + p.Addr, debugAddr: "http://" + p.DebugAddr, log: log}, nil
}

// stop ends the service gracefully, or kills it after 15s.
func (s *service) stop() { s.Stop(15 * time.Second) }

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4<<10 {
		b = b[len(b)-4<<10:]
	}
	return string(b)
}
