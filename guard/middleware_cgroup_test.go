//go:build !race

// The race detector makes these tests' hundreds of client goroutines many
// times heavier, and they share the 2 cores with the service under test:
// the tests would measure the race detector's cost to the service's GC.
// .ci/run runs them without the race detector.

package guard_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/internal/cgrouptest"
)

// TestCgroupBurstSurvives sends a service in a real 256 MiB cgroup waves of
// concurrent requests that each hold 1 MiB for 300ms: each wave alone needs
// more than the limit. The guard must keep the kernel from killing it,
// answer some requests throughout the burst, and refuse the rest with 503
// and Retry-After.
//
// The handler reserves its megabyte with Guard.Reserve: admission happens
// before allocation, and 400 requests arriving within a few milliseconds at
// an idle service are all admitted before any of them allocates. Without
// Reserve, the middleware alone was OOM-killed in 1 of 40 runs of this test.
func TestCgroupBurstSurvives(t *testing.T) {
	const (
		waves    = 6
		perWave  = 400 // 400 MiB if all were admitted at once
		interval = 400 * time.Millisecond
	)
	child := cgrouptest.New(t, 256*mib)

	type result struct {
		ok, shed, other, errs int
		firstErr              error
	}
	results := make([]result, waves)
	var mu sync.Mutex
	lines := runService(t, child, "http-service", nil, func(first helperLine) {
		if first.Kind != "listening" {
			t.Fatalf("helper did not start: %+v", first)
		}
		client := &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: perWave, DisableCompression: true},
		}
		defer client.CloseIdleConnections()
		url := "http://" + first.Addr + "/work"
		var wg sync.WaitGroup
		for w := 0; w < waves; w++ {
			for i := 0; i < perWave; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := client.Get(url)
					mu.Lock()
					defer mu.Unlock()
					r := &results[w]
					if err != nil {
						if r.errs == 0 {
							r.firstErr = err
						}
						r.errs++
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode == 200:
						r.ok++
					case resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "":
						r.shed++
					default:
						r.other++
					}
				}()
			}
			time.Sleep(interval)
		}
		wg.Wait()
	})
	total := result{}
	for w, r := range results {
		t.Logf("wave %d: %d ok, %d shed (503 + Retry-After), %d other, %d errors", w, r.ok, r.shed, r.other, r.errs)
		// A wave that lands while the previous one still holds the memory
		// may be shed whole; over any two waves (800ms), some are served.
		if w%2 == 1 && r.ok+results[w-1].ok == 0 {
			t.Errorf("waves %d and %d: no request served", w-1, w)
		}
		if r.other != 0 || r.errs != 0 {
			t.Errorf("wave %d: %d responses neither 200 nor 503 with Retry-After, %d errors (first: %v)", w, r.other, r.errs, r.firstErr)
		}
		total.ok, total.shed = total.ok+r.ok, total.shed+r.shed
	}
	if total.shed == 0 {
		t.Error("nothing was shed: the burst did not test the guard")
	}
	s := lastSnapshot(t, lines)
	t.Logf("served %d, shed %d of %d; guard counted shed %+v, cancelled %d; OOM kills in cgroup: %d",
		total.ok, total.shed, waves*perWave, s.Shed, s.Cancelled, s.OOMKills)
	// How close the burst came to the limit: the margin the kernel saw.
	if peak, ok := child.ReadPeak(); !ok {
		t.Errorf("the peak of %s does not read", child.Dir)
	} else {
		t.Logf("peak usage %.1f MiB (%.3f of the limit)", float64(peak)/mib, float64(peak)/(256*mib))
	}
}

// TestCgroupLyingContentLength runs a service in a real 256 MiB cgroup
// that serves ordinary requests, 64 KiB held for 50ms at 400 a second,
// while one client sends its Critical health check 10 times a second with
// a Content-Length no body can have, and no body. The lie must be refused
// with 413, as it can never fit, and must cost the other requests nothing:
// no bound cut for them, and no GC forced for it.
func TestCgroupLyingContentLength(t *testing.T) {
	const (
		rate     = 400
		lieRate  = 10
		duration = 15 * time.Second
	)
	child := cgrouptest.New(t, 256*mib)
	var ok, other, errs, lies, lies413 atomic.Int64
	var firstOther atomic.Value
	lines := runService(t, child, "small-service", nil, func(first helperLine) {
		if first.Kind != "listening" {
			t.Fatalf("helper did not start: %+v", first)
		}
		client := &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 100, DisableCompression: true},
		}
		defer client.CloseIdleConnections()
		var wg sync.WaitGroup
		// The liar: a raw connection, since net/http's client will not
		// send a Content-Length its body does not have.
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / lieRate)
			defer tick.Stop()
			for end := time.Now().Add(duration); time.Now().Before(end); <-tick.C {
				lies.Add(1)
				if code, err := lie(first.Addr); err == nil && code == http.StatusRequestEntityTooLarge {
					lies413.Add(1)
				} else if firstOther.Load() == nil {
					firstOther.Store(fmt.Sprintf("lie: status %d, error %v", code, err))
				}
			}
		}()
		url := "http://" + first.Addr + "/work"
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for end := time.Now().Add(duration); time.Now().Before(end); <-tick.C {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(url)
				if err != nil {
					errs.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					other.Add(1)
					firstOther.CompareAndSwap(nil, fmt.Sprintf("work: status %d", resp.StatusCode))
				}
			}()
		}
		wg.Wait()
	})
	var s guard.Snapshot
	var forced uint64
	for _, l := range lines {
		if l.Kind == "snapshot" {
			s, forced = *l.Snapshot, l.ForcedGC
		}
	}
	total := ok.Load() + other.Load() + errs.Load()
	t.Logf("ordinary: %d of %d answered 200, %d other, %d errors (first other: %v); lies: %d of %d answered 413; forced GC cycles %d; guard shed %+v (for time %d, late %d), too large %d",
		ok.Load(), total, other.Load(), errs.Load(), firstOther.Load(), lies413.Load(), lies.Load(), forced, s.Shed, s.ShedForTime, s.ShedLate, s.TooLarge)
	// The lie must not shed anyone for memory. Work shed for time is the
	// CPUs' doing, not the lie's: on a slow machine (the v2 VM's emulated
	// CPUs) the service's own load saturates them.
	if served := ok.Load() + s.ShedForTime; total == 0 || float64(served) < 0.98*float64(total) {
		t.Errorf("ordinary requests: %d of %d answered 200 and %d shed for time, want at least 0.98 of them either", ok.Load(), total, s.ShedForTime)
	}
	if lies413.Load() != lies.Load() || lies.Load() == 0 {
		t.Errorf("%d of %d lies answered 413, want all", lies413.Load(), lies.Load())
	}
	if forced > 2 {
		t.Errorf("%d GC cycles forced, want at most 2", forced)
	}
	if s.TooLarge != lies.Load() {
		t.Errorf("Snapshot.TooLarge = %d, want the %d lies", s.TooLarge, lies.Load())
	}
}

// lie sends one GET /healthz declaring the largest Content-Length there is,
// sends no body, and returns the status code.
func lie(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: service\r\nContent-Length: 9223372036854775807\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
