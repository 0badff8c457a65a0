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
		b := make([]byte, min(n, chunk))
		for i := 0; i < len(b); i += pageSize {
			b[i] = 1
		}
		out = append(out, b)
		n -= int64(len(b))
	}
	return out
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
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		leaked = append(leaked, fill(perSecond/10)...)
	}
}
