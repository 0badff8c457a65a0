// Command httpservice is a small HTTP service that embeds oomguard the way a
// user would. Its work endpoint holds memory for a while per request, like a
// handler that decodes a payload and then waits on a slow downstream call,
// so that a burst of requests can fill a container's memory limit.
//
// Routes on the main listener:
//
//	GET /work       hold -work-bytes (or the query's bytes=N) for -work-hold, then answer 200;
//	                with -work decode, decode picture img=K of -pictures and answer its thumbnail
//	POST /work      read the whole body into memory, hold it for -work-hold, then answer 200
//	GET /healthz    liveness: always 200
//	GET /readyz     readiness: the guard's ReadyHandler in oomguard mode, else 200
//	GET /metrics    Prometheus metrics: Go runtime, process and, in oomguard
//	                mode, the guard's (package promguard)
//
// The debug listener (loopback only) serves /debug/guard/ (oomguard mode)
// and /debug/pprof/.
//
// The -mode flag picks what protects the service:
//
//	bare          nothing: no guard, no GOMEMLIMIT
//	automemlimit  GOMEMLIMIT from the cgroup limit, via automemlimit
//	oomguard      guard.Start with defaults, Middleware and ReadyHandler;
//	              -cost declares each request's bytes (Config.Cost)
//
// -max-inflight caps the requests in /work at once in any mode, and
// answers the excess 503 at once. Other flags shape the memory: -offheap
// holds it in mmap outside the Go heap, -cache-frac keeps a live set from
// start-up, -leak-rate leaks. -work decode makes /work a thumbnail server,
// bound by CPU as much as by memory: the pictures of -pictures are drawn
// and encoded at start-up, and each request decodes one anew.
//
// The first two lines on stdout are machine-readable:
//
//	listening 127.0.0.1:PORT
//	debug 127.0.0.1:PORT
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/guard/promguard"
)

// The modes of -mode.
const (
	modeBare         = "bare"
	modeAutomemlimit = "automemlimit"
	modeOomguard     = "oomguard"
)

// What /work does, by -work.
const (
	workHold   = "hold"
	workDecode = "decode"
)

type options struct {
	addr, debugAddr string
	mode            string
	work            workConfig
	workKind        string
	pictures        string
	pictureCache    string
	maxInFlight     int
	cost            bool
	flightRecorder  bool
	cacheFrac       float64
	leakRate        int64
	rebuildBytes    int64
	rebuildEvery    time.Duration
	limit           int64
	dumpDir         string
	shutdownGrace   time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:0", "listen address of the service (port 0 picks one)")
	flag.StringVar(&o.debugAddr, "debug-addr", "127.0.0.1:0", "loopback-only listen address of the debug endpoint (port 0 picks one)")
	flag.StringVar(&o.mode, "mode", modeOomguard, "protection: bare, automemlimit or oomguard")
	flag.StringVar(&o.workKind, "work", workHold, "what /work does: hold (memory, -work-bytes for -work-hold) or decode (GET /work?img=K: a thumbnail of picture K of -pictures, decoded anew)")
	flag.StringVar(&o.pictures, "pictures", defaultPictures, "-work decode: the pictures, kind:WxH comma-separated, kind photo (JPEG), screen or scan (PNG); drawn from their index and size at start-up, so the same list gives the same bytes")
	flag.StringVar(&o.pictureCache, "picture-cache", "", "-work decode: read the encoded pictures from this directory where an earlier start-up wrote them, and write there those drawn; empty draws every one at each start-up")
	flag.IntVar(&o.work.bytes, "work-bytes", 1<<20, "bytes each GET /work allocates and touches, unless its query says bytes=N")
	flag.IntVar(&o.work.maxBytes, "max-bytes", 64<<20, "the most a /work request may hold: bytes=N or a POST body")
	flag.DurationVar(&o.work.hold, "work-hold", 300*time.Millisecond, "how long each /work request holds its memory")
	flag.BoolVar(&o.work.offHeap, "offheap", false, "hold /work memory in anonymous mmap, outside the Go heap (Linux; the heap elsewhere)")
	flag.IntVar(&o.maxInFlight, "max-inflight", 0, "at most this many /work requests at once, the rest 503 at once; 0 = no cap")
	flag.BoolVar(&o.flightRecorder, "flight-recorder", false, "oomguard mode: keep an execution trace in memory (Config.FlightRecorder, defaults) and write it at Critical")
	flag.BoolVar(&o.cost, "cost", false, "oomguard mode: declare each request's bytes as Config.Cost: Content-Length, bytes=N or -work-bytes; with -work decode, the bytes of the named picture decoded")
	flag.Float64Var(&o.cacheFrac, "cache-frac", 0, "keep a live cache of this fraction of the memory limit from start-up; 0 = none")
	flag.Int64Var(&o.leakRate, "leak-rate", 0, "leak this many bytes per second into a global slice; 0 = none")
	flag.Int64Var(&o.rebuildBytes, "rebuild-bytes", 0, "every -rebuild-every, build a block of this many bytes in one allocation and drop the last one, as an index rebuilt in the background; 0 = none")
	flag.DurationVar(&o.rebuildEvery, "rebuild-every", 5*time.Second, "how often -rebuild-bytes rebuilds its block")
	flag.Int64Var(&o.limit, "limit", 0, "memory limit in bytes for oomguard (Config.Limit) and automemlimit; 0 = detect from the cgroup")
	flag.StringVar(&o.dumpDir, "dump-dir", "", "directory for the guard's heap profiles (Config.DumpDir); empty writes none")
	flag.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "how long in-flight requests may finish after SIGTERM")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(o, logger); err != nil {
		logger.Error("httpservice failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(o options, logger *slog.Logger) error {
	switch {
	case o.work.bytes < 0 || o.work.bytes > o.work.maxBytes:
		return fmt.Errorf("-work-bytes = %d: want 0 to -max-bytes (%d)", o.work.bytes, o.work.maxBytes)
	case o.cacheFrac < 0 || o.cacheFrac >= 1:
		return fmt.Errorf("-cache-frac = %v: want a fraction of the limit in [0, 1)", o.cacheFrac)
	case o.leakRate < 0:
		return fmt.Errorf("-leak-rate = %d: must not be negative", o.leakRate)
	case o.rebuildBytes < 0:
		return fmt.Errorf("-rebuild-bytes = %d: must not be negative", o.rebuildBytes)
	case o.rebuildBytes > 0 && o.rebuildEvery <= 0:
		return fmt.Errorf("-rebuild-every = %v: must be positive", o.rebuildEvery)
	case o.cost && o.mode != modeOomguard:
		return fmt.Errorf("-cost needs -mode %s", modeOomguard)
	case o.workKind != workHold && o.workKind != workDecode:
		return fmt.Errorf("-work = %q: want %s or %s", o.workKind, workHold, workDecode)
	}
	if err := checkLoopback(o.debugAddr); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var work http.Handler = workHandler(o.work)
	cost := declaredCost(o.work.bytes)
	if o.workKind == workDecode {
		pics, err := parsePictures(o.pictures)
		if err != nil {
			return fmt.Errorf("-pictures: %w", err)
		}
		began := time.Now()
		set, err := newPictureSet(pics, o.pictureCache)
		if err != nil {
			return fmt.Errorf("-pictures: %w", err)
		}
		// Drawing a scan takes as much memory as decoding one: return it
		// before serving, so that every mode starts from the same heap.
		runtime.GC()
		debug.FreeOSMemory()
		logger.Info("pictures drawn and encoded", slog.Int("pictures", len(pics)),
			slog.Int64("encoded_bytes", set.encodedBytes()), slog.Duration("took", time.Since(began)))
		work, cost = thumbHandler(set), set.cost
	}
	ready := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ready\n"))
	}))
	debug := http.NewServeMux()

	switch o.mode {
	case modeBare:
	case modeAutomemlimit:
		provider := memlimit.FromCgroup
		if o.limit > 0 {
			provider = memlimit.Limit(uint64(o.limit))
		}
		set, err := memlimit.Set(memlimit.WithProvider(provider), memlimit.WithLogger(logger))
		if err != nil {
			return fmt.Errorf("automemlimit: %w", err)
		}
		logger.Info("GOMEMLIMIT set by automemlimit", slog.Int64("bytes", set))
	case modeOomguard:
		// Not ctx: the guard keeps protecting the service while it drains
		// after SIGTERM, and stops when run returns.
		cfg := guard.Config{Limit: o.limit, DumpDir: o.dumpDir, Logger: logger}
		if o.cost {
			cfg.Cost = cost
		}
		if o.flightRecorder {
			cfg.FlightRecorder = &guard.FlightRecorderConfig{}
		}
		g, err := guard.Start(context.Background(), cfg)
		if err != nil {
			return err
		}
		defer g.Stop()
		prometheus.MustRegister(promguard.NewCollector(g))
		work = g.Middleware(work)
		ready = g.ReadyHandler()
		debug.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
	default:
		return fmt.Errorf("-mode = %q: want bare, automemlimit or oomguard", o.mode)
	}

	// cache is a long-lived live set that the service fills at start-up
	// and keeps until it returns: a cache sized to the container, healthy
	// however high it sits.
	var cache [][]byte
	defer runtime.KeepAlive(&cache)
	if o.cacheFrac > 0 {
		limit, err := memoryLimit(o.limit)
		if err != nil {
			return fmt.Errorf("-cache-frac needs the memory limit: %w", err)
		}
		n := int64(o.cacheFrac * float64(limit))
		cache = fill(n)
		logger.Info("cache filled", slog.Int64("bytes", n), slog.Float64("fraction_of_limit", o.cacheFrac))
	}
	go leak(ctx, o.leakRate)
	go rebuild(ctx, o.rebuildBytes, o.rebuildEvery)

	mux := http.NewServeMux()
	mux.Handle("/work", capInFlight(o.maxInFlight, work))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /readyz", ready)
	mux.Handle("GET /metrics", promhttp.Handler())

	debug.HandleFunc("/debug/pprof/", pprof.Index)
	debug.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	debug.HandleFunc("/debug/pprof/profile", pprof.Profile)
	debug.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	debug.HandleFunc("/debug/pprof/trace", pprof.Trace)

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on -addr %s: %w", o.addr, err)
	}
	dln, err := net.Listen("tcp", o.debugAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen on -debug-addr %s: %w", o.debugAddr, err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	fmt.Printf("debug %s\n", dln.Addr())
	logger.Info("serving", slog.String("mode", o.mode), slog.String("addr", ln.Addr().String()),
		slog.String("debug_addr", dln.Addr().String()),
		slog.String("work", o.workKind), slog.Int("work_bytes", o.work.bytes), slog.Duration("work_hold", o.work.hold), slog.Bool("offheap", o.work.offHeap),
		slog.Int("max_inflight", o.maxInFlight), slog.Bool("cost", o.cost), slog.Int64("leak_rate", o.leakRate))

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	dsrv := &http.Server{Handler: loopbackHostOnly(debug), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- dsrv.Serve(dln) }()

	select {
	case <-ctx.Done():
		logger.Info("shutting down", slog.Duration("grace", o.shutdownGrace))
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownGrace)
	defer cancel()
	err = errors.Join(srv.Shutdown(sctx), dsrv.Shutdown(sctx))
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// memoryLimit is limit if positive, else the cgroup's memory limit.
func memoryLimit(limit int64) (int64, error) {
	if limit > 0 {
		return limit, nil
	}
	l, err := memlimit.FromCgroup()
	if err != nil {
		return 0, err
	}
	return int64(min(l, math.MaxInt64)), nil
}

// checkLoopback refuses a debug address that is not on a loopback
// interface: heap profiles and status must not be reachable from outside.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-debug-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-debug-addr %q: the debug endpoint must listen on a loopback address such as 127.0.0.1", addr)
	}
	return nil
}

// loopbackHostOnly refuses a request whose Host is not localhost or a
// loopback address: a web page on a name that resolves to 127.0.0.1 (DNS
// rebinding) must not read /debug/pprof, which the guard's DebugHandler
// does not cover.
func loopbackHostOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		addr, err := netip.ParseAddr(host)
		if host != "localhost" && (err != nil || addr.Zone() != "" || !addr.Unmap().IsLoopback()) {
			http.Error(w, "forbidden: Host is not localhost or a loopback address", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
