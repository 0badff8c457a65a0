// Command binsize measures what the guard adds to a service's binary: it
// builds a net/http hello world, the same wired with guard.Start and
// Middleware, with ReadyHandler and DebugHandler mounted too, and with
// promguard's metrics served by promhttp on top, each as a
// module of its own that takes this repository by a replace directive, with
// "go build" and with -ldflags="-s -w", and prints the sizes and the growth
// over the hello world.
//
//	go run ./bench/binsize                      # the table
//	go run ./bench/binsize -max-growth-mb 1.6   # CI: exit 1 if the wired binary, stripped, grows more
//
// It needs only the Go toolchain and the module cache (go mod download).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// variant is one program: its name and the body of its main package.
type variant struct {
	name, label, src string
}

const hello = `mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") })`

var variants = []variant{
	{"bare", "net/http hello world", `package main

import (
	"io"
	"net/http"
)

func main() {
	` + hello + `
	http.ListenAndServe("localhost:8080", mux)
}
`},
	{"start", "+ guard: Start, Middleware", `package main

import (
	"context"
	"io"
	"log"
	"net/http"

	"github.com/oomguard/oomguard/guard"
)

func main() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()
	` + hello + `
	http.ListenAndServe("localhost:8080", g.Middleware(mux))
}
`},
	{"wired", "+ ReadyHandler, DebugHandler", `package main

import (
	"context"
	"io"
	"log"
	"net/http"

	"github.com/oomguard/oomguard/guard"
)

func main() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()
	` + hello + `
	mux.Handle("/ready", g.ReadyHandler())
	mux.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
	http.ListenAndServe("localhost:8080", g.Middleware(mux))
}
`},
	{"promguard", "+ promguard and promhttp on /metrics", `package main

import (
	"context"
	"io"
	"log"
	"net/http"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/guard/promguard"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(promguard.NewCollector(g))
	` + hello + `
	mux.Handle("/ready", g.ReadyHandler())
	mux.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	http.ListenAndServe("localhost:8080", g.Middleware(mux))
}
`},
}

// wired is the variant the check bounds: the guard with its handlers, and
// no Prometheus.
const wired = 2

type size struct {
	plain, stripped int64
	packages        int
}

func main() {
	maxGrowth := flag.Float64("max-growth-mb", 0, "exit 1 if the wired binary, stripped, grows more than this over the hello world, in MB of 10^6 bytes (0: no check)")
	flag.Parse()
	if err := run(*maxGrowth); err != nil {
		fmt.Fprintln(os.Stderr, "binsize:", err)
		os.Exit(1)
	}
}

func run(maxGrowth float64) error {
	root, err := goCmd("", "list", "-m", "-f", "{{.Dir}}", "github.com/oomguard/oomguard")
	if err != nil {
		return fmt.Errorf("run it from within the repository: %w", err)
	}
	version, err := goCmd("", "env", "GOVERSION", "GOOS", "GOARCH")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "oomguard-binsize-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return err
	}
	mod := "module binsize\n\ngo 1.25.0\n\nrequire github.com/oomguard/oomguard v0.0.0\n\nreplace github.com/oomguard/oomguard => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		return err
	}
	sizes := make([]size, len(variants))
	for i, v := range variants {
		if err := os.Mkdir(filepath.Join(dir, v.name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, v.name, "main.go"), []byte(v.src), 0o644); err != nil {
			return err
		}
		if sizes[i], err = measure(dir, v.name); err != nil {
			return err
		}
	}

	fmt.Printf("%s, go build (plain) and go build -ldflags=\"-s -w\" (stripped)\n\n", strings.ReplaceAll(version, "\n", " "))
	fmt.Println("| binary | bytes | stripped | packages |")
	fmt.Println("|---|---|---|---|")
	base := sizes[0]
	for i, v := range variants {
		s := sizes[i]
		if i == 0 {
			fmt.Printf("| %s | %s | %s | %d |\n", v.label, commas(s.plain), commas(s.stripped), s.packages)
			continue
		}
		fmt.Printf("| %s | %s (%s) | %s (%s) | %d |\n", v.label,
			commas(s.plain), growth(s.plain-base.plain), commas(s.stripped), growth(s.stripped-base.stripped), s.packages)
	}
	grew := sizes[wired].stripped - base.stripped
	if maxGrowth > 0 && float64(grew) > maxGrowth*1e6 {
		return fmt.Errorf("the wired service, stripped, grows %s over the hello world, more than %.2f MB", growth(grew), maxGrowth)
	}
	return nil
}

// measure builds the main package in dir/name both ways and counts the
// packages it links.
func measure(dir, name string) (size, error) {
	var s size
	for _, b := range []struct {
		flags []string
		into  *int64
	}{
		{nil, &s.plain},
		{[]string{"-ldflags=-s -w"}, &s.stripped},
	} {
		out := filepath.Join(dir, name+".bin")
		args := append([]string{"build", "-mod=mod", "-o", out}, b.flags...)
		if _, err := goCmd(dir, append(args, "./"+name)...); err != nil {
			return s, err
		}
		fi, err := os.Stat(out)
		if err != nil {
			return s, err
		}
		*b.into = fi.Size()
	}
	deps, err := goCmd(dir, "list", "-mod=mod", "-deps", "./"+name)
	if err != nil {
		return s, err
	}
	s.packages = len(strings.Fields(deps))
	return s, nil
}

// goCmd runs the go command in dir and returns its output, trimmed.
func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", errors.New("go " + strings.Join(args, " ") + ": " + err.Error() + ": " + strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// growth formats a growth in bytes as +N.NN MB (10^6 bytes, as the README
// reports it).
func growth(b int64) string {
	return fmt.Sprintf("%+.2f MB", float64(b)/1e6)
}

// commas formats n with thousands separators.
func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
