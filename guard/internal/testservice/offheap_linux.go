package main

import "golang.org/x/sys/unix"

// growOffHeap maps n bytes of anonymous memory outside the Go heap and
// touches every page, as cgo or mmap-based caches do.
func growOffHeap(n int) func() {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		panic(err)
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return func() { unix.Munmap(b) }
}
