//go:build !linux

package notify

import (
	"fmt"
	"runtime"
	"time"
)

func unsupported(what string) error {
	return fmt.Errorf("%w: %s: Linux only, not %s", ErrUnavailable, what, runtime.GOOS)
}

// Threshold is a v1 memory cgroup usage threshold: Linux only.
type Threshold struct {
	Dir   string
	Bytes int64
	watcher
}

// Start returns ErrUnavailable.
func (t *Threshold) Start() error { return unsupported("v1 usage threshold") }

// Events watches a v2 cgroup's memory.events: Linux only.
type Events struct {
	Dir   string
	Local bool
	watcher
}

// Start returns ErrUnavailable.
func (e *Events) Start() error { return unsupported("v2 memory events") }

// Pressure is a PSI trigger: Linux only.
type Pressure struct {
	Path          string
	Full          bool
	Stall, Window time.Duration
	watcher
}

// Start returns ErrUnavailable.
func (p *Pressure) Start() error { return unsupported("PSI trigger") }

// Systemd follows systemd's memory-pressure protocol: Linux only.
type Systemd struct {
	Getenv func(string) string
	watcher
}

// Start returns ErrUnavailable.
func (s *Systemd) Start() error { return unsupported("systemd memory pressure") }
