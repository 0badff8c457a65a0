package grpcguard_test

import (
	"context"
	"net"
	"testing"
	"time"

	v3orcapb "github.com/cncf/xds/go/xds/data/orca/v3"
	v3orcaservice "github.com/cncf/xds/go/xds/service/orca/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/orca"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/guard/grpcguard"
)

// orcaTrailer is the trailer key of a per-call ORCA load report.
const orcaTrailer = "endpoint-load-metrics-bin"

// serveORCA starts a gRPC server on loopback as the package documentation
// says to: ORCA's per-call option first, the guard's interceptors chained
// inside it, and ORCA's out-of-band service on rec. It returns a client
// connection.
func serveORCA(t *testing.T, g *guard.Guard, rec orca.ServerMetricsRecorder) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		orca.CallMetricsServerOption(rec),
		grpc.ChainUnaryInterceptor(grpcguard.UnaryServerInterceptor(g)),
		grpc.ChainStreamInterceptor(grpcguard.StreamServerInterceptor(g)),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	if rec != nil {
		if err := orca.Register(srv, orca.ServiceOptions{ServerMetricsProvider: rec}); err != nil {
			t.Fatal(err)
		}
	}
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	return conn
}

// loadReport decodes the ORCA load report in a call's trailer; nil when
// there is none.
func loadReport(t *testing.T, trailer metadata.MD) *v3orcapb.OrcaLoadReport {
	t.Helper()
	v := trailer.Get(orcaTrailer)
	if len(v) == 0 {
		return nil
	}
	r := new(v3orcapb.OrcaLoadReport)
	if err := proto.Unmarshal([]byte(v[0]), r); err != nil {
		t.Fatalf("%s: %v", orcaTrailer, err)
	}
	return r
}

// waitLoad waits up to 10s for the guard's load to satisfy ok.
func waitLoad(t *testing.T, g *guard.Guard, what string, ok func(guard.Load) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(g.Load()); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("load %+v: not %s within 10s", g.Load(), what)
		}
	}
}

// critical is a guard at Critical with Default work past its bound and
// calls refused: a 1 MiB limit, which the process alone is past, and
// Critical work held in flight.
func critical(t *testing.T) *guard.Guard {
	t.Helper()
	g := start(t, 1<<20)
	fill(t, g)
	for range 3 {
		if _, _, ok := g.Enter(context.Background(), guard.PriorityDefault); ok {
			t.Fatal("Default work admitted at Critical past the bound")
		}
	}
	// The sampler reads every few milliseconds while work is in flight.
	waitLoad(t, g, "full and refusing", func(l guard.Load) bool { return l.Utilization > 1 && l.Refused > 0 && l.Admitted > 0 })
	return g
}

// checkFull checks a report of a guard past its bounds at a 1 MiB limit:
// memory at the limit, more work in flight than its bound, calls admitted
// and refused.
func checkFull(t *testing.T, what string, r *v3orcapb.OrcaLoadReport) {
	t.Helper()
	if r == nil {
		t.Fatalf("%s: no load report", what)
	}
	if r.MemUtilization != 1 || r.ApplicationUtilization <= 1 || r.RpsFractional <= 0 || r.Eps <= 0 || r.CpuUtilization != 0 {
		t.Errorf("%s: report %v, want mem_utilization 1, application_utilization past 1, qps and eps above 0, no cpu_utilization", what, r)
	}
}

// TestRefusedCallsReportLoad: a refused call's trailer, unary and
// streaming, carries the load report beside the retry pushback.
func TestRefusedCallsReportLoad(t *testing.T) {
	g := critical(t)
	client := healthpb.NewHealthClient(serveORCA(t, g, nil))
	ctx := context.Background()

	var trailer metadata.MD
	_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Trailer(&trailer))
	if status.Code(err) != codes.ResourceExhausted || len(trailer.Get(grpcguard.PushbackKey)) != 1 {
		t.Fatalf("call at Critical: %v, trailer %v; want ResourceExhausted with a pushback", err, trailer)
	}
	checkFull(t, "refused unary call", loadReport(t, trailer))

	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("stream at Critical: %v, want ResourceExhausted", err)
	}
	checkFull(t, "refused stream", loadReport(t, stream.Trailer()))
}

// TestAdmittedCallsReportLoad: an admitted call's trailer carries the
// guard's load as of its end; values the handler set itself win.
func TestAdmittedCallsReportLoad(t *testing.T) {
	g := start(t, 1<<40)
	ctx := context.Background()
	client := healthpb.NewHealthClient(serveORCA(t, g, nil))
	// Enough calls for the sampler to see them admitted.
	var r *v3orcapb.OrcaLoadReport
	for deadline := time.Now().Add(10 * time.Second); r == nil || r.RpsFractional == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no call's report counts calls admitted within 10s; last %v", r)
		}
		var trailer metadata.MD
		if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Trailer(&trailer)); err != nil {
			t.Fatal(err)
		}
		if r = loadReport(t, trailer); r == nil {
			t.Fatal("admitted call: no load report")
		}
	}
	if want := g.Load().MemoryUtilization; r.MemUtilization <= 0 || r.MemUtilization > 1 || r.Eps != 0 {
		t.Errorf("report %v at a 1 TiB limit: want mem_utilization in (0, 1] (the guard says %v) and no eps", r, want)
	}

	// A handler's own application utilization is kept.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		orca.CallMetricsServerOption(nil),
		grpc.ChainUnaryInterceptor(grpcguard.UnaryServerInterceptor(g)),
	)
	healthpb.RegisterHealthServer(srv, ownUtilization{})
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var trailer metadata.MD
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Trailer(&trailer)); err != nil {
		t.Fatal(err)
	}
	if r := loadReport(t, trailer); r == nil || r.ApplicationUtilization != 0.75 || r.MemUtilization <= 0 {
		t.Errorf("handler that sets application_utilization 0.75: report %v, want its value and the guard's memory", r)
	}
}

// ownUtilization is a health server whose Check reports its own
// application utilization.
type ownUtilization struct {
	healthpb.UnimplementedHealthServer
}

func (ownUtilization) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	orca.CallMetricsRecorderFromContext(ctx).SetApplicationUtilization(0.75)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// TestNoReportWithoutORCA: without ORCA's option no trailer carries a
// report, on refused calls or admitted ones.
func TestNoReportWithoutORCA(t *testing.T) {
	g := critical(t)
	client := serve(t, g)
	var trailer metadata.MD
	_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.Trailer(&trailer))
	if status.Code(err) != codes.ResourceExhausted || len(trailer.Get(orcaTrailer)) != 0 {
		t.Errorf("refused call without ORCA: %v, trailer %v; want no load report", err, trailer)
	}
	_, err = client.Check(grpcguard.WithPriority(context.Background(), guard.PriorityCritical), &healthpb.HealthCheckRequest{}, grpc.Trailer(&trailer))
	if len(trailer.Get(orcaTrailer)) != 0 {
		t.Errorf("call without ORCA: %v, trailer %v; want no load report", err, trailer)
	}
}

// TestRecordLoadOutOfBand: RecordLoad's recorder, registered as ORCA's
// out-of-band service, streams the guard's load; stop removes it and ends
// the goroutine (TestMain checks that none is left).
func TestRecordLoadOutOfBand(t *testing.T) {
	g := critical(t)
	rec := orca.NewServerMetricsRecorder()
	stop := grpcguard.RecordLoad(g, rec)
	defer stop()
	conn := serveORCA(t, g, rec)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := v3orcaservice.NewOpenRcaServiceClient(conn).StreamCoreMetrics(ctx, &v3orcaservice.OrcaLoadReportRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	checkFull(t, "out-of-band report", r)

	stop()
	stop() // harmless
	if m := rec.ServerMetrics(); m.AppUtilization != -1 || m.MemUtilization != -1 || m.QPS != -1 || m.EPS != -1 {
		t.Errorf("after stop: recorder holds %+v, want the guard's values removed", m)
	}

	// A stopped guard's load is removed as well.
	stop = grpcguard.RecordLoad(g, rec)
	if m := rec.ServerMetrics(); m.MemUtilization != 1 {
		t.Errorf("recording a guard at Critical: %+v, want mem_utilization 1", m)
	}
	g.Stop()
	stop()
	stop = grpcguard.RecordLoad(g, rec)
	defer stop()
	if m := rec.ServerMetrics(); m.AppUtilization != -1 || m.MemUtilization != -1 {
		t.Errorf("recording a stopped guard: %+v, want nothing", m)
	}
	grpcguard.RecordLoad(nil, rec)()
	grpcguard.RecordLoad(g, nil)()
}
