package grpcguard

import (
	"context"
	"testing"

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
