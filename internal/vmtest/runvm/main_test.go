//go:build linux

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/vmtest"
)

// TestRecapKeepsFailedTests feeds the reporter a step in which one test
// passes and one fails, and a step after it: the recap holds the failed
// test's output, from its RUN line to its FAIL line, and nothing of the
// one that passed.
func TestRecapKeepsFailedTests(t *testing.T) {
	r := &reporter{verbose: true}
	for _, l := range []string{
		vmtest.StartLine("pkg/a"),
		"=== RUN   TestGood",
		"    good_test.go:1: all fine",
		"--- PASS: TestGood (0.01s)",
		"=== RUN   TestBad",
		"    bad_test.go:2: wave 3: 0 ok",
		"    bad_test.go:3: killed",
		"--- FAIL: TestBad (1.00s)",
		"FAIL",
		vmtest.EndLine("pkg/a", 1, time.Second, 0, ""),
		vmtest.StartLine("pkg/b"),
		"=== RUN   TestOther",
		"--- PASS: TestOther (0.01s)",
		vmtest.EndLine("pkg/b", 0, time.Second, 0, ""),
	} {
		r.line(l)
	}
	got := strings.Join(r.recap, "\n")
	want := strings.Join([]string{
		"in pkg/a:",
		"  | === RUN   TestBad",
		"  |     bad_test.go:2: wave 3: 0 ok",
		"  |     bad_test.go:3: killed",
		"  | --- FAIL: TestBad (1.00s)",
	}, "\n")
	if got != want {
		t.Errorf("recap:\n%s\nwant:\n%s", got, want)
	}
	if r.failures != 1 {
		t.Errorf("failures = %d, want 1", r.failures)
	}
}

// TestRecapIsBounded: a failed test that printed thousands of lines
// leaves its last recapLines in the recap.
func TestRecapIsBounded(t *testing.T) {
	r := &reporter{verbose: true}
	r.line(vmtest.StartLine("pkg/a"))
	r.line("=== RUN   TestLong")
	for i := range 1000 {
		r.line(fmt.Sprintf("    long_test.go:1: line %d", i))
	}
	r.line("--- FAIL: TestLong (9.00s)")
	r.line(vmtest.EndLine("pkg/a", 1, time.Second, 0, ""))
	if n := len(r.recap); n != recapLines+3 {
		t.Fatalf("recap has %d lines, want %d: the step, the elision and the last %d", n, recapLines+3, recapLines)
	}
	if last := r.recap[len(r.recap)-1]; last != "  | --- FAIL: TestLong (9.00s)" {
		t.Errorf("recap ends with %q", last)
	}
}
