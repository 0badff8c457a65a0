package main

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// A picture is one image of the decode shapes' set, as examples/httpservice
// -pictures names it: photo (JPEG), screen or scan (PNG), and its size.
type picture struct {
	Kind string
	W, H int // pixels
}

// String is the picture as -pictures names it: kind:WxH.
func (p picture) String() string { return fmt.Sprintf("%s:%dx%d", p.Kind, p.W, p.H) }

// pixelBytes is the picture at 4 bytes a pixel, what decoding a PNG of it
// allocates: the key of its class.
func (p picture) pixelBytes() int64 { return 4 * int64(p.W) * int64(p.H) }

// A pictureClass is pictures of like cost with their share of the
// requests; a request of the class asks for each of them as often.
type pictureClass struct {
	Name     string
	Weight   float64 // share of the requests; a mix's weights sum to 1
	Pictures []picture
}

// A pictureMix is the pictures of a decode shape's requests, smallest
// class first, each class's pixels apart from the next's.
type pictureMix []pictureClass

// decodeMix is the decode shapes' pictures: photos and screenshots from
// 1024×768 up, and rare page scans of 6000×4500, about 40 times the cost
// of the smallest in CPU, and 103 MiB each decoded.
var decodeMix = pictureMix{
	{Name: "small", Weight: 0.60, Pictures: []picture{{"photo", 1024, 768}, {"screen", 1024, 768}, {"screen", 1366, 768}}},
	{Name: "medium", Weight: 0.37, Pictures: []picture{{"photo", 1600, 1200}, {"screen", 1920, 1080}, {"photo", 2048, 1536},
		{"screen", 2560, 1440}, {"photo", 3000, 2000}}},
	{Name: "large", Weight: 0.03, Pictures: []picture{{"scan", 6000, 4500}, {"scan", 6000, 4500}}},
}

// all is every picture of the mix, in the order of -pictures: a request's
// img=K is its index here.
func (m pictureMix) all() []picture {
	var out []picture
	for _, c := range m {
		out = append(out, c.Pictures...)
	}
	return out
}

// arg is the service's -pictures.
func (m pictureMix) arg() string {
	var parts []string
	for _, p := range m.all() {
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ",")
}

// draw picks a class by weight with u, then a picture of it with v, and
// returns the picture's index. u and v are uniform in [0, 1).
func (m pictureMix) draw(u, v float64) int {
	i, first := len(m)-1, 0
	for k, c := range m {
		if u < c.Weight {
			i = k
			break
		}
		u -= c.Weight
	}
	for _, c := range m[:i] {
		first += len(c.Pictures)
	}
	n := len(m[i].Pictures)
	return first + min(n-1, int(v*float64(n)))
}

// sizes is the mix as classes of pixelBytes, for the accounting that
// heavytail and uploads share (classShares).
func (m pictureMix) sizes() sizeMix {
	out := make(sizeMix, len(m))
	for i, c := range m {
		out[i] = sizeClass{Name: c.Name, Weight: c.Weight, Min: math.MaxInt64}
		for _, p := range c.Pictures {
			out[i].Min, out[i].Max = min(out[i].Min, p.pixelBytes()), max(out[i].Max, p.pixelBytes())
		}
	}
	return out
}

// mean is the expected pixelBytes of a request.
func (m pictureMix) mean() float64 {
	var sum float64
	for _, c := range m {
		var b float64
		for _, p := range c.Pictures {
			b += float64(p.pixelBytes())
		}
		sum += c.Weight * b / float64(len(c.Pictures))
	}
	return sum
}

// weights is each picture's share of the requests, by index.
func (m pictureMix) weights() []float64 {
	var out []float64
	for _, c := range m {
		for range c.Pictures {
			out = append(out, c.Weight/float64(len(c.Pictures)))
		}
	}
	return out
}

// describe is the mix in words: each class's share and pictures.
func (m pictureMix) describe() string {
	var parts []string
	for _, c := range m {
		counts := map[picture]int{}
		var order []picture
		for _, p := range c.Pictures {
			if counts[p] == 0 {
				order = append(order, p)
			}
			counts[p]++
		}
		var ps []string
		for _, p := range order {
			s := fmt.Sprintf("%s %d×%d", p.Kind, p.W, p.H)
			if n := counts[p]; n > 1 {
				s = fmt.Sprintf("%d %ss %d×%d", n, p.Kind, p.W, p.H)
			}
			ps = append(ps, s)
		}
		parts = append(parts, fmt.Sprintf("%g%% %s (%s)", 100*c.Weight, c.Name, strings.Join(ps, ", ")))
	}
	return strings.Join(parts, ", ")
}

// requestPicture is the img=K of a request URL; -1 if it has none.
func requestPicture(rawURL string) int {
	u, err := url.Parse(rawURL)
	if err != nil {
		return -1
	}
	k, err := strconv.Atoi(u.Query().Get("img"))
	if err != nil || k < 0 {
		return -1
	}
	return k
}
