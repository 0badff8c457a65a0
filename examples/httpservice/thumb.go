package main

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/disintegration/imaging"
)

// The kinds of picture of -work decode: what a picture looks like, and so
// how it is encoded and how much its decoding costs a pixel.
const (
	kindPhoto  = "photo"  // JPEG: gradients, soft shapes and grain
	kindScreen = "screen" // PNG: flat windows, bars and lines of text
	kindScan   = "scan"   // PNG: a page scanned in colour: paper, margins, lines of text
)

// thumbSize is the bound of a thumbnail's width and height, in pixels.
const thumbSize = 256

// defaultPictures is -pictures' default: a mix of photos and screenshots
// from 1024×768 up, and two page scans of 6000×4500.
const defaultPictures = "photo:1024x768,screen:1024x768,screen:1366x768,photo:1600x1200," +
	"screen:1920x1080,photo:2048x1536,screen:2560x1440,photo:3000x2000,scan:6000x4500,scan:6000x4500"

// A picture is one image of the service's set: its kind and size.
type picture struct {
	Kind string
	W, H int // pixels
}

func (p picture) String() string { return fmt.Sprintf("%s:%dx%d", p.Kind, p.W, p.H) }

// maxPictureSide bounds a picture's width and height, in pixels: 30000²
// pixels at 4 bytes are 3.4 GiB, beyond any memory limit the service meets.
const maxPictureSide = 30000

// parsePictures reads -pictures: kind:WxH, comma-separated, such as
// "photo:1024x768,scan:6000x4500".
func parsePictures(s string) ([]picture, error) {
	var out []picture
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		kind, size, ok := strings.Cut(f, ":")
		ws, hs, ok2 := strings.Cut(size, "x")
		w, errW := strconv.Atoi(ws)
		h, errH := strconv.Atoi(hs)
		switch {
		case !ok || !ok2 || errW != nil || errH != nil:
			return nil, fmt.Errorf("picture %q: want kind:WxH, such as photo:1024x768", f)
		case kind != kindPhoto && kind != kindScreen && kind != kindScan:
			return nil, fmt.Errorf("picture %q: kind %q, want %s, %s or %s", f, kind, kindPhoto, kindScreen, kindScan)
		case w < 1 || h < 1 || w > maxPictureSide || h > maxPictureSide:
			return nil, fmt.Errorf("picture %q: want a size from 1x1 to %dx%d", f, maxPictureSide, maxPictureSide)
		}
		out = append(out, picture{Kind: kind, W: w, H: h})
	}
	return out, nil
}

// A pictureSet is the service's pictures, encoded, with the bytes each
// takes once decoded.
type pictureSet struct {
	pics    []picture
	encoded [][]byte
	decoded []int64 // bytes of the decoded image, from the header
}

// pictureVersion names how pictures are drawn and encoded, in the names
// of cached pictures: a change to either must change it, so that a cache
// never serves pictures drawn otherwise.
const pictureVersion = 1

// newPictureSet draws and encodes the pictures, each from its index and
// size alone: the same list, the same bytes, in every process. With a
// cache directory, it reads each picture from there where an earlier call
// wrote it, and writes those it draws; "" draws every one.
func newPictureSet(pics []picture, cache string) (*pictureSet, error) {
	set := &pictureSet{pics: pics}
	for i, p := range pics {
		b, cfg, err := cachedPicture(cache, i, p)
		if err != nil {
			if b, err = encodePicture(p, uint64(i)); err != nil {
				return nil, fmt.Errorf("picture %d (%v): %w", i, p, err)
			}
			if cfg, _, err = image.DecodeConfig(bytes.NewReader(b)); err != nil {
				return nil, fmt.Errorf("picture %d (%v): read back its header: %w", i, p, err)
			}
			if err := cachePicture(cache, i, p, b); err != nil {
				return nil, err
			}
		}
		set.encoded = append(set.encoded, b)
		set.decoded = append(set.decoded, decodedBytes(cfg))
	}
	return set, nil
}

// cachePath is where picture i of the list is cached in dir.
func cachePath(dir string, i int, p picture) string {
	return filepath.Join(dir, fmt.Sprintf("v%d-%d-%s-%dx%d", pictureVersion, i, p.Kind, p.W, p.H))
}

// cachedPicture reads picture i from the cache dir, with its header; an
// error where dir is "", the file is missing, or it is not a picture of
// p's size.
func cachedPicture(dir string, i int, p picture) ([]byte, image.Config, error) {
	if dir == "" {
		return nil, image.Config{}, errors.New("no cache")
	}
	b, err := os.ReadFile(cachePath(dir, i, p))
	if err != nil {
		return nil, image.Config{}, err
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err == nil && (cfg.Width != p.W || cfg.Height != p.H) {
		err = fmt.Errorf("cached picture is %dx%d", cfg.Width, cfg.Height)
	}
	return b, cfg, err
}

// cachePicture writes picture i to the cache dir, whole or not at all;
// nothing where dir is "".
func cachePicture(dir string, i int, p picture, b []byte) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("-picture-cache: %w", err)
	}
	f, err := os.CreateTemp(dir, ".picture-*")
	if err != nil {
		return fmt.Errorf("-picture-cache: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), cachePath(dir, i, p))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("-picture-cache: write picture %d (%v): %w", i, p, err)
	}
	return nil
}

// encodedBytes is the memory the set's encoded pictures take, in bytes.
func (s *pictureSet) encodedBytes() int64 {
	var n int64
	for _, b := range s.encoded {
		n += int64(len(b))
	}
	return n
}

// decodedBytes is what decoding an image of cfg allocates for its pixels,
// in bytes: image/jpeg decodes colour to 4:2:0 YCbCr (1.5 bytes a pixel)
// and grey to 1; image/png truecolour to 4 bytes a pixel.
func decodedBytes(cfg image.Config) int64 {
	px := int64(cfg.Width) * int64(cfg.Height)
	switch cfg.ColorModel {
	case color.YCbCrModel:
		return px * 3 / 2
	case color.GrayModel:
		return px
	case color.Gray16Model:
		return 2 * px
	case color.RGBA64Model, color.NRGBA64Model:
		return 8 * px
	}
	return 4 * px
}

// picture returns the index that the query's img=K names.
func (s *pictureSet) picture(r *http.Request) (int, error) {
	q := r.URL.Query().Get("img")
	k, err := strconv.Atoi(q)
	if err != nil || k < 0 || k >= len(s.pics) {
		return 0, fmt.Errorf("img=%q: want a picture from 0 to %d", q, len(s.pics)-1)
	}
	return k, nil
}

// cost is the guard's Config.Cost in decode mode: the bytes the named
// picture takes decoded, known from its header before the handler runs;
// 0 for a request that names none.
func (s *pictureSet) cost(r *http.Request) int64 {
	k, err := s.picture(r)
	if err != nil {
		return 0
	}
	return s.decoded[k]
}

// thumbHandler is a thumbnail server: GET /work?img=K decodes picture K
// anew from its encoded bytes (image/jpeg or image/png through imaging),
// fits it in thumbSize×thumbSize with the bicubic (Catmull-Rom) filter
// that thumbnailers commonly use, and answers the
// thumbnail as a JPEG. The decoding is the memory, the decoding and the
// resampling are the CPU, both in proportion to the picture's pixels. The
// request ends early with 503 if its context ends between the steps, as a
// handler that checks its client is still there before the next costly
// step would.
func thumbHandler(set *pictureSet) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, err := set.picture(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Context().Err() != nil {
			http.Error(w, "work cancelled: "+cancelCause(r), http.StatusServiceUnavailable)
			return
		}
		img, err := imaging.Decode(bytes.NewReader(set.encoded[k]))
		if err != nil {
			http.Error(w, fmt.Sprintf("decode picture %d: %v", k, err), http.StatusInternalServerError)
			return
		}
		if r.Context().Err() != nil {
			http.Error(w, "work cancelled: "+cancelCause(r), http.StatusServiceUnavailable)
			return
		}
		thumb := imaging.Fit(img, thumbSize, thumbSize, imaging.CatmullRom)
		var buf bytes.Buffer
		if err := imaging.Encode(&buf, thumb, imaging.JPEG, imaging.JPEGQuality(80)); err != nil {
			http.Error(w, fmt.Sprintf("encode the thumbnail of picture %d: %v", k, err), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
	})
}

// encodePicture draws picture p from seed and encodes it: photos as JPEG,
// screenshots and scans as PNG.
func encodePicture(p picture, seed uint64) ([]byte, error) {
	rng := rand.New(rand.NewPCG(seed, uint64(p.W)<<32|uint64(p.H)))
	img := image.NewRGBA(image.Rect(0, 0, p.W, p.H))
	var buf bytes.Buffer
	var err error
	switch p.Kind {
	case kindPhoto:
		drawPhoto(img, rng)
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85})
	case kindScreen:
		drawScreen(img, rng)
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
	case kindScan:
		drawScan(img, rng)
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
	default:
		err = fmt.Errorf("unknown kind %q", p.Kind)
	}
	return buf.Bytes(), err
}

// drawPhoto paints a photograph's look: a sky-to-ground gradient with
// grain, which keeps the JPEG from being trivially small, and soft discs
// of colour.
func drawPhoto(img *image.RGBA, rng *rand.Rand) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	top, bottom := randColor(rng), randColor(rng)
	grain := rng.Uint64() | 1
	for y := range h {
		t := float64(y) / float64(h)
		base := [3]int{int(lerp(top.R, bottom.R, t)), int(lerp(top.G, bottom.G, t)), int(lerp(top.B, bottom.B, t))}
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for i := 0; i < len(row); i += 4 {
			grain ^= grain << 13 // xorshift64: a cheap, deterministic grain
			grain ^= grain >> 7
			grain ^= grain << 17
			n := int(grain&31) - 16
			p := row[i : i+4 : i+4]
			p[0], p[1], p[2], p[3] = clampInt(base[0]+n), clampInt(base[1]+n), clampInt(base[2]+n), 255
		}
	}
	for range 6 {
		cx, cy := rng.Float64()*float64(w), rng.Float64()*float64(h)
		r := (0.05 + 0.2*rng.Float64()) * float64(min(w, h))
		c := randColor(rng)
		box := image.Rect(int(cx-r), int(cy-r), int(cx+r)+1, int(cy+r)+1).Intersect(img.Rect)
		for y := box.Min.Y; y < box.Max.Y; y++ {
			dy := float64(y) - cy
			for x := box.Min.X; x < box.Max.X; x++ {
				dx := float64(x) - cx
				q := (dx*dx + dy*dy) / (r * r)
				if q >= 1 {
					continue
				}
				a := 1 - q
				p := img.Pix[y*img.Stride+4*x : y*img.Stride+4*x+3 : y*img.Stride+4*x+3]
				p[0] = clamp8(float64(p[0]) + a*(float64(c.R)-float64(p[0])))
				p[1] = clamp8(float64(p[1]) + a*(float64(c.G)-float64(p[1])))
				p[2] = clamp8(float64(p[2]) + a*(float64(c.B)-float64(p[2])))
			}
		}
	}
}

// drawScreen paints a screenshot's look: a flat desktop, windows with
// title bars, and lines of text as runs of dark blocks.
func drawScreen(img *image.RGBA, rng *rand.Rand) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	fillRect(img, img.Rect, randColor(rng))
	for range 3 + rng.IntN(4) {
		x0, y0 := rng.IntN(w*2/3), rng.IntN(h*2/3)
		win := image.Rect(x0, y0, x0+w/4+rng.IntN(w/2), y0+h/4+rng.IntN(h/2)).Intersect(img.Rect)
		fillRect(img, win, color.RGBA{250, 250, 250, 255})
		bar := image.Rect(win.Min.X, win.Min.Y, win.Max.X, win.Min.Y+24).Intersect(win)
		fillRect(img, bar, randColor(rng))
		text(img, image.Rect(win.Min.X+12, win.Min.Y+36, win.Max.X-12, win.Max.Y-12), 18, 8, color.RGBA{40, 40, 40, 255}, rng)
	}
}

// drawScan paints a page scanned in colour: paper that darkens a little
// towards its edges, margins, and lines of text as runs of grey blocks.
func drawScan(img *image.RGBA, rng *rand.Rand) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	// The darkening is a sum of a term in x and one in y: a table each.
	edge := func(i, n int) int {
		d := 2*float64(i)/float64(n) - 1
		return int(math.Round(7 * d * d))
	}
	col := make([]int, w)
	for x := range col {
		col[x] = edge(x, w)
	}
	for y := range h {
		v := 246 - edge(y, h)
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x, c := range col {
			p := row[4*x : 4*x+4 : 4*x+4]
			p[0], p[1], p[2], p[3] = clampInt(v-c), clampInt(v-c-3), clampInt(v-c-10), 255
		}
	}
	m := w / 10
	text(img, image.Rect(m, m, w-m, h-m), h/80, h/300, color.RGBA{60, 60, 70, 255}, rng)
}

// text fills r with lines of words: dark blocks of random widths, line
// apart from line, each glyph high.
func text(img *image.RGBA, r image.Rectangle, line, glyph int, c color.RGBA, rng *rand.Rand) {
	line, glyph = max(line, 2), max(glyph, 1)
	for y := r.Min.Y; y+glyph <= r.Max.Y; y += line {
		end := r.Max.X - rng.IntN(max(1, r.Dx()/3))
		for x := r.Min.X; x < end; {
			word := glyph * (2 + rng.IntN(8))
			fillRect(img, image.Rect(x, y, min(x+word, end), y+glyph), c)
			x += word + glyph
		}
	}
}

func fillRect(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := img.Pix[y*img.Stride+4*r.Min.X : y*img.Stride+4*r.Max.X]
		for i := 0; i < len(row); i += 4 {
			row[i], row[i+1], row[i+2], row[i+3] = c.R, c.G, c.B, c.A
		}
	}
}

func randColor(rng *rand.Rand) color.RGBA {
	return color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
}

func lerp(a, b uint8, t float64) float64 { return float64(a) + t*(float64(b)-float64(a)) }

func clamp8(v float64) uint8 { return uint8(min(255, max(0, math.Round(v)))) }

func clampInt(v int) uint8 { return uint8(min(255, max(0, v))) }
