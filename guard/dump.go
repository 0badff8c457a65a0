package guard

import (
	"runtime/trace"

	"github.com/oomguard/oomguard/guard/internal/level"
	"github.com/oomguard/oomguard/guard/internal/recorder"
)

// The heap profiles and the state record in Config.DumpDir are package
// recorder's: the guard opens it from its Config, hands it each reading,
// and publishes an EventProfile for every profile it writes.

// openRecorder opens the recorder of Config.DumpDir; nil without one, or
// when the directory is refused (see recorder.Open).
func (g *Guard) openRecorder() (*recorder.Recorder, error) {
	cfg := recorder.Config{
		Dir: g.cfg.DumpDir, MinInterval: g.cfg.DumpMinInterval, MaxCount: g.cfg.DumpMaxCount, MaxBytes: g.cfg.DumpMaxBytes,
		BeforeLimit: g.cfg.DumpBeforeLimit, Started: g.startedAt, Log: g.log,
		Written: func(name string) {
			s := g.Snapshot()
			g.publish(Event{Type: EventProfile, Level: s.Level, Previous: s.Level, Snapshot: s, Profile: name})
		},
	}
	if fc := g.cfg.FlightRecorder; fc != nil {
		cfg.Flight = &trace.FlightRecorderConfig{MinAge: fc.MinAge, MaxBytes: fc.MaxBytes}
	}
	return recorder.Open(cfg)
}

// reading is s as the recorder takes it.
func reading(s *Snapshot) *recorder.Reading {
	return &recorder.Reading{
		Time: s.Time, Level: level.Level(s.Level), Usage: s.Usage, Limit: s.Limit, Pressure: s.Pressure(), Heap: s.HeapLive,
		GrowthRate: s.GrowthRate, TimeToLimit: s.TimeToLimit, OOMKills: s.OOMKills, InFlight: s.InFlight, Leak: s.LeakSuspected,
	}
}
