// Package grpcguard applies a guard's load shedding to gRPC servers: unary
// and stream server interceptors that refuse calls under memory pressure
// with codes.ResourceExhausted and a retry pushback, as the HTTP middleware
// refuses requests with 503 and Retry-After.
//
// A call's priority comes from the server: a classifier (WithClassifier),
// else what an earlier interceptor put in the context (guard.WithPriority),
// else Default. A client may lower it to Sheddable with the MetadataKey
// metadata, but not raise it, unless the server trusts its clients
// (TrustClientPriority).
//
// # Load reports
//
// A balancer that knows how loaded each server is can send calls where
// there is room before a guard must refuse them. The interceptors report
// the guard's load (guard.Load) on every call, refused calls included, as
// an ORCA load report in the call's trailer, when the server has ORCA's
// per-call option; RecordLoad keeps a recorder current for out-of-band
// reports. ORCA's option must come first, so that its interceptors run
// outside the guard's, and the guard's must be chained
// (grpc.ChainUnaryInterceptor): grpc.UnaryInterceptor would run before
// every chained one, outside ORCA's.
//
//	rec := orca.NewServerMetricsRecorder()
//	defer grpcguard.RecordLoad(g, rec)()
//	srv := grpc.NewServer(
//		orca.CallMetricsServerOption(rec),
//		grpc.ChainUnaryInterceptor(grpcguard.UnaryServerInterceptor(g)),
//		grpc.ChainStreamInterceptor(grpcguard.StreamServerInterceptor(g)),
//	)
//	orca.Register(srv, orca.ServiceOptions{ServerMetricsProvider: rec})
//
// Without ORCA's option the interceptors report nothing, at the cost of
// one context lookup a call. ORCA's out-of-band stream is Critical, whatever
// the classifier says: the report is what steers work away from a server
// under pressure.
//
// A client with grpc-go's weighted_round_robin balancer weighs each server
// qps / (application_utilization + eps/qps × errorUtilizationPenalty). The
// guard's utilization grows with the work in flight, so the weight is the
// calls a server has room for over the time each takes, the rate it can
// sustain, whatever the load: a server with less room (a cache of its own,
// a smaller limit) or slower calls gets fewer calls, one that refuses
// fewer still, and a lightly loaded one the weight it has when busy. The
// balancer ignores reports with qps or utilization 0, such as an idle
// server's, and keeps the last weight. Per-call reports follow the load;
// out-of-band ones come every 30 seconds at most in grpc-go, too seldom to
// steer a burst.
//
// It is a package of its own so that only services that use gRPC link it.
package grpcguard

import (
	"context"
	"strconv"

	v3orcaservice "github.com/cncf/xds/go/xds/service/orca/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/oomguard/oomguard/guard"
)

// MetadataKey is the metadata key that carries a call's priority:
// "sheddable", "default" or "critical". By default a client may only lower
// its priority with it; "critical" counts as Default unless the server
// opts in with TrustClientPriority.
const MetadataKey = "oomguard-priority"

// PushbackKey is the trailer gRPC clients read as the delay before a retry
// (gRFC A6), in milliseconds.
const PushbackKey = "grpc-retry-pushback-ms"

// WithPriority returns a client context whose outgoing metadata marks the
// call's priority for a server that uses these interceptors. Sheddable is
// always honoured; Critical only by a server that trusts its clients
// (TrustClientPriority).
func WithPriority(ctx context.Context, p guard.Priority) context.Context {
	return metadata.AppendToOutgoingContext(ctx, MetadataKey, p.String())
}

// Option configures the interceptors.
type Option func(*options)

type options struct {
	classify func(ctx context.Context, fullMethod string) guard.Priority
	trust    bool
}

// WithClassifier gives each call its priority from its context and full
// method name ("/package.Service/Method"); the MetadataKey the client sent
// is ignored. For servers that know which methods matter. ORCA's
// out-of-band stream is Critical all the same.
func WithClassifier(f func(ctx context.Context, fullMethod string) guard.Priority) Option {
	return func(o *options) { o.classify = f }
}

// TrustClientPriority lets a client raise its own calls to Critical, never
// shed, with MetadataKey. Without it, a client may only lower its priority
// (to Sheddable): "critical" from the wire counts as Default, because any
// client that could send it would otherwise never be shed, and one client's
// flood would take the memory that shedding keeps for the rest. Use it only
// where every client that reaches the server is trusted, such as a server
// behind mutual TLS within one team's services. WithClassifier, if also
// given, wins.
func TrustClientPriority() Option {
	return func(o *options) { o.trust = true }
}

func newOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.classify == nil {
		trust := o.trust
		o.classify = func(ctx context.Context, _ string) guard.Priority { return priority(ctx, trust) }
	}
	classify := o.classify
	o.classify = func(ctx context.Context, fullMethod string) guard.Priority {
		if fullMethod == v3orcaservice.OpenRcaService_StreamCoreMetrics_FullMethodName {
			return guard.PriorityCritical
		}
		return classify(ctx, fullMethod)
	}
	return o
}

// priority is the call's priority: the one the context carries (an earlier
// interceptor may have set it), else Default, lowered by the client's
// MetadataKey. With trust, the client's value replaces it instead, so that
// a client may also raise it. An unknown value counts as Default.
func priority(ctx context.Context, trust bool) guard.Priority {
	p := guard.PriorityFrom(ctx)
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return p
	}
	v := md.Get(MetadataKey)
	if len(v) == 0 {
		return p
	}
	sent, err := guard.ParsePriority(v[0])
	if err != nil {
		sent = guard.PriorityDefault
	}
	if trust || sent < p {
		return sent
	}
	return p
}

func shedError(g *guard.Guard) (metadata.MD, error) {
	ms := g.RetryAfter().Milliseconds()
	return metadata.Pairs(PushbackKey, strconv.FormatInt(ms, 10)),
		status.Errorf(codes.ResourceExhausted, "oomguard: call shed under memory pressure (level %s); retry after %dms", g.Level(), ms)
}

// UnaryServerInterceptor sheds unary calls by priority under memory
// pressure. Admitted Sheddable calls started above Normal get a context the
// guard cancels at Critical. Where the server has ORCA's per-call option,
// every call's trailer reports the guard's load, as of the call's end or
// refusal (see the package documentation).
func UnaryServerInterceptor(g *guard.Guard, opts ...Option) grpc.UnaryServerInterceptor {
	o := newOptions(opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, t, ok := g.Enter(ctx, o.classify(ctx, info.FullMethod))
		if !ok {
			trailer, err := shedError(g)
			_ = grpc.SetTrailer(ctx, trailer)
			reportCall(ctx, g)
			return nil, err
		}
		defer t.Done()
		resp, err := handler(ctx, req)
		reportCall(ctx, g)
		return resp, err
	}
}

// StreamServerInterceptor sheds streaming calls by priority under memory
// pressure, when the stream opens. Where the server has ORCA's per-call
// option, every stream's trailer reports the guard's load, as
// UnaryServerInterceptor's do.
func StreamServerInterceptor(g *guard.Guard, opts ...Option) grpc.StreamServerInterceptor {
	o := newOptions(opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, t, ok := g.Enter(ss.Context(), o.classify(ss.Context(), info.FullMethod))
		if !ok {
			trailer, err := shedError(g)
			ss.SetTrailer(trailer)
			reportCall(ctx, g)
			return err
		}
		defer t.Done()
		if ctx != ss.Context() {
			ss = &stream{ServerStream: ss, ctx: ctx}
		}
		err := handler(srv, ss)
		reportCall(ctx, g)
		return err
	}
}

// stream carries the cancellable context of an admitted Sheddable call.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }
