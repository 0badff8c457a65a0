package grpcguard_test

import (
	"context"
	"log"

	"google.golang.org/grpc"
	"google.golang.org/grpc/orca"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/guard/grpcguard"
)

// A gRPC server sheds calls by priority under memory pressure; a client
// marks the calls that may be shed first.
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

	// On the client side: a prefetch that may wait. A client may lower
	// its priority; "critical" from a client counts as default unless the
	// server trusts its clients (see TrustClientPriority).
	ctx := grpcguard.WithPriority(context.Background(), guard.PrioritySheddable)
	_ = ctx // pass to the call
}

// A server whose clients are all trusted (for example, behind mutual TLS
// within one team's services) lets them mark calls that must not be shed.
func ExampleTrustClientPriority() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()

	srv := grpc.NewServer(
		grpc.UnaryInterceptor(grpcguard.UnaryServerInterceptor(g, grpcguard.TrustClientPriority())),
		grpc.StreamInterceptor(grpcguard.StreamServerInterceptor(g, grpcguard.TrustClientPriority())),
	)
	defer srv.Stop()

	// On the client side: a call this server admits even at Critical.
	ctx := grpcguard.WithPriority(context.Background(), guard.PriorityCritical)
	_ = ctx // pass to the call
}

// A server that knows which methods matter classifies calls itself; what
// clients send is ignored.
func ExampleWithClassifier() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()

	classify := func(ctx context.Context, fullMethod string) guard.Priority {
		switch fullMethod {
		case "/grpc.health.v1.Health/Check":
			return guard.PriorityCritical
		case "/shop.Catalog/Prefetch":
			return guard.PrioritySheddable
		}
		return guard.PriorityDefault
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(grpcguard.UnaryServerInterceptor(g, grpcguard.WithClassifier(classify))),
		grpc.StreamInterceptor(grpcguard.StreamServerInterceptor(g, grpcguard.WithClassifier(classify))),
	)
	defer srv.Stop()
}

// A fleet behind grpc-go's weighted_round_robin balancer steers calls to
// the servers with room before any must shed them: each server reports
// its guard's load on every call (ORCA's option first, the guard's
// interceptors chained inside it) and out of band.
func ExampleRecordLoad() {
	g, err := guard.Start(context.Background(), guard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()

	rec := orca.NewServerMetricsRecorder()
	stop := grpcguard.RecordLoad(g, rec)
	defer stop()
	srv := grpc.NewServer(
		orca.CallMetricsServerOption(rec),
		grpc.ChainUnaryInterceptor(grpcguard.UnaryServerInterceptor(g)),
		grpc.ChainStreamInterceptor(grpcguard.StreamServerInterceptor(g)),
	)
	defer srv.Stop()
	if err := orca.Register(srv, orca.ServiceOptions{ServerMetricsProvider: rec}); err != nil {
		log.Fatal(err)
	}

	// On the client side: weigh the servers by their per-call reports.
	_ = grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"weighted_round_robin": {}}]}`)
}
