package promguard_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/guard/promguard"
)

// Register the guard's collector with the default registry and serve it on
// /metrics.
func ExampleNewCollector() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()

	c := promguard.NewCollector(g)
	prometheus.MustRegister(c)
	defer prometheus.Unregister(c)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	// A service would now run http.ListenAndServe(":9090", mux).

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "# TYPE oomguard_level ") {
			fmt.Print(line)
		}
	}
	// Output: # TYPE oomguard_level gauge
}
