package profile_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/oomguard/oomguard/profile"
)

func Example() {
	dir, err := os.MkdirTemp("", "heap")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := profile.Open(profile.Options{
		Dir:      dir,
		MaxCount: 5,
		// A fixed clock, for the output below; leave Now nil in real use.
		Now: func() time.Time { return time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // releases the directory for another Store
	m, err := store.Write(profile.Meta{Reason: "level High", Level: "High", Usage: 230 << 20, Limit: 256 << 20})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Name, m.Reason)

	// Too soon after the first: refused unless forced.
	_, err = store.Write(profile.Meta{Reason: "again"})
	fmt.Println(err != nil)
	m, err = store.Write(profile.Meta{Reason: "next GC cycle", Force: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Name, m.Reason)
	fmt.Println(len(store.List()), "profiles")
	// Output:
	// heap-20250102T150405.000Z-1.pb.gz level High
	// true
	// heap-20250102T150405.000Z-2.pb.gz next GC cycle
	// 2 profiles
}

func ExampleHandler() {
	dir, err := os.MkdirTemp("", "heap")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := profile.Open(profile.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Write(profile.Meta{Reason: "example"}); err != nil {
		log.Fatal(err)
	}

	// Serve the store below a prefix, on a listener that only operators
	// reach; then "go tool pprof -top http://HOST/debug/heap/latest" works.
	mux := http.NewServeMux()
	mux.Handle("/debug/", http.StripPrefix("/debug", profile.Handler(store)))

	for _, path := range []string{"/debug/heap", "/debug/heap/latest", "/debug/heap/..%2f..%2fetc%2fpasswd", "/debug/heap/nosuch"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// /debug/heap 200 application/json
	// /debug/heap/latest 200 application/octet-stream
	// /debug/heap/..%2f..%2fetc%2fpasswd 400 text/plain; charset=utf-8
	// /debug/heap/nosuch 404 text/plain; charset=utf-8
}

func ExampleDiff() {
	store, err := profile.Open(profile.Options{Dir: "profiles"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	list := store.List()
	if len(list) < 2 {
		return
	}
	// What grew between the oldest profile and the newest?
	base, err := store.Parse(list[0].Name)
	if err != nil {
		log.Fatal(err)
	}
	target, err := store.Parse(list[len(list)-1].Name)
	if err != nil {
		log.Fatal(err)
	}
	d, err := profile.Diff(base, target)
	if err != nil {
		log.Fatal(err)
	}
	top, err := profile.TopGrowth(d, 5, "inuse_space")
	if err != nil {
		log.Fatal(err)
	}
	for _, g := range top {
		fmt.Printf("%8d KiB %8d objects  %s\n", g.Bytes>>10, g.Objects, g.Function)
	}
}
