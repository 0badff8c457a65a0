package guard_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"

	"github.com/oomguard/oomguard/guard"
)

// A service starts the guard once, early in main, and stops it on the way
// out. The zero Config detects the limit and sets GOMEMLIMIT to 90% of it.
func ExampleStart() {
	g, err := guard.Start(context.Background(), guard.Config{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()

	s := g.Snapshot()
	fmt.Println(s.Limit > 0, s.LimitSource != "")
	// Output: true true
}

// A bad Config is refused with an error that names the field and its value.
func ExampleStart_badConfig() {
	_, err := guard.Start(context.Background(), guard.Config{MemoryLimitRatio: 1.5})
	fmt.Println(err)
	// Output: guard: Config.MemoryLimitRatio = 1.5: must be at most 1 (negative leaves GOMEMLIMIT alone)
}

// The middleware sheds requests by priority under pressure with 503 and
// Retry-After. Health checks are Critical and never shed; the debug
// endpoint belongs on a private listener.
func ExampleGuard_Middleware() {
	g, err := guard.Start(context.Background(), guard.Config{
		DumpDir: os.TempDir() + "/heap-profiles",
		Classifier: func(r *http.Request) guard.Priority {
			switch r.URL.Path {
			case "/healthz":
				return guard.PriorityCritical
			case "/batch":
				return guard.PrioritySheddable
			}
			return guard.PriorityDefault
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()

	app := http.NewServeMux()
	app.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "done") })
	app.Handle("/readyz", g.ReadyHandler())
	public := &http.Server{Addr: ":8080", Handler: g.Middleware(app)}

	debug := http.NewServeMux()
	debug.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
	private := &http.Server{Addr: "127.0.0.1:6060", Handler: debug}

	_, _ = public, private // ListenAndServe both
}

// Subscribers hear of every level change, on their own goroutine.
func ExampleGuard_Subscribe() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()

	cancel := g.Subscribe(func(e guard.Event) {
		if e.Type == guard.EventLevel {
			log.Printf("memory %v -> %v: %d of %d bytes", e.Previous, e.Level, e.Snapshot.Usage, e.Snapshot.Limit)
		}
	})
	defer cancel()
}

// A handler about to allocate a large buffer reserves it first, and fails
// fast when it would not fit.
func ExampleGuard_Reserve() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()

	handler := func(w http.ResponseWriter, r *http.Request) {
		const size = 64 << 20
		release, err := g.Reserve(r.Context(), size)
		if errors.Is(err, guard.ErrNoHeadroom) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too large for the memory available now", http.StatusServiceUnavailable)
			return
		}
		if err != nil {
			return
		}
		defer release()
		buf := make([]byte, size)
		_ = buf // decode into it
	}
	_ = handler
}

// A service behind Envoy reports its load on every response, so that a
// proxy balancing on ORCA load reports sends work where there is room
// before the guard must shed it. Load gives the same figures to anything
// else that balances.
func ExampleConfig_reportLoad() {
	g, err := guard.Start(context.Background(), guard.Config{ReportLoad: true})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()
	srv := &http.Server{Addr: ":8080", Handler: g.Middleware(http.NotFoundHandler())}
	_ = srv // srv.ListenAndServe()

	l := g.Load()
	fmt.Println(l.Utilization >= 0, l.MemoryUtilization > 0)
	// Output: true true
}

// While the guard sheds work for memory, the Snapshot says at what memory
// limit the load of the last minutes would have been served; a service
// may hand it to whatever sizes its containers. An idle guard has none.
func ExampleSnapshot_recommendedLimit() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()

	s := g.Snapshot()
	if s.RecommendedLimit > s.Limit {
		log.Printf("a limit of %d bytes would have served the load; it is %d", s.RecommendedLimit, s.Limit)
	}
	fmt.Printf("%d, %s\n", s.RecommendedLimit, s.RecommendedLimitReason)
	// Output: 0, not shedding
}
