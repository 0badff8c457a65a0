package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Handler returns an http.Handler that serves the profiles in s, which must
// not be nil. Its routes are relative to where it is mounted, so it works at
// the root of a server or below a prefix with http.StripPrefix:
//
//	GET /heap                                 list of Meta as JSON, oldest first
//	GET /heap/latest                          the newest profile
//	GET /heap/{name}                          the profile called name
//	GET /heap/diff?base={name}&target={name}  target minus base, see Diff
//
// Profiles are served as application/octet-stream in pprof's format, so that
// "go tool pprof -top URL" works. An unknown name gets 404, a malformed name
// or parameter 400 with a one-line reason, a method other than GET or HEAD
// 405. Names are looked up in the store's index, never used as paths.
//
// A diff parses both profiles in memory, so one runs at a time per store,
// across all its handlers: a diff asked for while another is under way
// gets 429 Too Many Requests with Retry-After: 1.
//
// The handler does no authorization: mount it on a private listener, or
// wrap it.
func Handler(s *Store) http.Handler {
	return handler{s}
}

type handler struct {
	s *Store
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Route on the escaped path, so that an encoded slash stays inside a
	// name (and gets it rejected) instead of making a path segment.
	// Accept the path with or without its leading slash, as StripPrefix
	// may leave either.
	rest, ok := strings.CutPrefix(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "heap")
	if !ok || rest != "" && rest[0] != '/' {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, fmt.Sprintf("method %s not allowed, use GET", r.Method), http.StatusMethodNotAllowed)
		return
	}
	switch rest = strings.TrimPrefix(rest, "/"); rest {
	case "":
		h.list(w)
	case "latest":
		m, ok := h.s.Latest()
		if !ok {
			http.Error(w, "no heap profile stored yet", http.StatusNotFound)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h.serve(w, r, m.Name)
	case "diff":
		h.diff(w, r)
	default:
		name, err := url.PathUnescape(rest)
		if err != nil {
			http.Error(w, fmt.Sprintf("bad escape in profile name %.64q", rest), http.StatusBadRequest)
			return
		}
		if err := checkName(name); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.serve(w, r, name)
	}
}

func (h handler) list(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(h.s.List())
}

func (h handler) serve(w http.ResponseWriter, r *http.Request, name string) {
	f, m, err := h.s.Open(name)
	if err != nil {
		httpError(w, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+m.Name+`"`)
	// A stored profile never changes, so ranges and conditional requests
	// are safe.
	http.ServeContent(w, r, m.Name, m.Time, f)
}

func (h handler) diff(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		http.Error(w, "bad query: "+err.Error(), http.StatusBadRequest)
		return
	}
	var names [2]string
	for i, param := range [2]string{"base", "target"} {
		names[i] = q.Get(param)
		if names[i] == "" {
			http.Error(w, "missing query parameter "+param, http.StatusBadRequest)
			return
		}
		if err := checkName(names[i]); err != nil {
			http.Error(w, param+": "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	// Held until the answer is written, since the encoded diff is held
	// until then too.
	if !h.s.diffing.CompareAndSwap(false, true) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "another diff of these profiles is under way; retry in a second", http.StatusTooManyRequests)
		return
	}
	defer h.s.diffing.Store(false)
	var profs [2]*Profile
	for i, name := range names {
		if profs[i], err = h.s.Parse(name); err != nil {
			httpError(w, err)
			return
		}
	}
	d, err := Diff(profs[0], profs[1])
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Encode before sending anything, so that a failure can still change
	// the status.
	var buf bytes.Buffer
	if err := d.Write(&buf); err != nil {
		httpError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="heap-diff.pb.gz"`)
	w.Write(buf.Bytes())
}

// httpError reports err as a 404 for an unknown name, else a 500.
func httpError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, ErrNotFound) {
		code = http.StatusNotFound
	}
	// One line, whatever the error says.
	http.Error(w, strings.ReplaceAll(err.Error(), "\n", " "), code)
}
