package grpcguard_test

import (
	"context"
	"net"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/guard/grpcguard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve starts a gRPC health server on loopback behind the guard's
// interceptors and returns a client.
func serve(t *testing.T, g *guard.Guard, opts ...grpcguard.Option) healthpb.HealthClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(grpcguard.UnaryServerInterceptor(g, opts...)),
		grpc.StreamInterceptor(grpcguard.StreamServerInterceptor(g, opts...)),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	return healthpb.NewHealthClient(conn)
}

func start(t *testing.T, limit int64) *guard.Guard {
	t.Helper()
	g, err := guard.Start(context.Background(), guard.Config{Limit: limit, MemoryLimitRatio: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop() })
	return g
}

// fill holds Critical work in flight until the guard admits no more
// Default work: the floor it keeps for Default work even at Critical.
func fill(t *testing.T, g *guard.Guard) {
	t.Helper()
	for i := 0; g.Admit(guard.PriorityDefault); i++ {
		if i > 1000 {
			t.Fatal("Default work still admitted with 1000 in flight past the limit")
		}
		_, tk, _ := g.Enter(context.Background(), guard.PriorityCritical)
		t.Cleanup(tk.Done)
	}
}

func TestShedsWithResourceExhausted(t *testing.T) {
	// A 1 MiB limit: the process alone puts the guard at Critical.
	g := start(t, 1<<20)
	if g.Level() != guard.LevelCritical {
		t.Fatalf("level %v, want critical", g.Level())
	}
	fill(t, g)
	client := serve(t, g)
	ctx := context.Background()

	for _, p := range []guard.Priority{guard.PrioritySheddable, guard.PriorityDefault} {
		var trailer metadata.MD
		_, err := client.Check(grpcguard.WithPriority(ctx, p), &healthpb.HealthCheckRequest{}, grpc.Trailer(&trailer))
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("%v call at Critical: %v, want ResourceExhausted", p, err)
		}
		if got := trailer.Get(grpcguard.PushbackKey); len(got) != 1 || got[0] != "1000" {
			t.Errorf("%v call: pushback trailer %v, want [1000]", p, got)
		}
	}
	// No metadata: Default, shed.
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("unmarked call at Critical: %v, want ResourceExhausted", err)
	}
	// A garbage priority counts as Default, not Critical.
	bad := metadata.AppendToOutgoingContext(ctx, grpcguard.MetadataKey, "super-critical")
	if _, err := client.Check(bad, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("call with an unknown priority at Critical: %v, want ResourceExhausted", err)
	}
	// Critical calls pass.
	if _, err := client.Check(grpcguard.WithPriority(ctx, guard.PriorityCritical), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("critical call at Critical: %v", err)
	}

	// Streams: shed when they open, with the same trailer.
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("stream at Critical: %v, want ResourceExhausted", err)
	}
	if got := stream.Trailer().Get(grpcguard.PushbackKey); len(got) != 1 {
		t.Errorf("stream pushback trailer %v", got)
	}
	if s := g.Snapshot().Shed; s.Sheddable != 1 || s.Default != 4 || s.Critical != 0 {
		t.Errorf("shed counts %+v, want 1 sheddable, 4 default, 0 critical", s)
	}
}

func TestAdmitsAtNormal(t *testing.T) {
	g := start(t, 1<<40)
	client := serve(t, g)
	ctx := context.Background()
	for _, p := range []guard.Priority{guard.PrioritySheddable, guard.PriorityDefault, guard.PriorityCritical} {
		if _, err := client.Check(grpcguard.WithPriority(ctx, p), &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("%v call at Normal: %v", p, err)
		}
	}
	stream, err := client.Watch(grpcguard.WithPriority(ctx, guard.PrioritySheddable), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Errorf("sheddable stream at Normal: %v", err)
	}
}

func TestClassifierOverridesMetadata(t *testing.T) {
	g := start(t, 1<<20) // Critical
	fill(t, g)
	client := serve(t, g, grpcguard.WithClassifier(func(ctx context.Context, method string) guard.Priority {
		if method == "/grpc.health.v1.Health/Check" {
			return guard.PriorityDefault // whatever the client says
		}
		return guard.PriorityCritical
	}))
	ctx := grpcguard.WithPriority(context.Background(), guard.PriorityCritical)
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("Check marked critical by the client, default by the server: %v, want ResourceExhausted", err)
	}
	stream, err := client.Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if err != nil {
		t.Errorf("Watch classified critical by the server: %v", err)
	}
}
