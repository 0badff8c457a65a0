package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"
)

// pageSize is the stride at which a work buffer is touched, so that every
// page of it is really resident and charged to the cgroup.
var pageSize = os.Getpagesize()

// workConfig is what a /work request does.
type workConfig struct {
	bytes    int           // held per request unless it says otherwise
	maxBytes int           // the most a request may ask for or upload
	hold     time.Duration // how long a request holds its memory
	offHeap  bool          // hold it in anonymous mmap, outside the Go heap
}

// workHandler stands for a request that decodes a payload and holds it
// while it waits hold for a slow downstream call:
//
//   - GET /work holds c.bytes, or the bytes=N of its query;
//   - POST /work with a body reads the whole body into memory and holds it,
//     as an upload handler that decodes a file would.
//
// It writes every page of the buffer, so the memory is resident and not
// merely reserved. The request ends early, with 503, if its context is
// cancelled: the client went away, or the guard cancelled it to relieve
// pressure.
func workHandler(c workConfig) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf []byte
		var free func()
		if r.Method == http.MethodPost && r.ContentLength != 0 {
			var err error
			if buf, free, err = readBody(w, r, c); err != nil {
				status := http.StatusBadRequest
				if errors.As(err, new(*http.MaxBytesError)) {
					status = http.StatusRequestEntityTooLarge
				}
				http.Error(w, err.Error(), status)
				return
			}
		} else {
			size, err := requestBytes(r, c.bytes, c.maxBytes)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			buf, free = alloc(size, c.offHeap)
			for i := 0; i < len(buf); i += pageSize {
				buf[i] = byte(i / pageSize)
			}
		}
		defer free()

		t := time.NewTimer(c.hold)
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
		fmt.Fprintf(w, "ok %d bytes held %v checksum %d\n", len(buf), c.hold, sum)
	})
}

// readBody reads the request's whole body into memory: into a buffer of
// its Content-Length when it declares one, else with io.ReadAll.
func readBody(w http.ResponseWriter, r *http.Request, c workConfig) ([]byte, func(), error) {
	body := http.MaxBytesReader(w, r.Body, int64(c.maxBytes))
	if r.ContentLength < 0 {
		b, err := io.ReadAll(body)
		return b, func() {}, err
	}
	if r.ContentLength > int64(c.maxBytes) {
		return nil, nil, &http.MaxBytesError{Limit: int64(c.maxBytes)}
	}
	buf, free := alloc(int(r.ContentLength), c.offHeap)
	if _, err := io.ReadFull(body, buf); err != nil {
		free()
		return nil, nil, fmt.Errorf("read body: %w", err)
	}
	return buf, free, nil
}

// requestBytes is what a GET asks to hold: its bytes=N, else def.
func requestBytes(r *http.Request, def, maxBytes int) (int, error) {
	s := r.URL.Query().Get("bytes")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxBytes {
		return 0, fmt.Errorf("bytes=%q: want an integer in [0, %d]", s, maxBytes)
	}
	return n, nil
}

// declaredCost is the guard's Config.Cost: the bytes a request will hold,
// known before it runs from its Content-Length or its bytes=N.
func declaredCost(def int) func(*http.Request) int64 {
	return func(r *http.Request) int64 {
		if r.ContentLength > 0 {
			return r.ContentLength
		}
		if n, err := strconv.Atoi(r.URL.Query().Get("bytes")); err == nil && n >= 0 {
			return int64(n)
		}
		return int64(def)
	}
}

// cancelCause says why a request's context ended.
func cancelCause(r *http.Request) string {
	if err := context.Cause(r.Context()); err != nil {
		return err.Error()
	}
	return "cancelled"
}
