package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLoopbackHostOnly: the debug listener answers only requests whose Host
// is localhost or a loopback address, so that a DNS-rebinding page cannot
// read /debug/pprof.
func TestLoopbackHostOnly(t *testing.T) {
	h := loopbackHostOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for host, want := range map[string]int{
		"127.0.0.1:6060":          http.StatusOK,
		"localhost:6060":          http.StatusOK,
		"[::1]:6060":              http.StatusOK,
		"127.0.0.1":               http.StatusOK,
		"rebind.attacker.example": http.StatusForbidden,
		"10.0.0.1:6060":           http.StatusForbidden,
		"":                        http.StatusForbidden,
	} {
		req := httptest.NewRequest("GET", "/debug/pprof/heap", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: status %d, want %d", host, rec.Code, want)
		}
	}
}
