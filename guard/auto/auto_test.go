package auto

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	// The guard init started owns GOMEMLIMIT; the tests start their own.
	if started != nil {
		started.Stop()
	}
	os.Exit(m.Run())
}

// env sets the variables in m for the rest of the test.
func env(t *testing.T, m map[string]string) {
	for k, v := range m {
		t.Setenv(k, v)
	}
}

func TestDebugAddr(t *testing.T) {
	env(t, map[string]string{EnvDebugAddr: "127.0.0.1:0", "OOMGUARD_LIMIT": "1GiB"})
	g, addr, err := start(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	resp, err := http.Get("http://" + addr.String() + "/debug/guard/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ Limit int64 }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 || s.Limit != 1<<30 {
		t.Errorf("status %d, limit %d, %v; want 200 and 1 GiB", resp.StatusCode, s.Limit, err)
	}
}

func TestBadEnvironment(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		name string // the variable the error must name
	}{
		{map[string]string{EnvDebugAddr: "0.0.0.0:0"}, EnvDebugAddr},
		{map[string]string{EnvDebugAddr: "no-port"}, EnvDebugAddr},
		{map[string]string{EnvDebugAddr: "127.0.0.1:0", EnvDebugPublic: "yes"}, EnvDebugPublic},
		{map[string]string{"OOMGUARD_LIMIT": "a lot"}, "OOMGUARD_LIMIT"},
		{map[string]string{"OOMGUARD_RATIO": "2"}, "OOMGUARD_RATIO"},
		{map[string]string{"OOMGUARD": "maybe"}, "OOMGUARD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env(t, tt.env)
			g, _, err := start(slog.New(slog.DiscardHandler))
			if g != nil {
				g.Stop()
			}
			if err == nil || !strings.Contains(err.Error(), tt.name) || !strings.Contains(err.Error(), "the guard is off") {
				t.Errorf("env %v: %v, want an error naming %s that says the guard is off", tt.env, err, tt.name)
			}
		})
	}
}

func TestPublicAddr(t *testing.T) {
	env(t, map[string]string{EnvDebugAddr: "0.0.0.0:0", EnvDebugPublic: "1", "OOMGUARD_LIMIT": "1GiB"})
	g, addr, err := start(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	if addr == nil {
		t.Fatal("no listener")
	}
}

func TestOff(t *testing.T) {
	var logs bytes.Buffer
	env(t, map[string]string{"OOMGUARD": "off", EnvDebugAddr: "127.0.0.1:0"})
	g, addr, err := start(slog.New(slog.NewTextHandler(&logs, nil)))
	if g != nil || addr != nil || err != nil {
		t.Errorf("OOMGUARD=off: guard %v, listener %v, error %v; want none", g, addr, err)
	}
	if !strings.Contains(logs.String(), "oomguard is off") {
		t.Errorf("no line says the guard is off: %q", logs.String())
	}
}
