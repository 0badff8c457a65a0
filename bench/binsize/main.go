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
	"slices"
	"strings"
)

// variant is one program: the hello world, with the guard started and its
// middleware in front of the mux when guarded, and lines (with their
// imports) added after the mux is made.
type variant struct {
	name, label string
	guarded     bool
	imports     []string
	lines       []string
}

// handlers mounts the guard's readiness and debug handlers.
var handlers = []string{
	`mux.Handle("/ready", g.ReadyHandler())`,
	`mux.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))`,
}

var variants = []variant{
	{name: "bare", label: "net/http hello world"},
	{name: "start", label: "+ guard: Start, Middleware", guarded: true},
	{name: "wired", label: "+ ReadyHandler, DebugHandler", guarded: true, lines: handlers},
	{name: "promguard", label: "+ promguard and promhttp on /metrics", guarded: true,
		imports: []string{
			"github.com/oomguard/oomguard/guard/promguard",
			"github.com/prometheus/client_golang/prometheus",
			"github.com/prometheus/client_golang/prometheus/promhttp",
		},
		lines: append(slices.Clip(handlers),
			`reg := prometheus.NewRegistry()`,
			`reg.MustRegister(promguard.NewCollector(g))`,
			`mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))`,
		)},
}

// source returns v's main package.
func (v variant) source() string {
	imports := []string{"io", "net/http"}
	var b strings.Builder
	start, handler := "", "mux"
	if v.guarded {
		imports = append(imports, "context", "log", "github.com/oomguard/oomguard/guard")
		start = "\tg, err := guard.Start(context.Background(), guard.Config{})\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n\tdefer g.Stop()\n"
		handler = "g.Middleware(mux)"
	}
	b.WriteString("package main\n\nimport (\n")
	for _, p := range append(imports, v.imports...) {
		fmt.Fprintf(&b, "\t%q\n", p)
	}
	b.WriteString(")\n\nfunc main() {\n" + start)
	b.WriteString("\tmux := http.NewServeMux()\n")
	b.WriteString("\tmux.HandleFunc(\"/\", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, \"hello\\n\") })\n")
	for _, l := range v.lines {
		b.WriteString("\t" + l + "\n")
	}
	fmt.Fprintf(&b, "\thttp.ListenAndServe(\"localhost:8080\", %s)\n}\n", handler)
	return b.String()
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
		if err := os.WriteFile(filepath.Join(dir, v.name, "main.go"), []byte(v.source()), 0o644); err != nil {
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

// growth formats a growth in bytes as +N.NN MB (10^6 bytes, as bench/README.md
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
