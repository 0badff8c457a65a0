package cgroup

import (
	"bytes"
	"fmt"
)

// Events are the counters of a v2 cgroup's memory.events file (or of
// memory.events.local, which leaves out the descendants). Each counts
// events since the cgroup was created and never decreases, so a change
// between two readings is what happened in between; the kernel signals a
// change of the file to poll and inotify watchers.
type Events struct {
	// Low counts reclaims of the group although its usage was below its
	// memory.low protection.
	Low int64
	// High counts the times usage went over memory.high, so that the
	// group's tasks were throttled and made to reclaim.
	High int64
	// Max counts the times usage was about to go over memory.max: each is
	// a direct reclaim, and an OOM when reclaim fails.
	Max int64
	// OOM counts the times usage reached memory.max with reclaim failing,
	// so that an allocation was about to fail and the OOM killer was
	// called on, whether or not it then killed anything.
	OOM int64
	// OOMKill counts the processes of the group the OOM killer killed.
	OOMKill int64
	// OOMGroupKill counts the times the whole group was killed at once
	// (memory.oom.group set); kernels from 5.17 on.
	OOMGroupKill int64
}

// ParseEvents parses the content of a v2 memory.events or
// memory.events.local file: one "key value" line per counter, the value a
// decimal count. A key it does not know (newer kernels add some, such as
// sock_throttled) is skipped; a known key the file lacks (older kernels
// lack oom_group_kill, and before 4.13 oom_kill) stays 0. An empty file, or
// a line that is not "key value" with a count that fits an int64, is an
// error naming the line. It allocates nothing unless it fails, so that a
// watcher may read the file on every change.
func ParseEvents(b []byte) (Events, error) {
	var e Events
	if len(bytes.TrimSpace(b)) == 0 {
		return Events{}, fmt.Errorf("cgroup: memory.events is empty")
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) == 0 {
			continue
		}
		key, val, ok := bytes.Cut(line, []byte(" "))
		v, valid := parseInt(val)
		if !ok || len(key) == 0 || !valid {
			return Events{}, fmt.Errorf("cgroup: memory.events: bad line %.64q, want \"key count\"", line)
		}
		switch string(key) {
		case "low":
			e.Low = v
		case "high":
			e.High = v
		case "max":
			e.Max = v
		case "oom":
			e.OOM = v
		case "oom_kill":
			e.OOMKill = v
		case "oom_group_kill":
			e.OOMGroupKill = v
		}
	}
	return e, nil
}
