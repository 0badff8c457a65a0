package guard

import (
	"strings"
	"testing"
)

// FuzzParsePriority: any value parses without a panic, to one of the
// three priorities whose name it is ("" is Default), or to Default with an
// error naming it; every priority's name parses back to it.
func FuzzParsePriority(f *testing.F) {
	for _, s := range []string{"sheddable", "default", "critical", "", "Critical", "CRITICAL", " critical", "critical\x00", "super-critical", "-1", "1"} {
		f.Add(s, int8(1))
	}
	f.Add("x", int8(-128))
	f.Add(strings.Repeat("critical", 1000), int8(0))
	f.Add("x", int8(127))
	f.Fuzz(func(t *testing.T, s string, n int8) {
		p, err := ParsePriority(s)
		if err != nil {
			if p != PriorityDefault || !strings.Contains(err.Error(), "unknown priority") {
				t.Fatalf("ParsePriority(%q) = %v, %v; want Default and an error", s, p, err)
			}
			if len(err.Error()) > 256 {
				t.Fatalf("ParsePriority of %d bytes: an error of %d bytes", len(s), len(err.Error()))
			}
		} else if p.String() != s && !(s == "" && p == PriorityDefault) {
			t.Fatalf("ParsePriority(%q) = %v, a priority of another name", s, p)
		}
		if i := p.index(); i < 0 || i > 2 {
			t.Fatalf("ParsePriority(%q) = %v, index %d", s, p, i)
		}

		q := Priority(n)
		name := q.String()
		back, err := ParsePriority(name)
		switch {
		case q >= PrioritySheddable && q <= PriorityCritical:
			if err != nil || back != q {
				t.Fatalf("ParsePriority(%q) = %v, %v; want %v", name, back, err, q)
			}
		case err == nil:
			t.Fatalf("Priority(%d) is named %q, which parses to %v", n, name, back)
		}
		if i := q.index(); i < 0 || i > 2 {
			t.Fatalf("Priority(%d).index() = %d", n, i)
		}
	})
}
