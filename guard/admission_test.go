package guard

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/admission"
	"github.com/oomguard/oomguard/internal/latency"
)

// decide publishes decision d and level l as the sampler would, and runs
// the Critical level's actions when l is Critical.
func (g *Guard) decide(d admission.Decision, l Level, now time.Time) {
	g.publishBounds(d, latency.Decision{})
	s := *g.snap.Load()
	s.Level, s.Time, s.InFlightLimit = l, now, d.Limit
	g.snap.Store(&s)
	g.level.Store(int32(l))
	if l >= LevelCritical {
		g.sampler.shed.atCritical(g, now)
	}
}

// bound is a decision that admits n units of Default work and s of
// Sheddable work, and room bytes of declared work.
func bound(n, s, room int64) admission.Decision {
	return admission.Decision{Limit: n, SheddableLimit: s, Room: room, SheddableRoom: room}
}

func TestEnterCountsFromTheFirstRequest(t *testing.T) {
	g := quietGuard(t, Config{})
	_, tk, ok := g.Enter(context.Background(), PriorityDefault)
	if !ok {
		t.Fatal("first request shed")
	}
	if s := g.Snapshot(); s.InFlight != 1 || s.Admitted != 1 {
		t.Errorf("at Normal: in flight %d, admitted %d; want 1 and 1", s.InFlight, s.Admitted)
	}
	tk.Done()
	if n := g.Snapshot().InFlight; n != 0 {
		t.Errorf("in flight after Done = %d, want 0", n)
	}
}

func TestBoundsByPriority(t *testing.T) {
	g := quietGuard(t, Config{})
	g.decide(bound(10, 4, 1<<30), LevelNormal, time.Now())
	var tickets []Ticket
	defer func() {
		for _, tk := range tickets {
			tk.Done()
		}
	}()
	enter := func(p Priority) bool {
		_, tk, ok := g.Enter(context.Background(), p)
		if ok {
			tickets = append(tickets, tk)
		}
		return ok
	}
	for i := 0; i < 4; i++ {
		if !enter(PrioritySheddable) {
			t.Fatalf("sheddable %d of 4 shed", i+1)
		}
	}
	if enter(PrioritySheddable) || g.Admit(PrioritySheddable) {
		t.Error("fifth sheddable admitted past its bound of 4")
	}
	for i := 0; i < 6; i++ {
		if !enter(PriorityDefault) {
			t.Fatalf("default request %d shed with %d in flight, bound 10", i+1, g.inFlight())
		}
	}
	if enter(PriorityDefault) || g.Admit(PriorityDefault) {
		t.Error("default admitted past its bound of 10")
	}
	for i := 0; i < 100; i++ {
		if !enter(PriorityCritical) {
			t.Fatal("critical work shed")
		}
	}
	s := g.Snapshot()
	if s.InFlight != 110 || s.Shed.Sheddable != 1 || s.Shed.Default != 1 || s.Shed.Critical != 0 {
		t.Errorf("in flight %d, shed %+v; want 110 in flight, one sheddable and one default shed", s.InFlight, s.Shed)
	}
}

// TestPolicyThroughTheGuard: the hot path's counters reach the policy, and
// its decision reaches the hot path.
func TestPolicyThroughTheGuard(t *testing.T) {
	g := quietGuard(t, Config{Limit: 1 << 30})
	now := time.Now()
	feed := func() admission.Reading {
		r := admission.Reading{Now: now, LimitBytes: 1 << 30, Usage: 100 << 20, Fresh: true}
		g.workReading(&r)
		g.sampler.shed.apply(g, r, latency.Reading{Now: now, CPUs: 2})
		return r
	}
	feed()
	var tickets []Ticket
	for g.Admit(PriorityDefault) {
		_, tk, _ := g.Enter(context.Background(), PriorityDefault)
		tickets = append(tickets, tk)
		if len(tickets) > 1000 {
			t.Fatal("no bound from idle")
		}
	}
	if w := g.sampler.shed.policy.Config().InitialWindow; int64(len(tickets)) != w {
		t.Errorf("admitted %d from idle, want the initial window %d", len(tickets), w)
	}
	g.Enter(context.Background(), PriorityDefault) // refused: counted
	now = now.Add(10 * time.Millisecond)
	if r := feed(); r.InFlight() != int64(len(tickets)) || r.Refusals == 0 {
		t.Errorf("reading in flight %d, refusals %d; want %d and the refusal counted", r.InFlight(), r.Refusals, len(tickets))
	}
	for _, tk := range tickets {
		tk.Done()
	}
}

func TestDeclaredBytes(t *testing.T) {
	g := quietGuard(t, Config{})
	g.decide(bound(100, 100, 100<<20), LevelNormal, time.Now())
	ctx := context.Background()
	_, big, ok := g.EnterBytes(ctx, PriorityDefault, 80<<20)
	if !ok {
		t.Fatal("80 MiB refused in 100 MiB of room")
	}
	if _, _, ok := g.EnterBytes(ctx, PriorityDefault, 30<<20); ok {
		t.Error("30 MiB admitted with 20 MiB of room left")
	}
	if _, tk, ok := g.EnterBytes(ctx, PriorityCritical, 30<<20); !ok {
		t.Error("critical work refused for its bytes")
	} else {
		tk.Done()
	}
	big.Done()
	big.Done()
	if s := g.Snapshot(); s.Reserved != 0 || s.InFlight != 0 {
		t.Errorf("after Done: declared %d, in flight %d; want 0 and 0", s.Reserved, s.InFlight)
	}
	if _, _, ok := g.EnterBytes(ctx, PriorityDefault, math.MaxInt64); ok {
		t.Error("MaxInt64 bytes admitted")
	}
	if got := g.declaredTotal.Load(); got != 110<<20 {
		t.Errorf("declared bytes admitted %d, want %d", got, 110<<20)
	}
}

// TestLargeReserve: small declared requests leave the large reserve free,
// so that a large request refused once gets in.
func TestLargeReserve(t *testing.T) {
	g := quietGuard(t, Config{})
	ctx := context.Background()
	g.decide(bound(100, 100, 100<<20), LevelNormal, time.Now())
	_, first, _ := g.EnterBytes(ctx, PriorityDefault, 60<<20)
	if _, _, ok := g.EnterBytes(ctx, PriorityDefault, 50<<20); ok {
		t.Fatal("50 MiB admitted with 40 MiB of room")
	}
	if w := g.largeWaiting.Load(); w != 50<<20 {
		t.Fatalf("largest waiting %d, want %d", w, 50<<20)
	}
	first.Done()
	d := bound(100, 100, 100<<20)
	d.LargeReserve, d.LargeSize = 50<<20, 25<<20
	g.decide(d, LevelNormal, time.Now())
	// fill admits small requests of 20 MiB until one is refused.
	fill := func() []Ticket {
		var small []Ticket
		for {
			_, tk, ok := g.EnterBytes(ctx, PriorityDefault, 20<<20)
			if !ok {
				return small
			}
			small = append(small, tk)
		}
	}
	done := func(ts []Ticket) {
		for _, tk := range ts {
			tk.Done()
		}
	}
	small := fill()
	if len(small) != 2 {
		t.Errorf("%d small requests of 20 MiB admitted, want 2: they must leave 50 of 100 MiB", len(small))
	}
	_, large, ok := g.EnterBytes(ctx, PriorityDefault, 50<<20)
	if !ok {
		t.Error("the large request was refused with its reserve free")
	}
	large.Done()
	done(small)

	// A large request in flight uses the reserve: small ones leave free
	// only the rest of it, 20 of 50 MiB with 30 MiB in flight.
	_, large, ok = g.EnterBytes(ctx, PriorityDefault, 30<<20)
	if !ok {
		t.Fatal("a 30 MiB request, past the large size, was refused with 100 MiB free")
	}
	small = fill()
	if len(small) != 2 {
		t.Errorf("%d small requests of 20 MiB admitted beside a large one of 30, want 2: 30 + 40 + the reserve's free 20 fill 100 MiB", len(small))
	}
	large.Done()
	done(small)
	if d := g.largeDeclared.Load(); d != 0 {
		t.Errorf("large declared bytes in flight %d after all ended, want 0", d)
	}
}

func TestTicketDoneTwice(t *testing.T) {
	g := quietGuard(t, Config{})
	_, tk, ok := g.Enter(context.Background(), PriorityDefault)
	if !ok {
		t.Fatal("shed")
	}
	copied := tk
	tk.Done()
	tk.Done()
	copied.Done()
	if n := g.Snapshot().InFlight; n != 0 {
		t.Errorf("in flight after Done three times = %d, want 0", n)
	}
	Ticket{}.Done()
}

func TestStopAdmitsEverything(t *testing.T) {
	g := quietGuard(t, Config{})
	g.decide(bound(0, 0, 0), LevelCritical, time.Now())
	if g.Admit(PriorityDefault) {
		t.Fatal("admitted with a bound of 0")
	}
	g.Stop()
	if !g.Admit(PriorityDefault) || !g.Admit(PrioritySheddable) || g.Level() != LevelNormal {
		t.Error("a stopped guard still sheds")
	}
	if _, err := g.Reserve(context.Background(), 1<<40); err != nil {
		t.Errorf("Reserve after Stop: %v", err)
	}
	rec := httptest.NewRecorder()
	g.ReadyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 {
		t.Errorf("ReadyHandler after Stop: %d, want 200", rec.Code)
	}
}

func TestAdmitDoesNotAllocate(t *testing.T) {
	g := quietGuard(t, Config{})
	h := g.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(1000, func() { g.Admit(PriorityDefault) }); n != 0 {
		t.Errorf("Admit allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, req) }); n != 0 {
		t.Errorf("Middleware allocates %v times per admitted request", n)
	}
}

func BenchmarkAdmit(b *testing.B) {
	g := quietGuard(b, Config{})
	b.ReportAllocs()
	for b.Loop() {
		g.Admit(PriorityDefault)
	}
}

// TestRefusalWakesAnIdleSampler: work refused while the sampler reads at
// its idle pace wakes it at once (a burst from idle must not wait out the
// idle pace for its window to grow); refused while it is busy, it does not,
// so that a shed storm does not drive the sampler.
func TestRefusalWakesAnIdleSampler(t *testing.T) {
	g := quietGuard(t, Config{})
	g.decide(bound(0, 0, 0), LevelNormal, time.Now())
	for _, idle := range []bool{false, true} {
		g.idlePace.Store(idle)
		for range 3 {
			if _, _, ok := g.Enter(context.Background(), PriorityDefault); ok {
				t.Fatal("admitted past a bound of 0")
			}
		}
		woken := len(g.kick) == 1
		if woken != idle {
			t.Errorf("refusals at the idle pace %v: sampler woken %v, want %v", idle, woken, idle)
		}
		for len(g.kick) > 0 {
			<-g.kick
		}
	}
}
