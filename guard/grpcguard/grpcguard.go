// Package grpcguard applies a guard's load shedding to gRPC servers: unary
// and stream server interceptors that refuse calls under memory pressure
// with codes.ResourceExhausted and a retry pushback, as the HTTP middleware
// refuses requests with 503 and Retry-After.
//
// It is a package of its own so that only services that use gRPC link it.
package grpcguard

import (
	"context"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/oomguard/oomguard/guard"
)

// MetadataKey is the metadata key that carries a call's priority:
// "sheddable", "default" or "critical".
const MetadataKey = "oomguard-priority"

// PushbackKey is the trailer gRPC clients read as the delay before a retry
// (gRFC A6), in milliseconds.
const PushbackKey = "grpc-retry-pushback-ms"

// WithPriority returns a client context whose outgoing metadata marks the
// call's priority for a server that uses these interceptors.
func WithPriority(ctx context.Context, p guard.Priority) context.Context {
	return metadata.AppendToOutgoingContext(ctx, MetadataKey, p.String())
}

// Option configures the interceptors.
type Option func(*options)

type options struct {
	classify func(ctx context.Context, fullMethod string) guard.Priority
}

// WithClassifier gives each call its priority from its context and full
// method name ("/package.Service/Method") instead of the MetadataKey the
// client sent: for servers that must not let clients mark their own calls
// critical, or that know which methods matter.
func WithClassifier(f func(ctx context.Context, fullMethod string) guard.Priority) Option {
	return func(o *options) { o.classify = f }
}

func newOptions(opts []Option) options {
	o := options{classify: func(ctx context.Context, _ string) guard.Priority { return priority(ctx) }}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// priority reads the call's priority from incoming metadata, else from the
// context (an earlier interceptor may have set it), else Default. An
// unknown value counts as Default. Any client may send "critical": use
// WithClassifier where clients are not trusted.
func priority(ctx context.Context) guard.Priority {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(MetadataKey); len(v) > 0 {
			if p, err := guard.ParsePriority(v[0]); err == nil {
				return p
			}
			return guard.PriorityDefault
		}
	}
	return guard.PriorityFrom(ctx)
}

func shedError(g *guard.Guard) (metadata.MD, error) {
	ms := g.RetryAfter().Milliseconds()
	return metadata.Pairs(PushbackKey, strconv.FormatInt(ms, 10)),
		status.Errorf(codes.ResourceExhausted, "oomguard: call shed under memory pressure (level %s); retry after %dms", g.Level(), ms)
}

// UnaryServerInterceptor sheds unary calls by priority under memory
// pressure. Admitted Sheddable calls started above Normal get a context the
// guard cancels at Critical.
func UnaryServerInterceptor(g *guard.Guard, opts ...Option) grpc.UnaryServerInterceptor {
	o := newOptions(opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, t, ok := g.Enter(ctx, o.classify(ctx, info.FullMethod))
		if !ok {
			trailer, err := shedError(g)
			_ = grpc.SetTrailer(ctx, trailer)
			return nil, err
		}
		defer t.Done()
		return handler(ctx, req)
	}
}

// StreamServerInterceptor sheds streaming calls by priority under memory
// pressure, when the stream opens.
func StreamServerInterceptor(g *guard.Guard, opts ...Option) grpc.StreamServerInterceptor {
	o := newOptions(opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, t, ok := g.Enter(ss.Context(), o.classify(ss.Context(), info.FullMethod))
		if !ok {
			trailer, err := shedError(g)
			ss.SetTrailer(trailer)
			return err
		}
		defer t.Done()
		if ctx != ss.Context() {
			ss = &stream{ServerStream: ss, ctx: ctx}
		}
		return handler(srv, ss)
	}
}

// stream carries the cancellable context of an admitted Sheddable call.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }
