//go:build !linux

package main

// alloc returns a zeroed buffer of n bytes on the Go heap: off-heap memory
// (-offheap) is mmap on Linux only.
func alloc(n int, offHeap bool) ([]byte, func()) {
	return make([]byte, n), func() {}
}
