package guard

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestStartLineWithNoConfiguration: a zero Config logs the start line
// through slog.Default, in human units.
func TestStartLineWithNoConfiguration(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(old)
	withEnv(t, nil)
	g, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	g.Stop()
	line := ""
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, "oomguard started:") {
			line = l
		}
	}
	for _, want := range []string{"level=INFO", "component=oomguard", "limit ", " from ", "GOMEMLIMIT ", "usage ", "profiles off", "notifications: "} {
		if !strings.Contains(line, want) {
			t.Errorf("start line %q lacks %q", line, want)
		}
	}
	if !strings.Contains(line, "MiB") && !strings.Contains(line, "GiB") {
		t.Errorf("start line %q has no human units", line)
	}
}

// TestLevelSeverities: Elevated and Normal at INFO, High and Critical at
// WARN.
func TestLevelSeverities(t *testing.T) {
	var buf bytes.Buffer
	g := &Guard{log: slog.New(slog.NewTextHandler(&buf, nil))}
	for _, c := range []struct {
		prev, next Level
		want       string
	}{
		{LevelNormal, LevelElevated, "INFO"},
		{LevelElevated, LevelHigh, "WARN"},
		{LevelHigh, LevelCritical, "WARN"},
		{LevelCritical, LevelNormal, "INFO"},
	} {
		buf.Reset()
		g.sayLevel(c.prev, &Snapshot{Level: c.next, Usage: 200 << 20, Limit: 256 << 20})
		if got := buf.String(); !strings.Contains(got, "level="+c.want) || !strings.Contains(got, "200.0 MiB of 256.0 MiB") {
			t.Errorf("%v → %v: %q, want %s in MiB", c.prev, c.next, got, c.want)
		}
	}
}
