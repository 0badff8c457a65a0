package cgroup

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseEvents(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     Events
	}{
		{"v2-plain fixture", readFixture(t, "v2-plain", fixCtr+"/memory.events"),
			Events{Max: 14, OOM: 2, OOMKill: 2}},
		{"all counters", "low 1\nhigh 22\nmax 333\noom 4444\noom_kill 55555\noom_group_kill 6\n",
			Events{Low: 1, High: 22, Max: 333, OOM: 4444, OOMKill: 55555, OOMGroupKill: 6}},
		{"newer kernel: an unknown key", "low 0\nhigh 7\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\nsock_throttled 9\n",
			Events{High: 7}},
		{"before 5.17: no oom_group_kill", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
			Events{Max: 3, OOM: 1, OOMKill: 1}},
		{"before 4.13: no oom_kill", "low 0\nhigh 0\nmax 3\noom 1\n",
			Events{Max: 3, OOM: 1}},
		{"no final newline", "oom_kill 12", Events{OOMKill: 12}},
		{"largest count", "max 9223372036854775807\n", Events{Max: 9223372036854775807}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvents([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ParseEvents(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseEventsMalformed(t *testing.T) {
	for _, in := range []string{
		"",
		"\n\n",
		"oom_kill\n",
		"oom_kill -1\n",
		"oom_kill 1 2\n",
		"oom_kill  1\n",
		"oom_kill 0x10\n",
		" 5\n",
		"max 9223372036854775808\n",
		"low 0\r\nhigh 0\r\n",
		"low 0\nhigh 0\ngarbage\n",
	} {
		_, err := ParseEvents([]byte(in))
		if err == nil {
			t.Errorf("ParseEvents(%q): no error", in)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "cgroup: memory.events") || strings.Contains(msg, "\n") {
			t.Errorf("ParseEvents(%q): error %q, want one line naming memory.events", in, msg)
		}
	}
}

func TestParseEventsFixturesAllocateNothing(t *testing.T) {
	files := fixtureFiles(t, "memory.events")
	if len(files) < 3 {
		t.Fatalf("found %d memory.events fixtures, want several", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseEvents(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if n := testing.AllocsPerRun(100, func() { ParseEvents(b) }); n != 0 {
			t.Errorf("%s: ParseEvents allocates %v times per call, want 0", f, n)
		}
	}
}

// formatEvents writes e as the kernel writes memory.events.
func formatEvents(e Events) string {
	return fmt.Sprintf("low %d\nhigh %d\nmax %d\noom %d\noom_kill %d\noom_group_kill %d\n",
		e.Low, e.High, e.Max, e.OOM, e.OOMKill, e.OOMGroupKill)
}

// FuzzParseEvents: memory.events of any content parses without a panic
// into counts its lines hold, and what it parses formats and parses back
// to the same.
func FuzzParseEvents(f *testing.F) {
	for _, name := range fixtureFiles(f, "memory.events") {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
		"low 0\nhigh 7\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\nsock_throttled 9\n",
		"oom_kill 9223372036854775807", "oom_kill 9223372036854775808\n", "oom_kill -1\n", "\n\n", " 1\n", "x 1\n\nx 2",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEvents(b)
		if err != nil {
			if e != (Events{}) || strings.Contains(err.Error(), "\n") || len(err.Error()) > 1024 {
				t.Fatalf("ParseEvents(%q) = %+v, %q", b, e, err)
			}
			return
		}
		for _, v := range []int64{e.Low, e.High, e.Max, e.OOM, e.OOMKill, e.OOMGroupKill} {
			if v < 0 || v > 0 && !bytes.Contains(b, []byte(strconv.FormatInt(v, 10))) {
				t.Fatalf("ParseEvents(%q) = %+v: %d is not in the input", b, e, v)
			}
		}
		out := formatEvents(e)
		if e2, err := ParseEvents([]byte(out)); err != nil || e2 != e {
			t.Fatalf("ParseEvents(%q) = %+v, %v; want %+v", out, e2, err, e)
		}
	})
}
