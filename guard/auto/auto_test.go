package auto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// A child of TestServesWhateverTheEnvironment: the service as the
		// README writes it, with the guard init made.
		os.Exit(serveOnce())
	}
	// The guard init started owns GOMEMLIMIT; the tests start their own.
	started.Stop()
	os.Exit(m.Run())
}

// childEnv marks the test binary run as a service by
// TestServesWhateverTheEnvironment.
const childEnv = "OOMGUARD_AUTO_TEST_CHILD"

// serveOnce serves one request through Guard().Middleware, as the README
// wires it, and prints its status and whether the guard is off.
func serveOnce() int {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	srv := httptest.NewServer(Guard().Middleware(app))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/plain", strings.NewReader("a body"))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("status %d body %q off %v\n", resp.StatusCode, body, Guard().Snapshot().Off)
	return 0
}

// TestServesWhateverTheEnvironment: with the guard switched off, or with
// any bad value of its variables, a service written as the README shows,
// auto.Guard().Middleware(app), answers 200.
func TestServesWhateverTheEnvironment(t *testing.T) {
	for _, tt := range []struct {
		name, value string
		off         bool
	}{
		{"OOMGUARD", "off", true},
		{"OOMGUARD", "maybe", true},
		{"OOMGUARD_LIMIT", "a lot", true},
		{"OOMGUARD_LIMIT", "1", true},
		{"OOMGUARD_RATIO", "7", true},
		{"OOMGUARD_RATIO", "0.01", true},
		{"OOMGUARD_DUMP_DIR", "/proc/self/no/such/dir", true},
		{EnvDebugAddr, "0.0.0.0:0", true},
		{EnvDebugAddr, "no-port", true},
		{EnvDebugPublic, "yes", true},
		{"OOMGUARD_LIMIT", "1GiB", false},
	} {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=1", tt.name+"="+tt.value)
			if tt.name == EnvDebugPublic {
				cmd.Env = append(cmd.Env, EnvDebugAddr+"=127.0.0.1:0")
			}
			out, err := cmd.CombinedOutput()
			want := fmt.Sprintf("status 200 body \"hello\" off %v\n", tt.off)
			if err != nil || !strings.HasSuffix(string(out), want) {
				t.Errorf("%s=%q: %v, output:\n%s\nwant it to end with %q", tt.name, tt.value, err, out, want)
			}
			if tt.off && !strings.Contains(string(out), tt.name) {
				t.Errorf("%s=%q: no log line names the variable:\n%s", tt.name, tt.value, out)
			}
		})
	}
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

	// The listener is loopback's, but a page reached by DNS rebinding sends
	// its own name as Host: without OOMGUARD_DEBUG_PUBLIC it is refused.
	for host, want := range map[string]int{"localhost": 200, "rebind.attacker.example": 403} {
		req, _ := http.NewRequest("GET", "http://"+addr.String()+"/debug/guard/status", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: status %d, want %d", host, resp.StatusCode, want)
		}
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
	if g == nil || !g.Snapshot().Off || addr != nil || err != nil {
		t.Fatalf("OOMGUARD=off: guard %v, listener %v, error %v; want a guard that is off, no listener and no error", g, addr, err)
	}
	defer g.Stop()
	if !strings.Contains(logs.String(), "oomguard is off") {
		t.Errorf("no line says the guard is off: %q", logs.String())
	}
}
