package guard

import (
	"encoding/json"
	"net/http"
)

// DebugHandler serves the guard's status and, with Config.DumpDir, its heap
// profiles. Mount it on a private listener:
//
//	mux.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
//
// Routes below the prefix: GET /status, the Snapshot as JSON.
func (g *Guard) DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(g.Snapshot())
	})
	return mux
}
