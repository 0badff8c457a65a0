package main

import (
	"strings"
	"testing"
)

// servesFrom is a probe for which every limit from threshold up serves the
// load, recording the limits it was asked for.
func servesFrom(threshold int64, asked *[]int64) func(int64) (limitProbe, error) {
	return func(l int64) (limitProbe, error) {
		*asked = append(*asked, l)
		p := limitProbe{Limit: l, ShedShare: 0.5}
		if l >= threshold {
			p.ShedShare = 0.01
		}
		return p, nil
	}
}

func TestSmallestServingBisectsBelowTheRecommendation(t *testing.T) {
	var asked []int64
	got, err := smallestServing(256<<20, 512<<20, true, 2048<<20, servesFrom(300<<20, &asked))
	if err != nil {
		t.Fatal(err)
	}
	if got < 300<<20 || got-300<<20 > rightsizeGrain {
		t.Errorf("smallest serving = %d MiB, want within %d MiB above 300 MiB", got>>20, rightsizeGrain>>20)
	}
	for _, l := range asked {
		if l <= 256<<20 || l >= 512<<20 {
			t.Errorf("probed %d MiB, outside the bracket (256, 512) MiB", l>>20)
		}
	}
}

func TestSmallestServingClimbsPastARecommendationTooSmall(t *testing.T) {
	var asked []int64
	got, err := smallestServing(256<<20, 300<<20, false, 2048<<20, servesFrom(700<<20, &asked))
	if err != nil {
		t.Fatal(err)
	}
	if got < 700<<20 || got-700<<20 > max(rightsizeGrain, 700<<20/32) {
		t.Errorf("smallest serving = %d MiB, want just above 700 MiB", got>>20)
	}
	if asked[0] != 600<<20 || asked[1] != 1200<<20 {
		t.Errorf("climbed through %v MiB, want 600 then 1200 first", mibs(asked))
	}
}

func TestSmallestServingNoneServes(t *testing.T) {
	var asked []int64
	got, err := smallestServing(256<<20, 300<<20, false, 1024<<20, servesFrom(1<<40, &asked))
	if err != nil || got != 0 {
		t.Errorf("smallestServing = %d, %v; want 0, nil when no limit up to the most serves", got, err)
	}
}

func TestLimitProbeServes(t *testing.T) {
	for _, c := range []struct {
		p    limitProbe
		want bool
	}{
		{limitProbe{ShedShare: 0.05}, true},
		{limitProbe{ShedShare: 0.051}, false},
		{limitProbe{ShedShare: 0, Killed: true}, false},
	} {
		if got := c.p.serves(); got != c.want {
			t.Errorf("%+v serves = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestRightsizeCheck(t *testing.T) {
	ok := rightsizeResult{AtRecommend: limitProbe{Limit: 450 << 20, ShedShare: 0.01}, Smallest: 320 << 20}
	if f := ok.check(rightsizeShed); len(f) != 0 {
		t.Errorf("check of a recommendation 1.41 times the smallest, shedding 1%%: %v, want none", f)
	}
	far := ok
	far.AtRecommend.Limit = 500 << 20
	if f := far.check(rightsizeShed); len(f) != 1 || !strings.Contains(f[0], "1.56 times") {
		t.Errorf("check of a recommendation 1.56 times the smallest: %v, want that one failure", f)
	}
	shed := ok
	shed.AtRecommend.ShedShare, shed.AtRecommend.Killed = 0.2, true
	if f := shed.check(rightsizeShed); len(f) != 2 {
		t.Errorf("check of a recommendation that shed and was killed: %v, want two failures", f)
	}
	// The quick run's bar: 6% passes it, not the full run's.
	edge := ok
	edge.AtRecommend.ShedShare = 0.06
	if f := edge.check(rightsizeShed); len(f) != 1 || !strings.Contains(f[0], "want at most 5%") {
		t.Errorf("check of 6%% shed at the full run's bar: %v, want that one failure", f)
	}
	if f := edge.check(rightsizeShedQuick); len(f) != 0 {
		t.Errorf("check of 6%% shed at the quick run's bar: %v, want none", f)
	}
}

func TestLastRecommendation(t *testing.T) {
	s := []sample{{Recommended: 300}, {Recommended: 400}, {Recommended: 0}}
	if got := lastRecommendation(s); got != 400 {
		t.Errorf("lastRecommendation = %d, want the last nonzero, 400", got)
	}
	if got := lastRecommendation(nil); got != 0 {
		t.Errorf("lastRecommendation(nil) = %d, want 0", got)
	}
}

func mibs(ls []int64) []int64 {
	out := make([]int64, len(ls))
	for i, l := range ls {
		out[i] = l >> 20
	}
	return out
}
