package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/balancer/weightedroundrobin" // registers weighted_round_robin
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

// The balancers compared, as gRPC service configs. weighted_round_robin
// reads the per-call ORCA reports in the answers' trailers; its blackout,
// the time a fresh weight waits before it counts, is shortened from 10 s to
// one second so that a short run measures the weighted fleet and not
// its start, and weights refresh four times a second.
var serviceConfigs = map[string]string{
	"round_robin":          `{"loadBalancingConfig": [{"round_robin": {}}]}`,
	"weighted_round_robin": `{"loadBalancingConfig": [{"weighted_round_robin": {"blackoutPeriod": "1s", "weightUpdatePeriod": "0.25s"}}]}`,
}

// tally counts the calls of one run, by server address.
type tally struct {
	mu       sync.Mutex
	sent     int
	served   map[string]int
	refused  map[string]int
	failed   int
	firstErr error
}

func newTally() *tally {
	return &tally{served: map[string]int{}, refused: map[string]int{}}
}

func (t *tally) add(addr string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	switch status.Code(err) {
	case codes.OK:
		t.served[addr]++
	case codes.ResourceExhausted:
		t.refused[addr]++
	default:
		t.failed++
		if t.firstErr == nil {
			t.firstErr = err
		}
	}
}

// load calls the fleet at rate calls a second, open loop, for d, through
// one client connection with the named balancer, and counts what came
// back. Each call has deadline to answer.
func load(ctx context.Context, addrs []string, balancer string, rate int, d, deadline time.Duration) (*tally, error) {
	r := manual.NewBuilderWithScheme("fleet")
	state := resolver.State{}
	for _, a := range addrs {
		state.Endpoints = append(state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	r.InitialState(state)
	conn, err := grpc.NewClient("fleet:///servers",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfigs[balancer]),
	)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)

	t := newTally()
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; ; i++ {
		next := start.Add(time.Duration(i) * interval)
		if next.Sub(start) >= d {
			break
		}
		if wait := time.Until(next); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				wg.Wait()
				return t, ctx.Err()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			var p peer.Peer
			_, err := client.UnaryCall(cctx, &testgrpc.SimpleRequest{}, grpc.Peer(&p))
			addr := ""
			if p.Addr != nil {
				addr = p.Addr.String()
			}
			t.add(addr, err)
		}()
	}
	wg.Wait()
	if t.failed > t.sent/100 {
		return t, fmt.Errorf("%d of %d calls failed other than by a refusal; the first: %v", t.failed, t.sent, t.firstErr)
	}
	return t, nil
}
