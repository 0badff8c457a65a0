package guard

import (
	"context"
	"fmt"
)

// Priority orders work for shedding: Sheddable goes first, Default next,
// Critical never.
type Priority int8

// The priorities. The zero value is PriorityDefault.
const (
	PrioritySheddable Priority = -1 // batch, prefetch, retries: admitted into 5% of the limit less memory than Default, none at Critical
	PriorityDefault   Priority = 0  // ordinary requests: admitted while the memory the work holds stays below the admission target
	PriorityCritical  Priority = 1  // health checks, the debug endpoint: never shed, but counted in flight
)

func (p Priority) String() string {
	switch p {
	case PrioritySheddable:
		return "sheddable"
	case PriorityDefault:
		return "default"
	case PriorityCritical:
		return "critical"
	}
	return fmt.Sprintf("Priority(%d)", int8(p))
}

// ParsePriority parses "sheddable", "default" or "critical".
func ParsePriority(s string) (Priority, error) {
	switch s {
	case "sheddable":
		return PrioritySheddable, nil
	case "default", "":
		return PriorityDefault, nil
	case "critical":
		return PriorityCritical, nil
	}
	// The value may come from a client: the error quotes its start only.
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return PriorityDefault, fmt.Errorf("guard: unknown priority %q (want sheddable, default or critical)", s)
}

// index maps a priority to 0 (sheddable), 1 (default) or 2 (critical).
// Values below Sheddable count as Sheddable, above Critical as Critical.
func (p Priority) index() int {
	switch {
	case p <= PrioritySheddable:
		return 0
	case p >= PriorityCritical:
		return 2
	}
	return 1
}

type priorityKey struct{}

// WithPriority returns a context that carries p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityFrom returns the priority ctx carries, or PriorityDefault.
func PriorityFrom(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
		return p
	}
	return PriorityDefault
}
