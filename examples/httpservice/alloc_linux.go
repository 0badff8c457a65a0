package main

import "syscall"

// alloc returns a zeroed buffer of n bytes and the function that frees it.
// Off the heap, it is an anonymous private mmap, which the Go runtime, its
// GC and GOMEMLIMIT do not see; free unmaps it.
func alloc(n int, offHeap bool) ([]byte, func()) {
	if !offHeap || n == 0 {
		return make([]byte, n), func() {}
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil { // address space exhausted: the heap fails the same way, loudly
		return make([]byte, n), func() {}
	}
	return b, func() { syscall.Munmap(b) }
}
