package guard

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStartRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
		value string
	}{
		{"negative limit", Config{Limit: -1}, "Limit", "-1"},
		{"tiny limit", Config{Limit: 1000}, "Limit", "1000"},
		{"ratio above one", Config{MemoryLimitRatio: 1.5}, "MemoryLimitRatio", "1.5"},
		{"ratio NaN", Config{MemoryLimitRatio: math.NaN()}, "MemoryLimitRatio", "NaN"},
		{"negative interval", Config{Interval: -time.Second}, "Interval", "-1s"},
		{"negative min interval", Config{MinInterval: -1}, "MinInterval", "-1ns"},
		{"min interval above interval", Config{Interval: time.Millisecond, MinInterval: time.Second}, "MinInterval", "1s"},
		{"thresholds out of order", Config{Thresholds: Thresholds{Elevated: 0.8, High: 0.7, Critical: 0.9}}, "Thresholds.High", "0.7"},
		{"critical not above high", Config{Thresholds: Thresholds{Elevated: 0.5, High: 0.9, Critical: 0.9}}, "Thresholds.Critical", "0.9"},
		{"threshold above one", Config{Thresholds: Thresholds{Elevated: 0.5, High: 0.9, Critical: 1.2}}, "Thresholds.Critical", "1.2"},
		{"default elevated above high", Config{Thresholds: Thresholds{High: 0.6}}, "Thresholds.High", "0.6"},
		{"negative threshold", Config{Thresholds: Thresholds{Elevated: -0.5}}, "Thresholds.Elevated", "-0.5"},
		{"tiny ratio", Config{MemoryLimitRatio: 1e-9}, "MemoryLimitRatio", "1e-09"},
		{"negative hysteresis", Config{Hysteresis: -0.1}, "Hysteresis", "-0.1"},
		{"hysteresis too wide", Config{Hysteresis: 0.8}, "Hysteresis", "0.8"},
		{"negative dwell", Config{Dwell: -time.Second}, "Dwell", "-1s"},
		{"negative dump interval", Config{DumpMinInterval: -1}, "DumpMinInterval", "-1ns"},
		{"negative dump count", Config{DumpMaxCount: -3}, "DumpMaxCount", "-3"},
		{"negative dump bytes", Config{DumpMaxBytes: -5}, "DumpMaxBytes", "-5"},
		{"negative dump horizon", Config{DumpBeforeLimit: -time.Second}, "DumpBeforeLimit", "-1s"},
		{"negative retry after", Config{RetryAfter: -time.Second}, "RetryAfter", "-1s"},
		{"negative ready hold", Config{ReadyHold: -time.Second}, "ReadyHold", "-1s"},
		{"gc fraction above one", Config{GCThrashFraction: 2}, "GCThrashFraction", "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Start(context.Background(), tt.cfg)
			if err == nil {
				g.Stop()
				t.Fatal("Start accepted a bad Config")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			if ce.Field != tt.field {
				t.Errorf("field = %q, want %q", ce.Field, tt.field)
			}
			msg := err.Error()
			if !strings.Contains(msg, "Config."+tt.field) || !strings.Contains(msg, tt.value) {
				t.Errorf("error %q does not name Config.%s and the value %s", msg, tt.field, tt.value)
			}
		})
	}
}

func TestThresholdsDefaultOneByOne(t *testing.T) {
	c, err := Config{Thresholds: Thresholds{Critical: 0.98}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Thresholds{0.70, 0.85, 0.98}); c.Thresholds != want {
		t.Errorf("thresholds %+v, want %+v", c.Thresholds, want)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		MemoryLimitRatio: 0.9,
		Interval:         500 * time.Millisecond,
		MinInterval:      2 * time.Millisecond,
		Thresholds:       Thresholds{0.70, 0.85, 0.95},
		Hysteresis:       0.05,
		Dwell:            2 * time.Second,
		GCThrashFraction: 0.4,
		RetryAfter:       time.Second,
		ReadyHold:        5 * time.Second,
		DumpMinInterval:  time.Second,
		DumpBeforeLimit:  10 * time.Second,
	}
	if c.Classifier != nil {
		t.Error("default Classifier is not nil")
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults = %+v\nwant       %+v", c, want)
	}
}
