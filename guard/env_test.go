package guard

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

// withEnv makes Start see env in place of the process's environment.
func withEnv(t *testing.T, env map[string]string) {
	t.Helper()
	old := lookupEnv
	lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	t.Cleanup(func() { lookupEnv = old })
}

func TestEnvironment(t *testing.T) {
	base := Config{MemoryLimitRatio: -1}
	tests := []struct {
		name string
		env  map[string]string
		want func(t *testing.T, g *Guard)
		bad  string // the variable a *ConfigError must name
	}{
		{name: "limit in bytes", env: map[string]string{EnvLimit: "67108864"}, want: func(t *testing.T, g *Guard) {
			if s := g.Snapshot(); s.Limit != 64<<20 || s.LimitSource != LimitFromConfig {
				t.Errorf("limit %d from %s, want 64 MiB from config", s.Limit, s.LimitSource)
			}
		}},
		{name: "limit in GOMEMLIMIT syntax", env: map[string]string{EnvLimit: "512MiB"}, want: func(t *testing.T, g *Guard) {
			if s := g.Snapshot(); s.Limit != 512<<20 {
				t.Errorf("limit %d, want 512 MiB", s.Limit)
			}
		}},
		{name: "limit garbage", env: map[string]string{EnvLimit: "lots"}, bad: EnvLimit},
		{name: "limit below 1 MiB", env: map[string]string{EnvLimit: "1KiB"}, bad: EnvLimit},
		{name: "limit with a sign", env: map[string]string{EnvLimit: "-5MiB"}, bad: EnvLimit},
		{name: "ratio", env: map[string]string{EnvRatio: "0.5", EnvLimit: "1GiB"}, want: func(t *testing.T, g *Guard) {
			if g.cfg.MemoryLimitRatio != 0.5 {
				t.Errorf("ratio %v, want 0.5", g.cfg.MemoryLimitRatio)
			}
		}},
		{name: "ratio above 1", env: map[string]string{EnvRatio: "1.5"}, bad: EnvRatio},
		{name: "ratio as a percentage", env: map[string]string{EnvRatio: "90%"}, bad: EnvRatio},
		{name: "ratio too small", env: map[string]string{EnvRatio: "0.01"}, bad: EnvRatio},
		{name: "dump dir", env: map[string]string{EnvDumpDir: "DIR"}, want: func(t *testing.T, g *Guard) {
			if g.rec == nil || !strings.HasSuffix(g.cfg.DumpDir, "oomguard-env-dump") {
				t.Errorf("DumpDir %q, profiles on %v", g.cfg.DumpDir, g.rec != nil)
			}
		}},
		{name: "on", env: map[string]string{EnvSwitch: "on"}, want: func(t *testing.T, g *Guard) {
			if g.off || g.Snapshot().Off {
				t.Error("off with OOMGUARD=on")
			}
		}},
		{name: "switch garbage", env: map[string]string{EnvSwitch: "disabled"}, bad: EnvSwitch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env[EnvDumpDir] == "DIR" {
				tt.env[EnvDumpDir] = t.TempDir() + "/oomguard-env-dump"
			}
			withEnv(t, tt.env)
			g, err := Start(context.Background(), base)
			if tt.bad != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Variable != tt.bad || !strings.Contains(err.Error(), tt.bad) || !strings.Contains(err.Error(), tt.env[tt.bad]) {
					t.Fatalf("Start = %v, want a *ConfigError naming %s and its value", err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer g.Stop()
			tt.want(t, g)
		})
	}
}

// TestOff: OOMGUARD=off gives a guard that admits everything, writes
// nothing, starts no goroutine and leaves GOMEMLIMIT alone.
func TestOff(t *testing.T) {
	withEnv(t, map[string]string{EnvSwitch: "off"})
	before := debug.SetMemoryLimit(-1)
	dir := t.TempDir() + "/never"
	g, err := Start(context.Background(), Config{Limit: 1 << 20, DumpDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if debug.SetMemoryLimit(-1) != before {
		t.Error("GOMEMLIMIT changed by a guard that is off")
	}
	s := g.Snapshot()
	if !s.Off || s.Level != LevelNormal {
		t.Errorf("snapshot %+v, want Off at Normal", s)
	}
	for range 100 {
		if _, tk, ok := g.Enter(context.Background(), PrioritySheddable); !ok {
			t.Fatal("a guard that is off shed work")
		} else {
			tk.Done()
		}
	}
	if _, err := g.Reserve(context.Background(), 1<<40); err != nil {
		t.Errorf("Reserve on a guard that is off: %v", err)
	}
	g.Stop()
	g.Stop()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DumpDir %s made by a guard that is off: %v", dir, err)
	}
}

// TestInertGuardMethods: every exported method works on a guard that is
// off, from the environment or from Off, before and after Stop: the switch
// an operator reaches for in an incident must not take the service down.
func TestInertGuardMethods(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T) *Guard
	}{
		{"OOMGUARD=off", func(t *testing.T) *Guard {
			withEnv(t, map[string]string{EnvSwitch: "off"})
			g, err := Start(context.Background(), Config{})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}},
		{"Off", func(*testing.T) *Guard { return Off() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.make(t)
			for _, stopped := range []bool{false, true} {
				if stopped {
					if err := g.Stop(); err != nil {
						t.Errorf("Stop: %v", err)
					}
				}
				exerciseInert(t, g, stopped)
			}
		})
	}
}

func exerciseInert(t *testing.T, g *Guard, stopped bool) {
	t.Helper()
	ctx := context.Background()
	if !g.Snapshot().Off || g.Level() != LevelNormal || g.PostMortem() != nil || g.RetryAfter() <= 0 {
		t.Errorf("stopped %v: snapshot off %v, level %v, post-mortem %v, retry after %v", stopped, g.Snapshot().Off, g.Level(), g.PostMortem(), g.RetryAfter())
	}
	for _, p := range []Priority{PrioritySheddable, PriorityDefault, PriorityCritical} {
		if !g.Admit(p) {
			t.Errorf("stopped %v: Admit(%v) false", stopped, p)
		}
		if _, tk, ok := g.Enter(ctx, p); !ok {
			t.Errorf("stopped %v: Enter(%v) shed", stopped, p)
		} else {
			tk.Done()
		}
		if _, tk, ok := g.EnterBytes(ctx, p, math.MaxInt64); !ok {
			t.Errorf("stopped %v: EnterBytes(%v, MaxInt64) shed", stopped, p)
		} else {
			tk.Done()
		}
	}
	if release, err := g.Reserve(ctx, math.MaxInt64); err != nil {
		t.Errorf("stopped %v: Reserve: %v", stopped, err)
	} else {
		release()
	}
	cancel := g.Subscribe(func(Event) {})
	cancel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, h := range []struct {
		name   string
		h      http.Handler
		method string
		path   string
		want   int
	}{
		{"Middleware", g.Middleware(ok), "POST", "/", http.StatusOK},
		{"ReadyHandler", g.ReadyHandler(), "GET", "/", http.StatusOK},
		{"DebugHandler", g.DebugHandler(), "GET", "/status", http.StatusOK},
		{"DebugHandler", g.DebugHandler(), "GET", "/", http.StatusOK},
		{"DebugHandler", g.DebugHandler(), "GET", "/postmortem", http.StatusOK},
		{"DebugHandler", g.DebugHandler(), "GET", "/heap/latest", http.StatusNotFound},
		{"DebugHandler", g.DebugHandler(), "POST", "/heap", http.StatusNotFound},
	} {
		req := httptest.NewRequest(h.method, h.path, strings.NewReader("body"))
		req.RemoteAddr = "127.0.0.1:1234"
		req.Host = "127.0.0.1"
		rec := httptest.NewRecorder()
		h.h.ServeHTTP(rec, req)
		if rec.Code != h.want {
			t.Errorf("stopped %v: %s %s %s: status %d, want %d", stopped, h.name, h.method, h.path, rec.Code, h.want)
		}
	}
	if s := g.Snapshot(); s.InFlight != 0 || s.Reserved != 0 {
		t.Errorf("stopped %v: in flight %d, declared %d; want 0, 0", stopped, s.InFlight, s.Reserved)
	}
}

// TestEnvReportLoad: OOMGUARD_REPORT_LOAD turns Config.ReportLoad on or
// off whatever Config says; empty leaves it; anything else is refused.
func TestEnvReportLoad(t *testing.T) {
	for _, tt := range []struct {
		v          string
		cfg, want  bool
		overridden bool
	}{
		{"on", false, true, true},
		{"off", true, false, true},
		{"", true, true, false},
		{"", false, false, false},
	} {
		lookup := func(k string) (string, bool) { return tt.v, k == EnvReportLoad }
		c, _, set, err := Config{ReportLoad: tt.cfg}.fromEnv(lookup)
		if err != nil || c.ReportLoad != tt.want || (len(set) == 1) != tt.overridden {
			t.Errorf("%s=%q over %v: ReportLoad %v, overrides %v, error %v; want %v", EnvReportLoad, tt.v, tt.cfg, c.ReportLoad, set, err, tt.want)
		}
	}
	_, _, _, err := Config{}.fromEnv(func(k string) (string, bool) { return "yes", k == EnvReportLoad })
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Variable != EnvReportLoad || !strings.Contains(err.Error(), `"yes"`) {
		t.Errorf("%s=yes: %v, want a *ConfigError naming it and its value", EnvReportLoad, err)
	}
}
