//go:build !linux

package main

import "time"

// growOffHeap falls back to the Go heap off Linux, where there are no
// memory cgroups to test in.
func growOffHeap(n int) func() { return growHeap(n) }

func growOffHeapTimed(n int, at *[]time.Time) func() { return growHeap(n) }
