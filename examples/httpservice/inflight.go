package main

import "net/http"

// capInFlight admits at most n requests to next at once and answers the
// rest 503 with Retry-After at once: a fixed concurrency limit, the
// simplest load shedder. n <= 0 returns next.
func capInFlight(n int, next http.Handler) http.Handler {
	if n <= 0 {
		return next
	}
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			next.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests in flight", http.StatusServiceUnavailable)
		}
	})
}
