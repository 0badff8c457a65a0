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

// TestClientCannotRaisePriority: under the default interceptors a call the
// client marks critical is a Default call, shed at Critical; with
// TrustClientPriority it is admitted.
func TestClientCannotRaisePriority(t *testing.T) {
	g := start(t, 1<<20) // Critical
	fill(t, g)
	ctx := grpcguard.WithPriority(context.Background(), guard.PriorityCritical)

	client := serve(t, g)
	var trailer metadata.MD
	_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Trailer(&trailer))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("call marked critical by the client, default interceptors: %v, want ResourceExhausted", err)
	}
	if got := trailer.Get(grpcguard.PushbackKey); len(got) != 1 {
		t.Errorf("pushback trailer %v", got)
	}
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("stream marked critical by the client, default interceptors: %v, want ResourceExhausted", err)
	}
	if s := g.Snapshot().Shed; s.Default != 2 || s.Critical != 0 {
		t.Errorf("shed counts %+v, want the two calls counted as default", s)
	}

	trusting := serve(t, g, grpcguard.TrustClientPriority())
	if _, err := trusting.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("call marked critical, TrustClientPriority: %v, want admitted", err)
	}
	stream, err = trusting.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if err != nil {
		t.Errorf("stream marked critical, TrustClientPriority: %v, want admitted", err)
	}
	// Trust does not make unmarked or unknown calls critical.
	if _, err := trusting.Check(context.Background(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("unmarked call, TrustClientPriority: %v, want ResourceExhausted", err)
	}
	bad := metadata.AppendToOutgoingContext(context.Background(), grpcguard.MetadataKey, "Critical")
	if _, err := trusting.Check(bad, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("call marked %q, TrustClientPriority: %v, want ResourceExhausted", "Critical", err)
	}
}

// TestClientMayLowerPriority: a priority set in code by an earlier
// interceptor stands against a client's "critical", and a client's
// "sheddable" lowers it.
func TestClientMayLowerPriority(t *testing.T) {
	g := start(t, 1<<20) // Critical
	fill(t, g)           // only Critical calls pass
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The server marks every call critical before the guard sees it.
	markCritical := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(guard.WithPriority(ctx, guard.PriorityCritical), req)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(markCritical, grpcguard.UnaryServerInterceptor(g)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	client := healthpb.NewHealthClient(conn)

	ctx := context.Background()
	for _, tt := range []struct {
		sent  []string // MetadataKey values, none for an unmarked call
		admit bool
	}{
		{nil, true},
		{[]string{"critical"}, true},
		{[]string{"default"}, false},
		{[]string{"sheddable"}, false},
		{[]string{"sheddable", "critical"}, false}, // the first value counts
	} {
		c := ctx
		for _, v := range tt.sent {
			c = metadata.AppendToOutgoingContext(c, grpcguard.MetadataKey, v)
		}
		_, err := client.Check(c, &healthpb.HealthCheckRequest{})
		if admitted := err == nil; admitted != tt.admit {
			t.Errorf("server-critical call marked %q: %v, want admitted=%v", tt.sent, err, tt.admit)
		}
	}
	if s := g.Snapshot().Shed; s.Sheddable != 2 || s.Default != 1 {
		t.Errorf("shed counts %+v, want 2 sheddable, 1 default", s)
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
