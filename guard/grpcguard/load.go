package grpcguard

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/orca"

	"github.com/oomguard/oomguard/guard"
)

// recordEvery is how often RecordLoad refreshes its recorder: the
// smoothing's time constant (see guard.Load), far more often than the
// 30 s at which grpc-go's ORCA service may stream reports at most.
const recordEvery = time.Second

// RecordLoad keeps r current with g's load (guard.Load), every second,
// until stop is called:
//
//   - application_utilization: Load.Utilization, how full the service
//     is, the tighter of memory and time;
//   - mem_utilization: Load.MemoryUtilization, usage against the limit;
//   - qps: Load.Admitted, calls admitted a second;
//   - eps: Load.Refused, calls refused a second.
//
// Give r to orca.Register for out-of-band reports, and to
// orca.CallMetricsServerOption so that per-call reports carry it where
// a call's own values are missing (the interceptors set them on every
// call; see the package documentation). While g is off or stopped, the
// four values are removed from r, as they are when stop returns. stop
// waits for the goroutine RecordLoad started; calling it again does
// nothing. A nil g or r records nothing.
func RecordLoad(g *guard.Guard, r orca.ServerMetricsRecorder) (stop func()) {
	if g == nil || r == nil {
		return func() {}
	}
	record(r, g.Load())
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(recordEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				record(r, g.Load())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
			forget(r)
		})
	}
}

// record sets l on r; a guard that reports no load (off, stopped) has its
// values removed instead.
func record(r orca.ServerMetricsRecorder, l guard.Load) {
	if l == (guard.Load{}) {
		forget(r)
		return
	}
	r.SetApplicationUtilization(l.Utilization)
	r.SetMemoryUtilization(l.MemoryUtilization)
	r.SetQPS(l.Admitted)
	r.SetEPS(l.Refused)
}

// forget removes the values record sets.
func forget(r orca.ServerMetricsRecorder) {
	r.DeleteApplicationUtilization()
	r.DeleteMemoryUtilization()
	r.DeleteQPS()
	r.DeleteEPS()
}

// reportCall sets g's load on the call's ORCA recorder, which ctx carries
// where the server has orca.CallMetricsServerOption and its interceptors
// run outside these. Values the handler set itself are kept: per-call
// values take precedence over server-wide ones in ORCA, and the guard's
// are server-wide. Without the option it is one context lookup.
func reportCall(ctx context.Context, g *guard.Guard) {
	r := orca.CallMetricsRecorderFromContext(ctx)
	if r == nil {
		return
	}
	l := g.Load()
	if l == (guard.Load{}) {
		return
	}
	set := r.ServerMetrics() // -1 for what is not set
	if set.AppUtilization < 0 {
		r.SetApplicationUtilization(l.Utilization)
	}
	if set.MemUtilization < 0 {
		r.SetMemoryUtilization(l.MemoryUtilization)
	}
	if set.QPS < 0 {
		r.SetQPS(l.Admitted)
	}
	if set.EPS < 0 {
		r.SetEPS(l.Refused)
	}
}
