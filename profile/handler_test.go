package profile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// fixture is a store with two real heap profiles, base and target, between
// which leakyFunction grew, and bait files that must never be served.
type fixture struct {
	s            *Store
	parent, dir  string
	base, target Meta
	unindexed    string // a profile-like file in dir that the index lacks
}

const (
	secretBait    = "SECRET-BAIT"
	unindexedBait = "UNINDEXED-BAIT"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{parent: t.TempDir()}
	f.dir = filepath.Join(f.parent, "profiles")
	f.s = openStore(t, Options{Dir: f.dir, MinInterval: -1})
	var err error
	leak(t, 1<<10)
	runtime.GC()
	if f.base, err = f.s.Write(Meta{Reason: "level Elevated", Level: "Elevated", Usage: 700, Limit: 1000, Heap: 500}); err != nil {
		t.Fatal(err)
	}
	leak(t, 16<<10) // 16 MiB
	runtime.GC()
	if f.target, err = f.s.Write(Meta{Reason: "level High", Level: "High", Usage: 900, Limit: 1000, Heap: 800}); err != nil {
		t.Fatal(err)
	}
	f.unindexed = profileName(KindHeap, time.Now(), 999)
	for path, content := range map[string]string{
		filepath.Join(f.parent, "secret"): secretBait,
		filepath.Join(f.dir, f.unindexed): unindexedBait,
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mounts are the ways the handler is served: alone, and below a prefix as
// the guard mounts it.
func mounts(s *Store) map[string]http.Handler {
	return map[string]http.Handler{
		"":             Handler(s),
		"/debug/guard": http.StripPrefix("/debug/guard", Handler(s)),
	}
}

func serve(h http.Handler, method, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

func TestHandlerList(t *testing.T) {
	f := newFixture(t)
	for prefix, h := range mounts(f.s) {
		w := serve(h, "GET", prefix+"/heap")
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s/heap: %d %q", prefix, w.Code, w.Header().Get("Content-Type"))
		}
		var got []map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("GET %s/heap: %v in %s", prefix, err, w.Body)
		}
		if len(got) != 2 || got[0]["name"] != f.base.Name || got[1]["name"] != f.target.Name {
			t.Fatalf("GET %s/heap = %s, want base then target", prefix, w.Body)
		}
		var keys []string
		for k := range got[1] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"heap", "level", "limit", "name", "reason", "size", "time", "usage"}; !slices.Equal(keys, want) {
			t.Errorf("list entry keys = %q, want %q", keys, want)
		}
		var metas []Meta
		json.Unmarshal(w.Body.Bytes(), &metas)
		if !slices.Equal(metas, f.s.List()) {
			t.Errorf("GET %s/heap = %+v, want %+v", prefix, metas, f.s.List())
		}
	}

	empty := openStore(t, Options{Dir: t.TempDir()})
	if w := serve(Handler(empty), "GET", "/heap"); strings.TrimSpace(w.Body.String()) != "[]" {
		t.Errorf("GET /heap of an empty store = %q, want []", w.Body)
	}
	if w := serve(Handler(empty), "GET", "/heap/latest"); w.Code != http.StatusNotFound {
		t.Errorf("GET /heap/latest of an empty store: %d, want 404", w.Code)
	}
}

func TestHandlerProfiles(t *testing.T) {
	f := newFixture(t)
	for prefix, h := range mounts(f.s) {
		for _, tc := range []struct {
			path string
			want Meta
		}{
			{"/heap/latest", f.target},
			{"/heap/" + f.base.Name, f.base},
			{"/heap/" + f.target.Name, f.target},
		} {
			w := serve(h, "GET", prefix+tc.path)
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/octet-stream" {
				t.Errorf("GET %s%s: %d %q", prefix, tc.path, w.Code, w.Header().Get("Content-Type"))
				continue
			}
			if !bytes.Equal(w.Body.Bytes(), f.read(t, tc.want.Name)) {
				t.Errorf("GET %s%s did not serve %s", prefix, tc.path, tc.want.Name)
			}
			if _, err := profile.Parse(w.Body); err != nil {
				t.Errorf("GET %s%s: %v", prefix, tc.path, err)
			}
			if w := serve(h, "HEAD", prefix+tc.path); w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Errorf("HEAD %s%s: %d with %d bytes", prefix, tc.path, w.Code, w.Body.Len())
			}
		}
	}
}

func TestHandlerDiff(t *testing.T) {
	f := newFixture(t)
	q := url.Values{"base": {f.base.Name}, "target": {f.target.Name}}
	for prefix, h := range mounts(f.s) {
		w := serve(h, "GET", prefix+"/heap/diff?"+q.Encode())
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("GET %s/heap/diff: %d %q %s", prefix, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		// Readable by pprof's own parser, which checks it is valid.
		if _, err := profile.ParseData(w.Body.Bytes()); err != nil {
			t.Fatal(err)
		}
		d, err := ParseData(w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		top, err := TopGrowth(d, 1, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(top) != 1 || !strings.HasSuffix(top[0].Function, ".leakyFunction") {
			t.Errorf("top growth in the served diff = %+v, want leakyFunction", top)
		}
	}
}

// blockingWriter is a ResponseRecorder whose first Write says so on
// writing and then waits for release.
type blockingWriter struct {
	*httptest.ResponseRecorder
	writing, release chan struct{}
	once             sync.Once
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() {
		close(b.writing)
		<-b.release
	})
	return b.ResponseRecorder.Write(p)
}

// TestHandlerDiffOneAtATime: while a diff is under way, until its answer is
// written, another diff of the same store, through any of its handlers, gets
// 429 with Retry-After; the next one after it runs.
func TestHandlerDiffOneAtATime(t *testing.T) {
	f := newFixture(t)
	target := "/heap/diff?" + url.Values{"base": {f.base.Name}, "target": {f.target.Name}}.Encode()
	first := &blockingWriter{ResponseRecorder: httptest.NewRecorder(), writing: make(chan struct{}), release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Handler(f.s).ServeHTTP(first, httptest.NewRequest("GET", target, nil))
	}()
	<-first.writing
	for prefix, h := range mounts(f.s) {
		w := serve(h, "GET", prefix+target)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || strings.Count(w.Body.String(), "\n") != 1 {
			t.Errorf("GET %s/heap/diff during another: %d, Retry-After %q, %.80q; want 429, 1 and a one-line reason",
				prefix, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
	// Other routes are not held up.
	if w := serve(Handler(f.s), "GET", "/heap/latest"); w.Code != http.StatusOK {
		t.Errorf("GET /heap/latest during a diff: %d", w.Code)
	}
	close(first.release)
	<-done
	if first.Code != http.StatusOK {
		t.Errorf("the first diff: %d %.80q", first.Code, first.Body)
	}
	if w := serve(Handler(f.s), "GET", target); w.Code != http.StatusOK {
		t.Errorf("GET /heap/diff after the first: %d %.80q", w.Code, w.Body)
	}
}

func TestHandlerErrors(t *testing.T) {
	f := newFixture(t)
	opened := watchOpens(t, f.parent, f.dir)
	secret := filepath.Join(f.parent, "secret")
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", http.StatusNotFound},
		{"GET", "/heapx", http.StatusNotFound},
		{"GET", "/etc/passwd", http.StatusNotFound},
		{"GET", "/heap/" + f.unindexed, http.StatusNotFound},
		{"GET", "/heap/secret", http.StatusNotFound},
		{"GET", "/heap/profiles", http.StatusNotFound},
		{"GET", "/heap/..", http.StatusBadRequest},
		{"GET", "/heap/../secret", http.StatusBadRequest},
		{"GET", "/heap/../../../../etc/passwd", http.StatusBadRequest},
		{"GET", "/heap/%2e%2e", http.StatusBadRequest},
		{"GET", "/heap/%2e%2e%2fsecret", http.StatusBadRequest},
		{"GET", "/heap/%2E%2E%2Fsecret", http.StatusBadRequest},
		{"GET", "/heap/..%2fsecret", http.StatusBadRequest},
		{"GET", "/heap/..%5csecret", http.StatusBadRequest},
		{"GET", "/heap/%252e%252e%252fsecret", http.StatusBadRequest},
		{"GET", "/heap/" + url.PathEscape(secret), http.StatusBadRequest},
		{"GET", "/heap/" + secret, http.StatusBadRequest},
		{"GET", "/heap//etc/passwd", http.StatusBadRequest},
		{"GET", "/heap/%2fetc%2fpasswd", http.StatusBadRequest},
		{"GET", "/heap/" + strings.Repeat("a", 4096), http.StatusBadRequest},
		{"GET", "/heap/" + f.target.Name + "%00", http.StatusBadRequest},
		{"GET", "/heap/a%00b", http.StatusBadRequest},
		{"GET", "/heap/.tmp-1", http.StatusBadRequest},
		{"GET", "/heap/diff", http.StatusBadRequest},
		{"GET", "/heap/diff?base=" + f.base.Name, http.StatusBadRequest},
		{"GET", "/heap/diff?target=" + f.base.Name, http.StatusBadRequest},
		{"GET", "/heap/diff?base=../secret&target=" + f.target.Name, http.StatusBadRequest},
		{"GET", "/heap/diff?base=%2e%2e%2fsecret&target=" + f.target.Name, http.StatusBadRequest},
		{"GET", "/heap/diff?base=" + url.QueryEscape(secret) + "&target=" + f.target.Name, http.StatusBadRequest},
		{"GET", "/heap/diff?base=" + f.base.Name + "&target=" + strings.Repeat("a", 4096), http.StatusBadRequest},
		{"GET", "/heap/diff?base=%zz&target=" + f.target.Name, http.StatusBadRequest},
		{"GET", "/heap/diff?base=secret&target=" + f.target.Name, http.StatusNotFound},
		{"GET", "/heap/diff?base=" + f.base.Name + "&target=" + f.unindexed, http.StatusNotFound},
		{"POST", "/heap", http.StatusMethodNotAllowed},
		{"PUT", "/heap/" + f.base.Name, http.StatusMethodNotAllowed},
		{"DELETE", "/heap/latest", http.StatusMethodNotAllowed},
		{"POST", "/heap/diff", http.StatusMethodNotAllowed},
	} {
		for prefix, h := range mounts(f.s) {
			w := serve(h, tc.method, prefix+tc.path)
			body := w.Body.String()
			if w.Code != tc.want {
				t.Errorf("%s %.80s: %d %q, want %d", tc.method, prefix+tc.path, w.Code, body, tc.want)
			}
			if strings.Contains(body, secretBait) || strings.Contains(body, unindexedBait) {
				t.Errorf("%s %.80s served a file outside the index: %q", tc.method, prefix+tc.path, body)
			}
			if tc.want == http.StatusBadRequest && (strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n")) {
				t.Errorf("%s %.80s: reason %q is not one line", tc.method, prefix+tc.path, body)
			}
			if tc.want == http.StatusMethodNotAllowed && w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %.80s: Allow = %q, want %q", tc.method, prefix+tc.path, w.Header().Get("Allow"), "GET, HEAD")
			}
		}
	}
	seen := opened()
	if runtime.GOOS == "linux" && len(seen) == 0 {
		t.Error("the watch saw no file opened, not even the base of a diff")
	}
	for _, name := range seen {
		if filepath.Base(name) != f.base.Name && filepath.Base(name) != f.target.Name {
			t.Errorf("the handler opened %s, which is not an indexed profile", name)
		}
	}
}

// TestHandlerGoToolPprof checks that the profiles work with the pprof tool
// over HTTP, as an operator would use them.
func TestHandlerGoToolPprof(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH to run go tool pprof")
	}
	f := newFixture(t)
	srv := httptest.NewServer(http.StripPrefix("/debug/guard", Handler(f.s)))
	defer srv.Close()

	q := url.Values{"base": {f.base.Name}, "target": {f.target.Name}}
	for _, path := range []string{"/heap/latest", "/heap/diff?" + q.Encode()} {
		cmd := exec.Command(goBin, "tool", "pprof", "-top", srv.URL+"/debug/guard"+path)
		// pprof saves what it fetches under $PPROF_TMPDIR, or $HOME/pprof.
		cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		if fn := topFunction(string(out)); !strings.HasSuffix(fn, ".leakyFunction") {
			t.Errorf("go tool pprof -top %s: first function %q, want leakyFunction\n%s", path, fn, out)
		}
	}
}

// topFunction returns the function of the first row of "pprof -top" output.
func topFunction(out string) string {
	_, rows, ok := strings.Cut(out, "flat%")
	if !ok {
		return ""
	}
	_, rows, _ = strings.Cut(rows, "\n")
	row, _, _ := strings.Cut(rows, "\n")
	fields := strings.Fields(row)
	if len(fields) == 0 {
		return ""
	}
	return fields[len(fields)-1]
}

func TestHandlerServesWhileWriting(t *testing.T) {
	f := newFixture(t)
	h := Handler(f.s)
	srv := httptest.NewServer(h)
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			if _, err := f.s.WriteFrom(Meta{Force: true}, writeBytes(payload(i, 4<<10))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 50 {
		resp, err := http.Get(srv.URL + "/heap/latest")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		// Every profile served is complete: a real one, or a 4 KiB payload.
		if resp.StatusCode == http.StatusOK && len(b) != 4<<10 {
			if _, err := profile.ParseData(b); err != nil {
				t.Errorf("served %d bytes that are neither a payload nor a profile: %v", len(b), err)
			}
		}
	}
	<-done
}

// FuzzHandler: any request target, as a server reads it off the wire, is
// answered without a panic by the handler alone and below a prefix, with
// 200 only for the list, a diff or an indexed profile, and otherwise a
// one-line error; nothing outside the index is ever served.
func FuzzHandler(f *testing.F) {
	parent := f.TempDir()
	dir := filepath.Join(parent, "profiles")
	s := openStore(f, Options{Dir: dir, MinInterval: -1})
	var metas []Meta
	for i := 0; i < 2; i++ {
		m, err := s.Write(Meta{Reason: "fuzz", Level: "High"})
		if err != nil {
			f.Fatal(err)
		}
		metas = append(metas, m)
	}
	served := map[string]bool{}
	for _, m := range metas {
		b, err := os.ReadFile(filepath.Join(dir, m.Name))
		if err != nil {
			f.Fatal(err)
		}
		served[string(b)] = true
	}
	unindexed := profileName(KindHeap, time.Now().Add(time.Hour), 999)
	for path, content := range map[string]string{
		filepath.Join(parent, "secret"): secretBait,
		filepath.Join(dir, unindexed):   unindexedBait,
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			f.Fatal(err)
		}
	}

	for _, target := range []string{
		"/heap", "/heap/", "/heap/latest", "/heap/" + metas[0].Name, "/heap/" + unindexed,
		"/heap/diff?base=" + metas[0].Name + "&target=" + metas[1].Name,
		"/heap/diff?base=" + metas[0].Name, "/heap/diff?base=%zz", "/heap/..%2fsecret", "/heap/..%2F..%2Fsecret",
		"/heap/%2e%2e/secret", "/heap/.tmp-x", "/heap//etc/passwd", "/heapx", "/", "*",
		"http://example.com/heap/latest", "/heap/" + strings.Repeat("a", 200),
	} {
		f.Add("GET", target)
		f.Add("GET", "/debug/guard"+target)
	}
	f.Add("DELETE", "/heap/latest")
	f.Add("HEAD", "/heap/"+metas[1].Name)
	h := Handler(s)
	mounted := http.StripPrefix("/debug/guard", Handler(s))
	f.Fuzz(func(t *testing.T, method, target string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			return // the server would have refused it before any handler
		}
		for _, handler := range []http.Handler{h, mounted} {
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			body := w.Body.String()
			if strings.Contains(body, secretBait) || strings.Contains(body, unindexedBait) {
				t.Fatalf("%s %q served a file outside the index", method, target)
			}
			switch w.Code {
			case http.StatusOK:
				isList := strings.HasPrefix(w.Header().Get("Content-Type"), "application/json")
				isDiff := strings.Contains(w.Header().Get("Content-Disposition"), "heap-diff")
				if !isList && !isDiff && !served[body] && !(method == "HEAD" && body == "") {
					t.Fatalf("%s %q: 200 with a body that is no indexed profile", method, target)
				}
			case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
				if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
					t.Fatalf("%s %q: %d with %q, want one line", method, target, w.Code, body)
				}
			default:
				t.Fatalf("%s %q: status %d %q", method, target, w.Code, body)
			}
		}
	})
}
