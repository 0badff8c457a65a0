package guard

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestReserve(t *testing.T) {
	g := quietGuard(t, Config{})
	g.decide(bound(100, 100, 450<<20), LevelNormal, time.Now())
	ctx := context.Background()
	r1, err := g.Reserve(ctx, 400<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Reserve(ctx, 100<<20); !errors.Is(err, ErrNoHeadroom) {
		t.Fatalf("second reservation past the room: %v, want ErrNoHeadroom", err)
	}
	if _, err := g.Reserve(WithPriority(ctx, PriorityCritical), 100<<20); err != nil {
		t.Fatalf("critical reservation: %v, want it granted", err)
	}
	r1()
	r1() // harmless
	if n := g.Snapshot().Reserved; n != 100<<20 {
		t.Fatalf("reserved %d after release, want only the critical 100 MiB", n)
	}
	if _, err := g.Reserve(ctx, math.MaxInt64); !errors.Is(err, ErrNoHeadroom) {
		t.Fatalf("Reserve(MaxInt64) = %v, want ErrNoHeadroom", err)
	}
	if _, err := g.Reserve(ctx, -1); err == nil || !strings.Contains(err.Error(), "-1") {
		t.Errorf("negative reservation: %v, want an error naming -1", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.Reserve(cancelled, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Reserve on a cancelled context: %v", err)
	}
}
