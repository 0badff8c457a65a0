//go:build !linux

package main

// growOffHeap falls back to the Go heap off Linux, where there are no
// memory cgroups to test in.
func growOffHeap(n int) func() { return growHeap(n) }
