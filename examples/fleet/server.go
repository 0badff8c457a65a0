package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/orca"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/guard/grpcguard"
)

// serverOptions shape one server of the fleet.
type serverOptions struct {
	cacheBytes int64         // live cache held from start-up
	callBytes  int64         // bytes each call allocates and touches
	hold       time.Duration // how long each call holds them
}

// serve runs one guarded gRPC server on loopback until SIGTERM: the guard
// reads its cgroup's limit, ORCA's per-call option comes first and the
// guard's interceptor inside it, so that every answer, a refusal too,
// carries the guard's load report. Its first line on stdout is
// "listening ADDR".
func serve(o serverOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, err := guard.Start(ctx, guard.Config{Logger: logger})
	if err != nil {
		return err
	}
	defer g.Stop()
	cache := touched(o.cacheBytes)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := grpc.NewServer(
		orca.CallMetricsServerOption(nil),
		grpc.ChainUnaryInterceptor(grpcguard.UnaryServerInterceptor(g)),
	)
	testgrpc.RegisterTestServiceServer(srv, &worker{o: o})
	fmt.Printf("listening %s\n", lis.Addr())
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	err = srv.Serve(lis)
	runtime.KeepAlive(cache)
	return err
}

// worker answers UnaryCall as a handler that decodes a payload and waits
// on a slow downstream call: it holds callBytes for hold.
type worker struct {
	testgrpc.UnimplementedTestServiceServer
	o serverOptions
}

func (w *worker) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	buf := touched(w.o.callBytes)
	select {
	case <-time.After(w.o.hold):
	case <-ctx.Done():
	}
	runtime.KeepAlive(buf)
	return &testgrpc.SimpleResponse{}, ctx.Err()
}

// touched allocates n bytes and writes every page, so that they count
// against the cgroup's limit at once.
func touched(n int64) []byte {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return b
}
