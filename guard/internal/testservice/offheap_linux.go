package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// growOffHeap maps n bytes of anonymous memory outside the Go heap and
// touches every page, as cgo or mmap-based caches do.
func growOffHeap(n int) func() { return growOffHeapTimed(n, nil) }

// growOffHeapTimed is growOffHeap that records when each touchChunk was
// touched, into at when it is not nil.
func growOffHeapTimed(n int, at *[]time.Time) func() {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		panic(err)
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
		if at != nil && (i+4096)%touchChunk == 0 {
			*at = append(*at, time.Now())
		}
	}
	return func() { unix.Munmap(b) }
}
