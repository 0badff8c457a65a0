package main

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestPictureMix(t *testing.T) {
	m := decodeMix
	var sum float64
	for _, c := range m {
		sum += c.Weight
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("weights sum to %v", sum)
	}
	all := m.all()
	if len(all) != 10 || all[0] != (picture{"photo", 1024, 768}) || all[9] != (picture{"scan", 6000, 4500}) {
		t.Errorf("all = %v", all)
	}
	// The service's -pictures: kind:WxH, in the order of all.
	arg := m.arg()
	if !regexp.MustCompile(`^((photo|screen|scan):\d+x\d+,)*(photo|screen|scan):\d+x\d+$`).MatchString(arg) ||
		!strings.HasPrefix(arg, "photo:1024x768,screen:1024x768,") || strings.Count(arg, ",") != len(all)-1 {
		t.Errorf("arg = %q", arg)
	}
	// Classes by pixels: each picture in its own class, none overlapping,
	// the largest about 34 times the smallest.
	sizes := m.sizes()
	for i, c := range m {
		for _, p := range c.Pictures {
			if k := sizes.class(p.pixelBytes()); k != i {
				t.Errorf("%v is in class %d, want %d (%s)", p, k, i, c.Name)
			}
		}
		if i > 0 && sizes[i].Min <= sizes[i-1].Max {
			t.Errorf("class %s [%d, %d] overlaps %s [%d, %d]", c.Name, sizes[i].Min, sizes[i].Max, m[i-1].Name, sizes[i-1].Min, sizes[i-1].Max)
		}
	}
	if r := float64(sizes[2].Max) / float64(sizes[0].Min); r < 30 || r > 40 {
		t.Errorf("largest / smallest = %.1f, want about 34", r)
	}
	if got := m.describe(); !strings.Contains(got, "3% large (2 scans 6000×4500)") || !strings.HasPrefix(got, "60% small (photo 1024×768, ") {
		t.Errorf("describe = %q", got)
	}
	if w := m.weights(); len(w) != len(all) || math.Abs(w[0]-0.2) > 1e-9 || math.Abs(w[9]-0.015) > 1e-9 {
		t.Errorf("weights = %v", w)
	}
}

// TestPictureMixDraw: a grid over u picks each class in proportion to
// its weight and a grid over v each picture of it as often; the mean of
// the draws is mean().
func TestPictureMixDraw(t *testing.T) {
	m := decodeMix
	all := m.all()
	const n = 1000
	counts := make([]int, len(all))
	var total float64
	for i := range n {
		for j := range n {
			k := m.draw((float64(i)+0.5)/n, (float64(j)+0.5)/n)
			if k < 0 || k >= len(all) {
				t.Fatalf("draw gave %d of %d pictures", k, len(all))
			}
			counts[k]++
			total += float64(all[k].pixelBytes())
		}
	}
	for k, w := range m.weights() {
		if want := w * n * n; math.Abs(float64(counts[k])-want) > 0.002*n*n {
			t.Errorf("picture %d (%v) drawn %d times in %d, want %.0f", k, all[k], counts[k], n*n, want)
		}
	}
	if got, want := total/(n*n), m.mean(); math.Abs(got-want)/want > 0.01 {
		t.Errorf("mean of draws %.0f, mean() %.0f", got, want)
	}
	if k := m.draw(0.9999, 0.9999); all[k].Kind != "scan" {
		t.Errorf("the tail drew %v, want a scan", all[k])
	}
}

func TestPictureGen(t *testing.T) {
	g, h := newPictureGen("http://x/work", decodeMix, sizeSeed, false), newPictureGen("http://x/work", decodeMix, sizeSeed, false)
	all := decodeMix.all()
	large := 0
	for range 5000 {
		r := g.next()
		if r2 := h.next(); r.URL != r2.URL {
			t.Fatal("two generators differ: pictures must follow a fixed seed")
		}
		k := requestPicture(r.URL)
		if r.Method != "GET" || r.Body != nil || k < 0 || k >= len(all) || r.Bytes != all[k].pixelBytes() || g.bytesOf(r.URL) != r.Bytes {
			t.Fatalf("request %+v", r)
		}
		if all[k].Kind == "scan" {
			large++
		}
	}
	if large < 100 || large > 200 {
		t.Errorf("%d scans in 5000, want about 3%%", large)
	}
	// In turn: every picture once a pass, in order.
	turn := newPictureGen("http://x/work", decodeMix, sizeSeed, true)
	var got []int
	for range 2 * len(all) {
		got = append(got, requestPicture(turn.next().URL))
	}
	for i, k := range got {
		if k != i%len(all) {
			t.Fatalf("in turn: %v, want 0..%d twice", got, len(all)-1)
		}
	}
	for _, u := range []string{"http://x/work", "http://x/work?img=-1", "http://x/work?img=10", "%%"} {
		if b := g.bytesOf(u); b != 0 {
			t.Errorf("bytesOf(%q) = %d, want 0", u, b)
		}
	}
	if requestPicture("http://x/work?img=3") != 3 || requestPicture("http://x/work?img=x") != -1 {
		t.Error("requestPicture")
	}
	if s := (shape{Pictures: decodeMix}).requestGen("http://x/work", sizeSeed); len(s.pics) == 0 || !slices.Equal(s.all, all) {
		t.Error("a decode shape's generator does not draw pictures")
	}
}
