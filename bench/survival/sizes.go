package main

import (
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// A sizeClass is a range of request sizes, drawn log-uniformly, with its
// share of the requests.
type sizeClass struct {
	Name     string
	Weight   float64 // share of the requests; a mix's weights sum to 1
	Min, Max int64   // bytes
}

// A sizeMix is the size distribution of a shape's requests, smallest class
// first.
type sizeMix []sizeClass

// The mixes of the heavy-tailed and upload shapes.
var (
	heavyTailMix = sizeMix{
		{Name: "small", Weight: 0.95, Min: 16 << 10, Max: 64 << 10},
		{Name: "medium", Weight: 0.04, Min: 1 << 20, Max: 4 << 20},
		{Name: "large", Weight: 0.01, Min: 16 << 20, Max: 32 << 20},
	}
	uploadMix = sizeMix{
		{Name: "small", Weight: 0.80, Min: 16 << 10, Max: 64 << 10},
		{Name: "medium", Weight: 0.17, Min: 256 << 10, Max: 1 << 20},
		{Name: "large", Weight: 0.03, Min: 4 << 20, Max: 8 << 20},
	}
)

// draw picks a class by weight, then a size log-uniformly in its range.
// u and v are uniform in [0, 1).
func (m sizeMix) draw(u, v float64) int64 {
	c := m[len(m)-1]
	for _, k := range m {
		if u < k.Weight {
			c = k
			break
		}
		u -= k.Weight
	}
	lo, hi := math.Log(float64(c.Min)), math.Log(float64(c.Max))
	return min(c.Max, max(c.Min, int64(math.Exp(lo+v*(hi-lo)))))
}

// mean is the expected size in bytes.
func (m sizeMix) mean() float64 {
	var sum float64
	for _, c := range m {
		mean := float64(c.Min)
		if c.Max > c.Min { // log-uniform on [a, b]: (b-a) / ln(b/a)
			mean = float64(c.Max-c.Min) / math.Log(float64(c.Max)/float64(c.Min))
		}
		sum += c.Weight * mean
	}
	return sum
}

// largest is the biggest size the mix can draw.
func (m sizeMix) largest() int64 { return m[len(m)-1].Max }

// class is the index of the class whose range holds size; -1 if none.
func (m sizeMix) class(size int64) int {
	for i, c := range m {
		if size >= c.Min && size <= c.Max {
			return i
		}
	}
	return -1
}

// A classShare is how many requests of a size class were sent and served.
type classShare struct {
	Name   string `json:"class"`
	Sent   int    `json:"sent"`
	Served int    `json:"served"`
}

// share is served / sent; 0 when none was sent.
func (c classShare) share() float64 {
	if c.Sent == 0 {
		return 0
	}
	return float64(c.Served) / float64(c.Sent)
}

// classShares counts, per class of m, the requests sent in [from, to) and
// those served (within deadline, where it is not 0).
func classShares(m sizeMix, hits []hit, from, to, deadline time.Duration) []classShare {
	out := make([]classShare, len(m))
	for i, c := range m {
		out[i].Name = c.Name
	}
	for _, h := range hits {
		if h.At < from || h.At >= to {
			continue
		}
		if i := m.class(h.Bytes); i >= 0 {
			out[i].Sent++
			if h.served(deadline) {
				out[i].Served++
			}
		}
	}
	return out
}

// A request is one request of a shape: GET url, or POST it with a body.
type request struct {
	Method string
	URL    string
	Body   []byte
	Bytes  int64 // the memory it asks the service to hold; 0 = the service's default
}

// sizeSeed is the seed of the sizes of every mode's run: each gets the
// same sequence. The oracle's lives on the spike alone draw others (see
// settleCap).
const sizeSeed = 1

// requestGen makes a shape's requests. With a mix, each request names its
// size in the query (bytes=N), so that an outcome tells its class, and an
// upload carries a body of that size. Sizes follow the seed given: the same
// seed, the same sequence. It is safe for concurrent use.
type requestGen struct {
	url    string // http://host:port/work
	mix    sizeMix
	upload bool
	body   []byte // shared, read-only: uploads are slices of it
	// pics, where set, are the pictures the requests name (img=K) instead
	// of sizes; all is them by index. inTurn asks for each in turn rather
	// than by the mix's weights.
	pics   pictureMix
	all    []picture
	inTurn bool

	mu   sync.Mutex
	rng  *rand.Rand
	turn int
}

// newRequestGen returns the generator for a shape's requests to url, its
// sizes drawn from seed.
func newRequestGen(url string, mix sizeMix, upload bool, seed uint64) *requestGen {
	g := &requestGen{url: url, mix: mix, upload: upload, rng: rand.New(rand.NewPCG(seed, 2))}
	if upload && len(mix) > 0 {
		g.body = make([]byte, mix.largest())
		for i := range g.body {
			g.body[i] = 'x'
		}
	}
	return g
}

// requestGen returns the generator of the shape's requests to url, their
// sizes or pictures drawn from seed.
func (s shape) requestGen(url string, seed uint64) *requestGen {
	if len(s.Pictures) > 0 {
		return newPictureGen(url, s.Pictures, seed, false)
	}
	return newRequestGen(url, s.Mix, s.Upload, seed)
}

// newPictureGen returns the generator for a decode shape's requests to
// url: pictures drawn by the mix's weights from seed, or with inTurn each
// picture of the mix in turn.
func newPictureGen(url string, pics pictureMix, seed uint64, inTurn bool) *requestGen {
	return &requestGen{url: url, pics: pics, all: pics.all(), inTurn: inTurn, rng: rand.New(rand.NewPCG(seed, 2))}
}

// next returns the next request.
func (g *requestGen) next() request {
	if len(g.pics) > 0 {
		g.mu.Lock()
		k := g.turn % len(g.all)
		if g.inTurn {
			g.turn++
		} else {
			k = g.pics.draw(g.rng.Float64(), g.rng.Float64())
		}
		g.mu.Unlock()
		return request{Method: "GET", URL: g.url + "?img=" + strconv.Itoa(k), Bytes: g.all[k].pixelBytes()}
	}
	if len(g.mix) == 0 {
		return request{Method: "GET", URL: g.url}
	}
	g.mu.Lock()
	n := g.mix.draw(g.rng.Float64(), g.rng.Float64())
	g.mu.Unlock()
	r := request{Method: "GET", URL: g.url + "?bytes=" + strconv.FormatInt(n, 10), Bytes: n}
	if g.upload {
		r.Method, r.Body = "POST", g.body[:n]
	}
	return r
}

// bytesOf is the size of the request to rawURL that the generator made:
// its bytes=N, or the pixelBytes of the picture img=K names; 0 if it names
// neither.
func (g *requestGen) bytesOf(rawURL string) int64 {
	if len(g.pics) == 0 {
		return requestBytes(rawURL)
	}
	if k := requestPicture(rawURL); k >= 0 && k < len(g.all) {
		return g.all[k].pixelBytes()
	}
	return 0
}

// requestBytes is the bytes=N of a request URL; 0 if it has none.
func requestBytes(rawURL string) int64 {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(u.Query().Get("bytes"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}
