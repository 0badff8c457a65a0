package grpcguard

import (
	"context"
	"testing"

	v3orcaservice "github.com/cncf/xds/go/xds/service/orca/v3"
	"google.golang.org/grpc/metadata"

	"github.com/oomguard/oomguard/guard"
)

// FuzzMetadataPriority gives the interceptors' classification any
// oomguard-priority metadata a client could send. Without
// TrustClientPriority the metadata may lower the priority the server gave
// the call but never raise it; with it, the first value decides; a
// classifier ignores it. Nothing panics.
func FuzzMetadataPriority(f *testing.F) {
	for _, v := range []string{"critical", "sheddable", "default", "", "Critical", "super-critical", "critical\x00"} {
		f.Add(v, "critical", uint8(1), int8(0), false, false)
		f.Add(v, "critical", uint8(2), int8(1), true, false)
		f.Add(v, "sheddable", uint8(1), int8(-1), false, true)
	}
	f.Add("sheddable", "critical", uint8(2), int8(1), false, false)
	f.Add("", "", uint8(0), int8(1), false, false)
	f.Add("critical", "", uint8(1), int8(-128), true, false)

	const method = "/grpc.health.v1.Health/Check"
	classifier := func(ctx context.Context, fullMethod string) guard.Priority {
		if fullMethod != method {
			return guard.PriorityCritical
		}
		return guard.PrioritySheddable
	}
	untrusted, trusting := newOptions(nil), newOptions([]Option{TrustClientPriority()})
	classified := newOptions([]Option{TrustClientPriority(), WithClassifier(classifier)})
	f.Fuzz(func(t *testing.T, first, second string, count uint8, server int8, trust, classify bool) {
		var values []string
		switch count % 3 {
		case 1:
			values = []string{first}
		case 2:
			values = []string{first, second}
		}
		ctx := guard.WithPriority(context.Background(), guard.Priority(server))
		if len(values) > 0 {
			ctx = metadata.NewIncomingContext(ctx, metadata.MD{MetadataKey: values})
		}
		o := untrusted
		switch {
		case classify:
			o = classified
		case trust:
			o = trusting
		}
		got := o.classify(ctx, method)

		want := guard.Priority(server)
		if len(values) > 0 {
			sent, err := guard.ParsePriority(values[0])
			if err != nil {
				sent = guard.PriorityDefault
			}
			if trust || sent < want {
				want = sent
			}
		}
		if classify {
			want = guard.PrioritySheddable
		}
		if got != want {
			t.Fatalf("server priority %d, metadata %q, trust %v, classifier %v: %v, want %v", server, values, trust, classify, got, want)
		}
		if !trust && !classify && got > guard.Priority(server) {
			t.Fatalf("server priority %d raised to %v by metadata %q", server, got, values)
		}
	})
}

// TestORCAStreamIsCritical: ORCA's out-of-band stream is never shed,
// whatever the classifier or the client says.
func TestORCAStreamIsCritical(t *testing.T) {
	sheddable := func(context.Context, string) guard.Priority { return guard.PrioritySheddable }
	ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{MetadataKey: {"sheddable"}})
	for _, o := range []options{newOptions(nil), newOptions([]Option{WithClassifier(sheddable)})} {
		if p := o.classify(ctx, v3orcaservice.OpenRcaService_StreamCoreMetrics_FullMethodName); p != guard.PriorityCritical {
			t.Errorf("ORCA's stream: %v, want critical", p)
		}
	}
}

// TestReportWithoutORCAIsFree: without ORCA's option, the report costs a
// context lookup and allocates nothing.
func TestReportWithoutORCAIsFree(t *testing.T) {
	g, err := guard.Start(context.Background(), guard.Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	ctx := callContext()
	if n := testing.AllocsPerRun(100, func() { reportCall(ctx, g) }); n != 0 {
		t.Errorf("report without ORCA: %v allocations, want 0", n)
	}
}

// callContext is a context as deep as a gRPC server call's, without ORCA.
func callContext() context.Context {
	type key int
	ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{"a": {"b"}})
	for i := range 8 {
		ctx = context.WithValue(ctx, key(i), i)
	}
	return ctx
}

func BenchmarkReportWithoutORCA(b *testing.B) {
	g, err := guard.Start(context.Background(), guard.Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Stop()
	ctx := callContext()
	b.ReportAllocs()
	for b.Loop() {
		reportCall(ctx, g)
	}
}
