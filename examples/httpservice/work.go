package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"time"
)

// pageSize is the stride at which a work buffer is touched, so that every
// page of it is really resident and charged to the cgroup.
var pageSize = os.Getpagesize()

// workHandler stands for a request that decodes a payload of size bytes and
// holds it while it waits hold for a slow downstream call. It writes every
// page of the buffer, so the memory is resident and not merely reserved.
// The request ends early, with 503, if its context is cancelled: the client
// went away, or the guard cancelled it to relieve pressure.
func workHandler(size int, hold time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, size)
		for i := 0; i < len(buf); i += pageSize {
			buf[i] = byte(i / pageSize)
		}

		t := time.NewTimer(hold)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			http.Error(w, "work cancelled: "+cancelCause(r), http.StatusServiceUnavailable)
			return
		}

		var sum byte
		for i := 0; i < len(buf); i += pageSize {
			sum += buf[i]
		}
		runtime.KeepAlive(buf)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "ok %d bytes held %v checksum %d\n", size, hold, sum)
	})
}

// cancelCause says why a request's context ended.
func cancelCause(r *http.Request) string {
	if err := context.Cause(r.Context()); err != nil {
		return err.Error()
	}
	return "cancelled"
}
