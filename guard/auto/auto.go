// Package auto starts an oomguard Guard when the program starts, configured
// from the environment alone:
//
//	import _ "github.com/oomguard/oomguard/guard/auto"
//
// The guard reads the memory limit, sets GOMEMLIMIT, writes heap profiles
// where OOMGUARD_DUMP_DIR says, and logs through slog.Default. It runs for
// the life of the process. Guard returns it, for Middleware and the rest.
//
// The variables are those guard.Start honours (OOMGUARD, OOMGUARD_LIMIT,
// OOMGUARD_RATIO, OOMGUARD_DUMP_DIR), and:
//
//	OOMGUARD_DEBUG_ADDR    serve Guard.DebugHandler at this address, under /debug/guard/
//	OOMGUARD_DEBUG_PUBLIC  "1" to allow an address that is not loopback
//
// With OOMGUARD_DEBUG_PUBLIC=1 the endpoint answers any client, with no
// loopback or Host check: heap profiles hold the program's data, so keep
// the port behind a network policy.
//
// A bad value gets one ERROR line that names the variable, and the guard
// stays off; the program goes on. Guard then returns a guard that is off
// (guard.Off), never nil, so that handlers wired to it serve as if it were
// not there.
package auto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/oomguard/oomguard/guard"
)

// The variables of this package.
const (
	EnvDebugAddr   = "OOMGUARD_DEBUG_ADDR"
	EnvDebugPublic = "OOMGUARD_DEBUG_PUBLIC"
)

var started *guard.Guard

func init() {
	g, _, err := start(slog.Default())
	if err != nil {
		slog.Default().Error(err.Error(), slog.String("component", "oomguard"))
		g = guard.Off()
	}
	started = g
}

// Guard returns the guard started at init. It is never nil: when the guard
// is off (OOMGUARD=off, or a bad environment variable) it is a guard that
// admits everything and writes nothing, and Snapshot().Off says so.
func Guard() *guard.Guard { return started }

// start starts the guard and its debug listener from the environment, and
// returns the listener's address (nil without one).
func start(log *slog.Logger) (*guard.Guard, net.Addr, error) {
	addr, serve := os.LookupEnv(EnvDebugAddr)
	public := false
	if v, ok := os.LookupEnv(EnvDebugPublic); ok {
		switch v {
		case "1":
			public = true
		case "0", "":
		default:
			return nil, nil, fmt.Errorf("oomguard: environment variable %s = %q: must be 1, 0 or empty; the guard is off", EnvDebugPublic, v)
		}
	}
	var lis net.Listener
	if serve {
		if err := checkAddr(addr, public); err != nil {
			return nil, nil, fmt.Errorf("oomguard: environment variable %s = %q: %v; the guard is off", EnvDebugAddr, addr, err)
		}
		var err error
		if lis, err = net.Listen("tcp", addr); err != nil {
			return nil, nil, fmt.Errorf("oomguard: environment variable %s = %q: %v; the guard is off", EnvDebugAddr, addr, err)
		}
	}
	cfg := guard.Config{Logger: log}
	if public {
		// The operator asked for it: the debug endpoint answers any client.
		cfg.DebugAuthorize = func(*http.Request) error { return nil }
	}
	g, err := guard.Start(context.Background(), cfg)
	if err != nil {
		if lis != nil {
			lis.Close()
		}
		return nil, nil, fmt.Errorf("%v; the guard is off", err)
	}
	if g.Snapshot().Off {
		if lis != nil {
			lis.Close()
		}
		return g, nil, nil
	}
	if lis == nil {
		return g, nil, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/guard/", http.StripPrefix("/debug/guard", g.DebugHandler()))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// It serves for the life of the process, as the guard runs.
	go srv.Serve(lis)
	log.Info("oomguard debug endpoint at http://"+lis.Addr().String()+"/debug/guard/", slog.String("component", "oomguard"))
	return g, lis.Addr(), nil
}

// checkAddr accepts host:port with a loopback host, or any host when public.
func checkAddr(addr string, public bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if public {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("not a loopback address: set " + EnvDebugPublic + "=1 to serve heap profiles to other hosts")
}
