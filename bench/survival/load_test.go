package main

import (
	"testing"
	"time"
)

func TestSchedulePace(t *testing.T) {
	s := schedule{{Name: "a", Rate: 10, Duration: time.Second}, {Name: "b", Rate: 100, Duration: time.Second}}
	var hits uint64
	var elapsed time.Duration
	for {
		wait, stop := s.Pace(elapsed, hits)
		if stop {
			break
		}
		if wait == 0 {
			hits++
			continue
		}
		elapsed += wait
	}
	if hits < 109 || hits > 111 {
		t.Errorf("sent %d hits over 1s at 10 rps and 1s at 100 rps, want 110", hits)
	}
	if got := s.Rate(1500 * time.Millisecond); got != 100 {
		t.Errorf("Rate(1.5s) = %v, want 100", got)
	}
}

func TestScheduleSegments(t *testing.T) {
	s := schedule{
		{Name: "a", Rate: 10, Duration: time.Second},
		{Name: "b", Rate: 0, Duration: time.Second},
		{Name: "c", Conns: 400, Duration: time.Second},
		{Name: "d", Conns: 10, Duration: time.Second},
		{Name: "e", Rate: 5, Duration: time.Second},
	}
	var got []string
	for _, seg := range s.segments() {
		names := ""
		for _, p := range seg {
			names += p.Name
		}
		got = append(got, names)
	}
	if want := []string{"ab", "c", "d", "e"}; len(got) != len(want) || got[0] != "ab" || got[1] != "c" || got[2] != "d" || got[3] != "e" {
		t.Errorf("segments = %v, want %v", got, want)
	}
	if s.peakRate() != 10 {
		t.Errorf("peakRate = %v, want 10", s.peakRate())
	}
	if got, want := s.String(), "a 1s at 10 rps, then b 1s, then c 1s, 400 connections closed loop, then d 1s, 10 connections closed loop, then e 1s at 5 rps"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
