package grpcguard_test

import (
	"context"
	"log"

	"google.golang.org/grpc"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/guard/grpcguard"
)

// A gRPC server sheds calls by priority under memory pressure; a client
// marks the calls that must not be shed.
func Example() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()

	srv := grpc.NewServer(
		grpc.UnaryInterceptor(grpcguard.UnaryServerInterceptor(g)),
		grpc.StreamInterceptor(grpcguard.StreamServerInterceptor(g)),
	)
	defer srv.Stop()

	// On the client side:
	ctx := grpcguard.WithPriority(context.Background(), guard.PriorityCritical)
	_ = ctx // pass to the call
}
