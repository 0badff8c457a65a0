package main

import (
	"errors"
	"io"
	"os"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fleetResult is a balancer's run in which each server served served and
// the first refused refused.
func fleetResult(balancer string, served, refused int, killed ...int) result {
	t := newTally()
	for i, a := range []string{"a", "b", "c"} {
		for range served {
			t.add(a, nil)
		}
		if i == 0 {
			for range refused {
				t.add(a, status.Error(codes.ResourceExhausted, "shed"))
			}
		}
	}
	return result{balancer: balancer, tally: t, addrs: []string{"a", "b", "c"}, killed: killed}
}

func quiet(t *testing.T) {
	t.Helper()
	stdout := os.Stdout
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout = f
	t.Cleanup(func() { os.Stdout = stdout; f.Close() })
}

func TestReportBars(t *testing.T) {
	o := options{servers: 3, maxRatio: 0.3, maxRefused: 0.03}
	for _, c := range []struct {
		name    string
		results []result
		want    bool
	}{
		{"weighted refuses a tenth", []result{fleetResult("round_robin", 1000, 300), fleetResult("weighted_round_robin", 1000, 30)}, true},
		{"weighted refuses half", []result{fleetResult("round_robin", 1000, 300), fleetResult("weighted_round_robin", 1000, 150)}, false},
		{"weighted refuses over 3%", []result{fleetResult("round_robin", 100, 300), fleetResult("weighted_round_robin", 100, 20)}, false},
		{"a server killed", []result{fleetResult("round_robin", 1000, 300), fleetResult("weighted_round_robin", 1000, 0, 0)}, false},
		{"round robin refused nothing", []result{fleetResult("round_robin", 1000, 0), fleetResult("weighted_round_robin", 1000, 0)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			quiet(t)
			if got := report(o, c.results); got != c.want {
				t.Errorf("report = %v, want %v", got, c.want)
			}
		})
	}
}

func TestTallyCountsOtherFailures(t *testing.T) {
	tl := newTally()
	tl.add("a", nil)
	tl.add("a", status.Error(codes.ResourceExhausted, "shed"))
	tl.add("", status.Error(codes.DeadlineExceeded, "late"))
	tl.add("", io.EOF)
	if tl.sent != 4 || tl.served["a"] != 1 || tl.refused["a"] != 1 || tl.failed != 2 {
		t.Errorf("tally sent %d served %v refused %v failed %d; want 4, a:1, a:1, 2", tl.sent, tl.served, tl.refused, tl.failed)
	}
	if status.Code(tl.firstErr) != codes.DeadlineExceeded {
		t.Errorf("first error %v, want the deadline's", tl.firstErr)
	}
}

func TestRunRefusesBadOptions(t *testing.T) {
	good := options{servers: 3, rate: 300, duration: 1, deadline: 1, limit: 256, cache: 150, balancers: "round_robin"}
	for _, c := range []struct {
		name string
		edit func(*options)
	}{
		{"no servers", func(o *options) { o.servers = 0 }},
		{"no rate", func(o *options) { o.rate = 0 }},
		{"cache above the limit", func(o *options) { o.cache = 300 }},
		{"negative hold", func(o *options) { o.server.hold = -1 }},
	} {
		o := good
		c.edit(&o)
		if _, err := run(o); err == nil || errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: run = %v, want an error naming the flag", c.name, err)
		}
	}
}
