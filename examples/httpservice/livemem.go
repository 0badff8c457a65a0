package main

import (
	"context"
	"time"
)

// chunk is the size of the pieces the cache and the leak are made of, as a
// cache of entries or a growing index would be.
const chunk = 1 << 20

// fill allocates n bytes in chunks and writes every page, so that all of
// it is resident.
func fill(n int64) [][]byte {
	var out [][]byte
	for n > 0 {
		b := touch(make([]byte, min(n, chunk)))
		out = append(out, b)
		n -= int64(len(b))
	}
	return out
}

// touch writes every page of b, so that all of it is resident, and
// returns b.
func touch(b []byte) []byte {
	for i := 0; i < len(b); i += pageSize {
		b[i] = 1
	}
	return b
}

// leaked is what leak has grown; only leak touches it.
var leaked [][]byte

// leak grows the global leaked by perSecond bytes a second, in ten steps a
// second, until ctx is done: a slow leak. It returns at once if perSecond
// is 0.
func leak(ctx context.Context, perSecond int64) {
	if perSecond <= 0 {
		return
	}
	every(ctx, 100*time.Millisecond, func() { leaked = append(leaked, fill(perSecond/10)...) })
}

// every calls f every d until ctx is done.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f()
	}
}

// rebuilt is the block rebuild keeps; only rebuild touches it.
var rebuilt []byte

// rebuild builds a block of size bytes every interval, in one allocation
// with every page written, and drops the one before, until ctx is done: an
// index or a lookup table rebuilt in the background beside the requests.
// It returns at once if size is 0.
func rebuild(ctx context.Context, size int64, interval time.Duration) {
	if size <= 0 || interval <= 0 {
		return
	}
	every(ctx, interval, func() { rebuilt = touch(make([]byte, size)) })
}
