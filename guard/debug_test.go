package guard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard/internal/recorder"
	"github.com/oomguard/oomguard/internal/admission"
	"github.com/oomguard/oomguard/profile"
)

func debugServer(t *testing.T, g *Guard) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestDebugHandler(t *testing.T) {
	dir := t.TempDir()
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DumpDir: dir, DebugWrite: true, DumpMinInterval: time.Hour})
	base := debugServer(t, g).URL + "/debug/guard"

	resp, body := do(t, "GET", base+"/status")
	var s Snapshot
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &s) != nil || s.Limit <= 0 || s.Time.IsZero() {
		t.Fatalf("GET /status: %s %q", resp.Status, body)
	}

	// POST /heap writes one profile, then the minimum interval refuses.
	resp, body = do(t, "POST", base+"/heap")
	var m profile.Meta
	if resp.StatusCode != http.StatusCreated || json.Unmarshal([]byte(body), &m) != nil || m.Reason != "requested" {
		t.Fatalf("POST /heap: %s %q", resp.Status, body)
	}
	if resp, _ := do(t, "POST", base+"/heap"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second POST /heap: %s, want 429 with Retry-After", resp.Status)
	}

	// The profile asks for its pair at the next GC cycle; make that cycle
	// happen, so that the list holds both, whenever the runtime collects.
	runtime.GC()
	waitFor(t, g, "the requested profile's pair is written", func(s Snapshot) bool { return s.ProfilesWritten == 2 })
	resp, body = do(t, "GET", base+"/heap")
	var list []profile.Meta
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 2 ||
		list[0].Name != m.Name || list[1].Reason != recorder.PairReason {
		t.Fatalf("GET /heap: %s %q", resp.Status, body)
	}
	if resp, body := do(t, "GET", base+"/heap/latest"); resp.StatusCode != 200 || len(body) == 0 {
		t.Errorf("GET /heap/latest: %s, %d bytes", resp.Status, len(body))
	}
	resp, body = do(t, "GET", base+"/")
	if resp.StatusCode != 200 || !strings.Contains(body, m.Name) || !strings.Contains(body, "normal") {
		t.Errorf("GET /: %s, page lacks the profile or the level", resp.Status)
	}
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/heap/..%2f..%2fetc%2fpasswd", 400},
		{"GET", "/heap/" + strings.Repeat("a", 300), 400},
		{"GET", "/heap/heap-20200101T000000.000Z-1.pb.gz", 404},
		{"DELETE", "/heap/latest", 405},
		{"PUT", "/status", 405},
	} {
		if resp, _ := do(t, tt.method, base+tt.path); resp.StatusCode != tt.want {
			t.Errorf("%s %s: %s, want %d", tt.method, tt.path, resp.Status, tt.want)
		}
	}
	if s := g.Snapshot(); s.ProfilesWritten != 2 || s.ProfileDiskBytes <= 0 {
		t.Errorf("snapshot counts %d profiles, %d bytes", s.ProfilesWritten, s.ProfileDiskBytes)
	}
}

func TestDebugWriteOffByDefault(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DumpDir: t.TempDir()})
	base := debugServer(t, g).URL + "/debug/guard"
	if resp, _ := do(t, "POST", base+"/heap"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /heap without DebugWrite: %s, want 405", resp.Status)
	}
	if n := g.Snapshot().ProfilesWritten; n != 0 {
		t.Errorf("%d profiles written", n)
	}
}

func TestDebugWithoutDumpDir(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	base := debugServer(t, g).URL + "/debug/guard"
	if resp, body := do(t, "GET", base+"/heap"); resp.StatusCode != 404 || !strings.Contains(body, "DumpDir") {
		t.Errorf("GET /heap without DumpDir: %s %q", resp.Status, body)
	}
	if resp, _ := do(t, "GET", base+"/status"); resp.StatusCode != 200 {
		t.Errorf("GET /status: %s", resp.Status)
	}
}

func TestDebugAuthorize(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DebugAuthorize: func(r *http.Request) error {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			return errors.New("bad token")
		}
		return nil
	}})
	base := debugServer(t, g).URL + "/debug/guard"
	if resp, _ := do(t, "GET", base+"/status"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unauthorized GET /status: %s, want 403", resp.Status)
	}
	req, _ := http.NewRequest("GET", base+"/status", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("authorized GET /status: %s", resp.Status)
	}
}

func TestDebugWriteAfterStop(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DumpDir: t.TempDir(), DebugWrite: true})
	base := debugServer(t, g).URL + "/debug/guard"
	g.Stop()
	if resp, _ := do(t, "POST", base+"/heap"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST /heap after Stop: %s, want 503", resp.Status)
	}
	if n := g.Snapshot().ProfilesWritten; n != 0 {
		t.Errorf("%d profiles written after Stop", n)
	}
}

// loopbackRequest is httptest.NewRequest from a loopback client to a
// loopback Host, which DebugHandler answers by default; httptest's own
// RemoteAddr, 192.0.2.1, and Host, example.com, it refuses.
func loopbackRequest(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "127.0.0.1:1234"
	r.Host = "127.0.0.1"
	return r
}

// TestDebugHandlerLoopbackOnly: without Config.DebugAuthorize, only
// loopback clients that no proxy relayed are answered; every other
// RemoteAddr, garbage included, gets 403 with a one-line reason on every
// route.
func TestDebugHandlerLoopbackOnly(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DumpDir: t.TempDir(), DebugWrite: true})
	h := g.DebugHandler()
	serve := func(method, path, remote string, header http.Header) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = remote
		r.Host = "127.0.0.1"
		for k, v := range header {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, tt := range []struct {
		remote string
		ok     bool
	}{
		{"127.0.0.1:5555", true},
		{"127.8.9.10:1", true},
		{"[::1]:5555", true},
		{"[::ffff:127.0.0.1]:80", true}, // IPv4-mapped, as a dual-stack listener reports it
		{"[::1%lo]:80", true},
		{"10.0.0.5:5555", false},
		{"192.0.2.1:80", false},
		{"[2001:db8::1]:443", false},
		{"[::ffff:10.0.0.1]:80", false},
		{"[fe80::1%eth0]:80", false},
		{"0.0.0.0:80", false},
		{"[::]:80", false},
		{"128.0.0.1:80", false},
		{"localhost:80", false}, // a name, not an address
		{"127.0.0.1", false},    // no port: not what a server sets
		{"::1", false},
		{"[::1", false},
		{"", false}, // a Unix socket's client
		{"@", false},
		{"garbage", false},
		{"127.0.0.1.evil:80", false},
		{"\n\x00:80", false},
		{strings.Repeat("1", 10000), false},
	} {
		w := serve("GET", "/status", tt.remote, nil)
		if tt.ok {
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"Limit"`) {
				t.Errorf("RemoteAddr %.40q: %d %.80q, want 200 and the status", tt.remote, w.Code, w.Body.String())
			}
			continue
		}
		body := w.Body.String()
		if w.Code != http.StatusForbidden || !strings.HasPrefix(body, "forbidden: ") ||
			strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") || len(body) > 200 ||
			!strings.Contains(body, "Config.DebugAuthorize") {
			t.Errorf("RemoteAddr %.40q: %d %q, want 403 and one short line naming Config.DebugAuthorize", tt.remote, w.Code, body)
		}
	}

	// Every route is guarded, and a refused POST /heap writes nothing.
	for _, route := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/heap"}, {"GET", "/heap/latest"}, {"GET", "/heap/diff?base=a&target=b"}, {"POST", "/heap"}, {"GET", "/postmortem"},
	} {
		if w := serve(route.method, route.path, "203.0.113.7:40000", nil); w.Code != http.StatusForbidden {
			t.Errorf("%s %s from 203.0.113.7: %d, want 403", route.method, route.path, w.Code)
		}
	}
	if n := g.Snapshot().ProfilesWritten; n != 0 {
		t.Errorf("%d profiles written on refused requests", n)
	}

	// A request relayed by a proxy on the same host is refused: its real
	// client is unknown.
	for _, hdr := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		w := serve("GET", "/status", "127.0.0.1:5555", http.Header{hdr: {"for=192.0.2.60"}})
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), hdr) {
			t.Errorf("loopback request with %s: %d %q, want 403 naming the header", hdr, w.Code, w.Body.String())
		}
	}
}

// TestDebugHandlerRefusesForeignHost: without Config.DebugAuthorize, a
// loopback client is answered only if its Host is a loopback IP or
// localhost, so that a page reached by DNS rebinding, whose Host is its own
// name, reads no profile and writes none.
func TestDebugHandlerRefusesForeignHost(t *testing.T) {
	// No minimum interval: every admitted POST /heap would write.
	g := quietGuard(t, Config{DumpDir: t.TempDir(), DebugWrite: true, DumpMinInterval: time.Nanosecond})
	if _, err := g.rec.Write(profile.Meta{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	h := g.DebugHandler()
	serve := func(method, path, host string) *httptest.ResponseRecorder {
		r := loopbackRequest(method, path)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, host := range []string{
		"127.0.0.1", "127.0.0.1:6060", "127.8.9.10:1", "[::1]", "[::1]:6060",
		"[0:0:0:0:0:0:0:1]:80", "[::ffff:127.0.0.1]:80",
		"localhost", "localhost:6060", "LocalHost:80",
	} {
		if w := serve("GET", "/heap/latest", host); w.Code != http.StatusOK {
			t.Errorf("Host %q: %d %.80q, want 200 and the profile", host, w.Code, w.Body)
		}
	}
	for _, host := range []string{
		"rebind.attacker.example", "rebind.attacker.example:6060",
		"localhost.", "localhost.:6060", "app.localhost", "localhost.attacker.example", "127.0.0.1.nip.io",
		"localhoſt", // a long s, which Unicode case folding maps to s
		"127.0.0.1:", "127.0.0.1:http", "localhost:80:80", "[::1]:", "[::1]x",
		"::1", "[::1", "[127.0.0.1]", "[::1%25lo]", "[fe80::1]", "[::]", "0.0.0.0", "10.0.0.5",
		"127.1", "2130706433", "", "example.com", "\n", strings.Repeat("a", 10000),
	} {
		for _, route := range []struct{ method, path string }{{"GET", "/heap/latest"}, {"GET", "/"}, {"POST", "/heap"}} {
			w := serve(route.method, route.path, host)
			body := w.Body.String()
			if w.Code != http.StatusForbidden || !strings.HasPrefix(body, "forbidden: host "+fmt.Sprintf("%.64q", host)) ||
				strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") || len(body) > 300 ||
				!strings.Contains(body, "Config.DebugAuthorize") {
				t.Errorf("%s %s, Host %.40q: %d %.300q, want 403 and one short line naming the host and Config.DebugAuthorize", route.method, route.path, host, w.Code, body)
			}
		}
	}
	if n := g.Snapshot().ProfilesWritten; n != 1 {
		t.Errorf("%d profiles written, want only the test's", n)
	}
}

// TestDebugHandlerCrossOrigin: a browser's cross-origin request to a route
// that writes is refused, with or without Config.DebugAuthorize, so that a
// page on another site cannot make the service write profiles; a
// same-origin one, and one without the browser's headers (curl's), is
// served, and so is a cross-origin GET, which writes nothing.
func TestDebugHandlerCrossOrigin(t *testing.T) {
	for _, authorize := range []func(*http.Request) error{nil, func(*http.Request) error { return nil }} {
		// No minimum interval: every admitted POST /heap writes.
		g := quietGuard(t, Config{DumpDir: t.TempDir(), DebugWrite: true, DumpMinInterval: time.Nanosecond, DebugAuthorize: authorize})
		h := g.DebugHandler()
		written := 0
		for _, tt := range []struct {
			method, path string
			header       map[string]string
			want         int
		}{
			{"POST", "/heap", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
			{"POST", "/heap", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
			{"POST", "/heap", map[string]string{"Origin": "http://evil.example"}, 403},
			{"POST", "/heap", map[string]string{"Origin": "http://127.0.0.1:6060"}, 403}, // another port is another origin
			{"DELETE", "/heap/latest", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
			{"POST", "/heap", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1"}, 201},
			{"POST", "/heap", map[string]string{"Sec-Fetch-Site": "none"}, 201}, // typed by the user
			{"POST", "/heap", map[string]string{"Origin": "http://127.0.0.1"}, 201},
			{"POST", "/heap", nil, 201},
			{"GET", "/heap/latest", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, 200},
		} {
			r := loopbackRequest(tt.method, tt.path)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if tt.method == "POST" && w.Code == http.StatusCreated {
				written++
			}
			body := w.Body.String()
			if w.Code != tt.want {
				t.Errorf("DebugAuthorize set %t: %s %s with %v: %d %.80q, want %d", authorize != nil, tt.method, tt.path, tt.header, w.Code, body, tt.want)
				continue
			}
			if w.Code == http.StatusForbidden && (!strings.HasPrefix(body, "forbidden: cross-origin request") ||
				strings.Count(body, "\n") != 1 || !strings.Contains(body, fmt.Sprintf("%q", r.Header.Get("Sec-Fetch-Site"))) ||
				!strings.Contains(body, fmt.Sprintf("%q", r.Header.Get("Origin")))) {
				t.Errorf("%s %s with %v: 403 %q, want one line naming Sec-Fetch-Site and Origin", tt.method, tt.path, tt.header, body)
			}
		}
		if n := g.Snapshot().ProfilesWritten; n != int64(written) || written != 4 {
			t.Errorf("DebugAuthorize set %t: %d profiles written, %d POSTs answered 201; want 4 of each", authorize != nil, n, written)
		}
	}
}

// TestDebugHeapDiffRefusedAtHigh: at High and Critical, GET /heap/diff,
// which parses two whole profiles, gets 503 with Retry-After before the
// profile store is asked, so even a name the store would reject gets it;
// below High, and on the other routes, profiles are served.
func TestDebugHeapDiffRefusedAtHigh(t *testing.T) {
	g := quietGuard(t, Config{DumpDir: t.TempDir(), RetryAfter: 2500 * time.Millisecond})
	m, err := g.rec.Write(profile.Meta{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h := g.DebugHandler()
	diff := "/heap/diff?base=" + m.Name + "&target=" + m.Name
	for _, tt := range []struct {
		level        Level
		method, path string
		want         int
	}{
		{LevelNormal, "GET", diff, 200},
		{LevelElevated, "GET", diff, 200},
		{LevelHigh, "GET", diff, 503},
		{LevelHigh, "HEAD", diff, 503},
		{LevelHigh, "GET", "/heap/diff?base=nope&target=nope", 503}, // the store would answer 404
		{LevelHigh, "GET", "/heap/latest", 200},
		{LevelHigh, "GET", "/heap", 200},
		{LevelCritical, "GET", diff, 503},
		{LevelCritical, "GET", "/heap/" + m.Name, 200},
		{LevelNormal, "GET", diff, 200},
	} {
		g.decide(admission.Decision{Limit: math.MaxInt32, SheddableLimit: math.MaxInt32, Room: math.MaxInt64 / 2, SheddableRoom: math.MaxInt64 / 2}, tt.level, time.Now())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, loopbackRequest(tt.method, tt.path))
		if w.Code != tt.want {
			t.Errorf("at %s, %s %s: %d %.80q, want %d", tt.level, tt.method, tt.path, w.Code, w.Body, tt.want)
			continue
		}
		if w.Code == http.StatusServiceUnavailable && (w.Header().Get("Retry-After") != "3" ||
			tt.method == "GET" && (!strings.Contains(w.Body.String(), tt.level.String()) || strings.Count(w.Body.String(), "\n") != 1)) {
			t.Errorf("at %s, %s %s: 503 with Retry-After %q and %q; want Retry-After 3 (Config.RetryAfter rounded up) and one line naming the level",
				tt.level, tt.method, tt.path, w.Header().Get("Retry-After"), w.Body)
		}
	}
}

// TestDebugAuthorizeReplacesLoopbackCheck: with Config.DebugAuthorize set,
// it alone decides, for any RemoteAddr and Host, and its error is answered
// on one line.
func TestDebugAuthorizeReplacesLoopbackCheck(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1, DebugAuthorize: func(r *http.Request) error {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			return errors.New("bad token\nsecond line")
		}
		return nil
	}})
	h := g.DebugHandler()
	for _, tt := range []struct {
		remote, auth string
		want         int
	}{
		{"10.0.0.5:5555", "Bearer s3cret", 200},
		{"garbage", "Bearer s3cret", 200},
		{"127.0.0.1:5555", "Bearer s3cret", 200}, // Host example.com: DebugAuthorize owns the Host check too
		{"127.0.0.1:5555", "", 403},
		{"10.0.0.5:5555", "", 403},
	} {
		r := httptest.NewRequest("GET", "/status", nil)
		r.RemoteAddr = tt.remote
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("RemoteAddr %q, Authorization %q: %d, want %d", tt.remote, tt.auth, w.Code, tt.want)
		}
		if w.Code == 403 && w.Body.String() != "forbidden: bad token second line\n" {
			t.Errorf("403 body %q, want the error on one line", w.Body.String())
		}
	}
}

// TestDebugHandlerNosniff: every response of the debug handler, refusals
// and errors included, tells browsers not to sniff its content type, so
// that no profile or JSON is read as HTML or script.
func TestDebugHandlerNosniff(t *testing.T) {
	g := quietGuard(t, Config{DumpDir: t.TempDir(), DebugWrite: true, DumpMinInterval: time.Hour})
	h := g.DebugHandler()
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := serve(loopbackRequest("POST", "/heap"))
	var m profile.Meta
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &m) != nil || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("POST /heap: %d %q, X-Content-Type-Options %q; want 201 and nosniff", w.Code, w.Body, w.Header().Get("X-Content-Type-Options"))
	}
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"POST", "/heap", 429},
		{"GET", "/", 200},
		{"GET", "/status", 200},
		{"GET", "/postmortem", 200},
		{"GET", "/heap", 200},
		{"GET", "/heap/latest", 200},
		{"HEAD", "/heap/" + m.Name, 200},
		{"GET", "/heap/diff?base=" + m.Name + "&target=" + m.Name, 200},
		{"GET", "/heap/" + strings.Repeat("a", 300), 400},
		{"GET", "/heap/heap-20200101T000000.000Z-1.pb.gz", 404},
		{"GET", "/nope", 404},
		{"PUT", "/status", 405},
	} {
		w := serve(loopbackRequest(tt.method, tt.path))
		if w.Code != tt.want || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: %d, X-Content-Type-Options %q; want %d and nosniff", tt.method, tt.path, w.Code, w.Header().Get("X-Content-Type-Options"), tt.want)
		}
	}
	refused := httptest.NewRequest("GET", "/status", nil) // from 192.0.2.1
	if w := serve(refused); w.Code != http.StatusForbidden || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("refused GET /status: %d, X-Content-Type-Options %q; want 403 and nosniff", w.Code, w.Header().Get("X-Content-Type-Options"))
	}
}

// FuzzLoopbackOnly: any RemoteAddr is judged without a panic, and one
// admitted is a loopback address with a port.
func FuzzLoopbackOnly(f *testing.F) {
	for _, s := range []string{"127.0.0.1:80", "[::1]:443", "[::ffff:127.0.0.1]:1", "10.0.0.1:80", "[fe80::1%eth0]:80", "", "@", "[::1", "localhost:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, remote string) {
		r := httptest.NewRequest("GET", "/status", nil)
		r.RemoteAddr = remote
		r.Host = "127.0.0.1"
		if err := loopbackOnly(r); err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > 1024 {
				t.Fatalf("reason for %q is %d bytes or several lines: %q", remote, len(msg), msg)
			}
			return
		}
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			t.Fatalf("admitted %q, which is not host:port", remote)
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Unmap().IsLoopback() {
			t.Fatalf("admitted %q, whose host is not a loopback address", remote)
		}
	})
}

// FuzzLoopbackHost: any Host from a loopback client is judged without a
// panic, and one admitted is localhost or a loopback IP, with or without a
// port.
func FuzzLoopbackHost(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "127.0.0.1:80", "[::1]:443", "[::1]", "localhost", "LOCALHOST:1", "localhost.", "a.localhost", "[::1", "::1", "rebind.attacker.example", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		r := loopbackRequest("GET", "/status")
		r.Host = host
		if err := loopbackOnly(r); err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > 1024 {
				t.Fatalf("reason for %q is %d bytes or several lines: %q", host, len(msg), msg)
			}
			return
		}
		name := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			name = h
		} else if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
			name = name[1 : len(name)-1]
		}
		if strings.ToLower(name) == "localhost" {
			return
		}
		if a, err := netip.ParseAddr(name); err != nil || !a.Unmap().IsLoopback() {
			t.Fatalf("admitted Host %q, which is neither localhost nor a loopback IP", host)
		}
	})
}

// TestStatusDurationsInSeconds: GET /status gives the sampling interval and
// the time to the limit in seconds, under names that say so, and not the
// Snapshot's nanoseconds; the rest is the Snapshot's fields.
func TestStatusDurationsInSeconds(t *testing.T) {
	g := quietGuard(t, Config{Interval: 300 * time.Millisecond})
	s := *g.snap.Load()
	s.Interval, s.TimeToLimit = 300*time.Millisecond, 3200*time.Millisecond
	g.snap.Store(&s)
	get := func() map[string]any {
		w := httptest.NewRecorder()
		g.DebugHandler().ServeHTTP(w, loopbackRequest("GET", "/status"))
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || w.Code != 200 {
			t.Fatalf("GET /status: %d %s", w.Code, w.Body)
		}
		return m
	}
	m := get()
	if m["interval_seconds"] != 0.3 || m["time_to_limit_seconds"] != 3.2 {
		t.Errorf("interval_seconds %v, time_to_limit_seconds %v; want 0.3 and 3.2", m["interval_seconds"], m["time_to_limit_seconds"])
	}
	for _, k := range []string{"Interval", "TimeToLimit"} {
		if v, ok := m[k]; ok {
			t.Errorf("/status still has %s: %v", k, v)
		}
	}
	if m["Limit"] != float64(s.Limit) || m["Level"] != "normal" {
		t.Errorf("/status lacks the Snapshot's fields: %v", m)
	}
	s.TimeToLimit = -1
	g.snap.Store(&s)
	if m := get(); m["time_to_limit_seconds"] != -1.0 {
		t.Errorf("not growing: time_to_limit_seconds %v, want -1", m["time_to_limit_seconds"])
	}
}

// syncBuffer is a bytes.Buffer that goroutines may log into at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
