package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// guardPrefix is the import path of oomguard's packages: guard, profile and
// internal. The example service, under examples/, is not the guard.
const guardPrefix = "github.com/oomguard/oomguard/"

func isGuard(fn string) bool {
	return strings.HasPrefix(fn, guardPrefix) && !strings.HasPrefix(fn, guardPrefix+"examples/")
}

// probe is one reading of the service.
type probe struct {
	at              time.Duration
	goroutines      int   // the process's
	guardGoroutines int   // those a guard function started
	fds             int   // the process's open files
	guardFDs        int   // cgroup files, eventfds, inotify, the dump directory
	guardHeap       int64 // in-use bytes a guard function allocated
	heapLive        int64 // Snapshot.HeapLive
	usage           int64 // Snapshot.Usage
	level           string
}

// watcher reads the service.
type watcher struct {
	svc    *service
	client *http.Client

	mu     sync.Mutex
	last   string
	counts map[string]int // see watchLevels
}

func (w *watcher) probe(ctx context.Context, at time.Duration) (probe, error) {
	p := probe{at: at}
	var err error
	if p.goroutines, p.guardGoroutines, err = w.goroutines(ctx); err != nil {
		return p, err
	}
	if p.fds, p.guardFDs, err = w.fds(); err != nil {
		return p, err
	}
	if p.guardHeap, err = w.guardHeap(ctx); err != nil {
		return p, err
	}
	s, err := w.status(ctx)
	if err != nil {
		return p, err
	}
	p.heapLive, p.usage, p.level = s.HeapLive, s.Usage, s.Level
	return p, nil
}

type status struct {
	Level    string
	HeapLive int64
	Usage    int64
}

func (w *watcher) status(ctx context.Context) (status, error) {
	var s status
	b, err := get(ctx, w.client, w.svc.debugAddr+"/debug/guard/status")
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	return s, err
}

// goroutines counts the process's goroutines, and those whose first
// function, the one go started, is the guard's.
func (w *watcher) goroutines(ctx context.Context) (all, guard int, err error) {
	b, err := get(ctx, w.client, w.svc.debugAddr+"/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	n, entry := 0, ""
	flush := func() {
		if n > 0 && isGuard(entry) {
			guard += n
		}
		n, entry = 0, ""
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "goroutine profile: total "):
			all, _ = strconv.Atoi(strings.TrimPrefix(line, "goroutine profile: total "))
		case strings.Contains(line, " @ "):
			flush()
			n, _ = strconv.Atoi(strings.Fields(line)[0])
		case strings.HasPrefix(line, "#\t"):
			if f := strings.Split(line, "\t"); len(f) >= 3 {
				entry, _, _ = strings.Cut(f[2], "+")
			}
		}
	}
	flush()
	return all, guard, sc.Err()
}

// fds counts the process's open files, and those the guard holds: the
// cgroup's control files, eventfds and inotify instances, the dump
// directory's files.
func (w *watcher) fds() (all, guard int, err error) {
	dir := fmt.Sprintf("/proc/%d/fd", w.svc.Pid())
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, de := range des {
		all++
		target, err := os.Readlink(dir + "/" + de.Name())
		if err != nil {
			continue
		}
		if strings.HasPrefix(target, "/sys/fs/cgroup/") || target == "anon_inode:[eventfd]" ||
			target == "anon_inode:inotify" || strings.Contains(target, "oomguard-soak-") {
			guard++
		}
	}
	return all, guard, nil
}

// guardHeap sums the in-use bytes of the heap profile's samples whose
// allocating function, the first outside the standard library, is the
// guard's.
func (w *watcher) guardHeap(ctx context.Context) (int64, error) {
	b, err := get(ctx, w.client, w.svc.debugAddr+"/debug/pprof/heap")
	if err != nil {
		return 0, err
	}
	p, err := profile.ParseData(b)
	if err != nil {
		return 0, err
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "inuse_space" {
			idx = i
		}
	}
	if idx < 0 {
		return 0, fmt.Errorf("heap profile without inuse_space")
	}
	var sum int64
	for _, s := range p.Sample {
		if isGuard(allocator(s)) {
			sum += s.Value[idx]
		}
	}
	return sum, nil
}

// allocator is the first function of s's stack outside the standard
// library (whose paths have no dot in their first element).
func allocator(s *profile.Sample) string {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function == nil {
				continue
			}
			name := l.Function.Name
			first, _, _ := strings.Cut(name, "/")
			if strings.Contains(first, ".") {
				return name
			}
		}
	}
	return ""
}

var (
	levelNames = []string{"normal", "elevated", "high", "critical"}
	levelRank  = map[string]int{"normal": 0, "elevated": 1, "high": 2, "critical": 3}
)

// watchLevels reads the level every 100ms and counts each level crossed
// upward, and each return to Normal.
func (w *watcher) watchLevels(ctx context.Context) {
	w.mu.Lock()
	w.counts = map[string]int{}
	w.mu.Unlock()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.svc.Done():
			return
		case <-t.C:
		}
		s, err := w.status(ctx)
		if err != nil {
			continue
		}
		// A level is crossed when the level rises to it or past it: a
		// climb from Normal straight to High between two readings crosses
		// Elevated too. Normal is entered when the level falls to it.
		w.mu.Lock()
		if from, to := levelRank[w.last], levelRank[s.Level]; w.last != "" && to != from {
			for r := from + 1; r <= to; r++ {
				w.counts[levelNames[r]]++
			}
			if to == 0 {
				w.counts["normal"]++
			}
		}
		w.last = s.Level
		w.mu.Unlock()
	}
}

func (w *watcher) entered() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[string]int{}
	for k, v := range w.counts {
		m[k] = v
	}
	return m
}
