package guard

import "testing"

func TestSlowSubscriberNeverBlocks(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	release := make(chan struct{})
	var calls int
	cancel := g.Subscribe(func(Event) { calls++; <-release })
	// Publishing far more than the queue holds returns, dropping the oldest.
	for i := 0; i < 10*subscriberQueue; i++ {
		g.publish(Event{Type: EventLevel, Level: Level(i % 4)})
	}
	close(release)
	cancel()
	g.Stop()
	if calls > subscriberQueue+1 {
		t.Errorf("subscriber saw %d events, more than the queue holds", calls)
	}
	if d := g.Snapshot().EventsDropped; d < 10*subscriberQueue-subscriberQueue-1 {
		t.Errorf("%d events dropped, want at least %d", d, 9*subscriberQueue-1)
	}
}

func TestSubscribeDeliversInOrder(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	done := make(chan struct{})
	var seen []Level
	cancel := g.Subscribe(func(e Event) {
		seen = append(seen, e.Level)
		if len(seen) == 4 {
			close(done)
		}
	})
	defer cancel()
	for l := LevelNormal; l <= LevelCritical; l++ {
		g.publish(Event{Type: EventLevel, Level: l})
	}
	<-done
	for i, l := range seen {
		if l != Level(i) {
			t.Fatalf("events out of order: %v", seen)
		}
	}
}

func TestSubscribeAfterStop(t *testing.T) {
	g := startGuard(t, Config{Limit: 1 << 40, MemoryLimitRatio: -1})
	g.Stop()
	cancel := g.Subscribe(func(Event) { t.Error("called after Stop") })
	cancel()
	cancel()
}
