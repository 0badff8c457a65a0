package guard

import (
	"sync"
)

// EventType says what an Event reports.
type EventType int

// The event types.
const (
	EventLevel   EventType = iota + 1 // the level changed: Level and Previous
	EventLimit                        // the effective limit changed (a resized pod)
	EventProfile                      // a heap profile was written: Profile names it
)

func (t EventType) String() string {
	switch t {
	case EventLevel:
		return "level"
	case EventLimit:
		return "limit"
	case EventProfile:
		return "profile"
	}
	return "unknown"
}

// Event is a change the guard reports to subscribers.
type Event struct {
	Type     EventType
	Level    Level // the level after the change
	Previous Level // the level before it
	Snapshot Snapshot
	Profile  string // the profile's name in the store, for EventProfile
}

// subscriberQueue is how many events wait for a slow subscriber before the
// oldest are dropped: the sampler never waits for a subscriber.
const subscriberQueue = 64

type subscriber struct {
	fn   func(Event)
	ch   chan Event
	quit chan struct{}
	once sync.Once
}

// Subscribe calls fn with every event, in order, on a goroutine of its own,
// until cancel or Stop. A slow fn never delays sampling or admission: past
// 64 waiting events the oldest are dropped. Stop waits for a call in
// progress to return, so don't call Stop from fn. A nil fn subscribes to
// nothing.
func (g *Guard) Subscribe(fn func(Event)) (cancel func()) {
	if fn == nil {
		return func() {}
	}
	s := &subscriber{fn: fn, ch: make(chan Event, subscriberQueue), quit: make(chan struct{})}
	cancel = func() {
		s.once.Do(func() {
			g.subMu.Lock()
			delete(g.subs, s)
			g.subMu.Unlock()
			close(s.quit)
		})
	}
	g.subMu.Lock()
	defer g.subMu.Unlock()
	if g.stopped {
		return func() {}
	}
	g.subs[s] = struct{}{}
	g.subWG.Add(1)
	go func() {
		defer g.subWG.Done()
		for {
			select {
			case <-s.quit:
				return
			case e := <-s.ch:
				s.fn(e)
			}
		}
	}()
	return cancel
}

// publish hands e to every subscriber without blocking.
func (g *Guard) publish(e Event) {
	g.subMu.Lock()
	defer g.subMu.Unlock()
	for s := range g.subs {
		for {
			select {
			case s.ch <- e:
			default:
				select {
				case <-s.ch:
					g.eventsDropped.Add(1)
				default:
				}
				continue
			}
			break
		}
	}
}

// stopSubscribers ends every subscriber goroutine and waits for them.
func (g *Guard) stopSubscribers() {
	g.subMu.Lock()
	g.stopped = true
	subs := g.subs
	g.subs = map[*subscriber]struct{}{}
	g.subMu.Unlock()
	for s := range subs {
		s.once.Do(func() { close(s.quit) })
	}
	g.subWG.Wait()
}
