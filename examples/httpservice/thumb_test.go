package main

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// testPictures is one of each kind, small enough for the race detector.
const testPictures = "photo:320x240, screen:300x200,scan:400x300"

func TestParsePictures(t *testing.T) {
	pics, err := parsePictures(testPictures)
	if err != nil || len(pics) != 3 || pics[1] != (picture{kindScreen, 300, 200}) || pics[2].String() != "scan:400x300" {
		t.Fatalf("parsePictures = %v, %v", pics, err)
	}
	if def, err := parsePictures(defaultPictures); err != nil || def[len(def)-1] != (picture{kindScan, 6000, 4500}) {
		t.Errorf("the default set: %v, %v", def, err)
	}
	for _, bad := range []string{"", "photo", "photo:10", "photo:10x", "drawing:10x10", "photo:0x10", "photo:10x-1", "scan:40000x10", "photo:1x1,,"} {
		if _, err := parsePictures(bad); err == nil {
			t.Errorf("parsePictures(%q) did not fail", bad)
		}
	}
}

func TestPictureSet(t *testing.T) {
	pics, _ := parsePictures(testPictures)
	a, err := newPictureSet(pics, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newPictureSet(pics, "")
	for i, p := range pics {
		if !bytes.Equal(a.encoded[i], b.encoded[i]) {
			t.Errorf("%v: two sets differ: a picture must follow from its index and size", p)
		}
		img, format, err := image.Decode(bytes.NewReader(a.encoded[i]))
		if err != nil || img.Bounds().Dx() != p.W || img.Bounds().Dy() != p.H {
			t.Fatalf("%v decodes to %v, %v", p, img.Bounds(), err)
		}
		if want := map[string]string{kindPhoto: "jpeg", kindScreen: "png", kindScan: "png"}[p.Kind]; format != want {
			t.Errorf("%v is %s, want %s", p, format, want)
		}
		// The declared bytes are what the decoding allocates for pixels.
		var pix int
		switch m := img.(type) {
		case *image.YCbCr:
			pix = len(m.Y) + len(m.Cb) + len(m.Cr)
		case *image.RGBA:
			pix = len(m.Pix)
		default:
			t.Fatalf("%v decodes to a %T", p, img)
		}
		if a.decoded[i] != int64(pix) {
			t.Errorf("%v: decoded bytes %d, the decoder allocated %d", p, a.decoded[i], pix)
		}
	}
	if same, _ := newPictureSet([]picture{pics[0], pics[0]}, ""); bytes.Equal(same.encoded[0], same.encoded[1]) {
		t.Error("two photos of one size at different indices are the same picture")
	}
	if a.encodedBytes() <= 0 {
		t.Error("encodedBytes is not positive")
	}
}

// TestPictureCache: a set read from the cache is the set drawn, and a
// cached file that is not the picture is drawn again.
func TestPictureCache(t *testing.T) {
	pics, _ := parsePictures(testPictures)
	dir := t.TempDir()
	drawn, err := newPictureSet(pics, dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(pics) {
		t.Fatalf("the cache holds %d files, want %d", len(entries), len(pics))
	}
	if err := os.WriteFile(cachePath(dir, 1, pics[1]), []byte("not a picture"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cachePath(dir, 2, pics[2]), drawn.encoded[0], 0o644); err != nil { // a picture of another size
		t.Fatal(err)
	}
	read, err := newPictureSet(pics, dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range pics {
		if !bytes.Equal(read.encoded[i], drawn.encoded[i]) || read.decoded[i] != drawn.decoded[i] {
			t.Errorf("%v: the set read from the cache differs from the one drawn", pics[i])
		}
	}
	if b, _ := os.ReadFile(cachePath(dir, 1, pics[1])); !bytes.Equal(b, drawn.encoded[1]) {
		t.Error("a cached file that is not the picture was not replaced")
	}
	if _, err := newPictureSet(pics, filepath.Join(cachePath(dir, 0, pics[0]), "sub")); err == nil {
		t.Error("a cache below a file did not fail")
	}
}

func TestThumbHandler(t *testing.T) {
	pics, _ := parsePictures(testPictures)
	set, err := newPictureSet(pics, "")
	if err != nil {
		t.Fatal(err)
	}
	h := thumbHandler(set)
	for k, p := range pics {
		w := serve(h, "GET", "/work?img="+strconv.Itoa(k), "")
		if w.Code != 200 || w.Header().Get("Content-Type") != "image/jpeg" {
			t.Fatalf("%v: %d %s %q", p, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		thumb, err := jpeg.Decode(w.Body)
		if err != nil {
			t.Fatalf("%v: the thumbnail: %v", p, err)
		}
		// Fitted in 256×256, the aspect kept.
		if b := thumb.Bounds(); max(b.Dx(), b.Dy()) != thumbSize || b.Dx()*p.H/p.W != b.Dy() && b.Dx()*p.H/p.W != b.Dy()-1 {
			t.Errorf("%v: thumbnail %v", p, b)
		}
		r := httptest.NewRequest("GET", "/work?img="+strconv.Itoa(k), nil)
		if got := set.cost(r); got != set.decoded[k] || got <= 0 {
			t.Errorf("%v: cost %d, want %d", p, got, set.decoded[k])
		}
	}
	for _, target := range []string{"/work", "/work?img=3", "/work?img=-1", "/work?img=x"} {
		if w := serve(h, "GET", target, ""); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "want a picture from 0 to 2") {
			t.Errorf("%s: %d %q, want 400", target, w.Code, w.Body)
		}
		if c := set.cost(httptest.NewRequest("GET", target, nil)); c != 0 {
			t.Errorf("%s: cost %d, want 0", target, c)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/work?img=0", nil).WithContext(ctx))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("cancelled: %d, want 503", w.Code)
	}
}
