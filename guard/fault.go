package guard

import (
	"context"
	"log/slog"
	"time"
)

// fault follows one reading or write that can fail, such as the cgroup's
// usage or a profile: it logs when the failures start and when they end,
// once each, so that a fault lasting an hour is two lines and not one a
// sample. Failures in between log at DEBUG. The caller counts each
// failure where the Snapshot shows it. A fault is owned by one goroutine.
type fault struct {
	what    string     // what fails, for the log: "memory cgroup usage"
	level   slog.Level // of the line that says the failures started
	failing bool
	since   time.Time
	count   int64 // failures since the fault started
}

// fail records one failure; fallback says what the guard does meanwhile.
func (f *fault) fail(log *slog.Logger, now time.Time, err error, fallback string) {
	f.count++
	if f.failing {
		log.Debug(f.what+" failed again", slog.Any("error", err))
		return
	}
	f.failing, f.since = true, now
	log.Log(context.Background(), f.level, f.what+" failed; "+fallback, slog.Any("error", err))
}

// ok records a success, which ends a fault in progress.
func (f *fault) ok(log *slog.Logger, now time.Time) {
	if !f.failing {
		return
	}
	log.Info(f.what+" works again", slog.Duration("after", now.Sub(f.since)), slog.Int64("failures", f.count))
	f.failing, f.count = false, 0
}
