// Package fault logs the failures of a reading or a write that can fail
// for a long time, such as a cgroup's file or a profile's disk, once when
// they start and once when they end.
package fault

import (
	"context"
	"log/slog"
	"time"
)

// Fault follows one reading or write that can fail, such as the cgroup's
// usage or a profile: it logs when the failures start and when they end,
// once each, so that a fault lasting an hour is two lines and not one a
// sample. Failures in between log at DEBUG. The caller counts each
// failure where the guard's Snapshot shows it. A Fault is owned by one
// goroutine.
type Fault struct {
	What  string     // what fails, for the log: "memory cgroup usage"
	Level slog.Level // of the line that says the failures started

	failing bool
	since   time.Time
	count   int64 // failures since the fault started
}

// Fail records one failure; fallback says what the guard does meanwhile.
func (f *Fault) Fail(log *slog.Logger, now time.Time, err error, fallback string) {
	f.count++
	if f.failing {
		log.Debug(f.What+" failed again", slog.Any("error", err))
		return
	}
	f.failing, f.since = true, now
	log.Log(context.Background(), f.Level, f.What+" failed; "+fallback, slog.Any("error", err))
}

// OK records a success, which ends a fault in progress.
func (f *Fault) OK(log *slog.Logger, now time.Time) {
	if !f.failing {
		return
	}
	log.Info(f.What+" works again", slog.Duration("after", now.Sub(f.since)), slog.Int64("failures", f.count))
	f.failing, f.count = false, 0
}

// Failing reports a fault in progress: the last reading or write failed.
func (f *Fault) Failing() bool { return f.failing }
