// Package cgroup finds the memory cgroup of the current process and reads its
// limits, usage and OOM-kill counter, for cgroup v1 and v2.
//
// Every path is resolved under a root directory, "/" on a live system, so that
// tests can point the package at fixture trees made of real cgroup files.
package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNoMemoryController reports that no cgroup hierarchy carries the memory
// controller for this process: not in a container, not on Linux, or a v2
// hierarchy with the memory controller disabled.
var ErrNoMemoryController = errors.New("cgroup: no memory controller for this process")

// Version is a cgroup hierarchy version: 1 or 2.
type Version int

// Group is the memory cgroup of a process.
type Group struct {
	Version Version
	// Dir is the cgroup's directory, such as /sys/fs/cgroup/memory/kubepods/pod1/ctr.
	Dir string
	// Mount is the mount point of the hierarchy; limits are read from Dir up to Mount.
	Mount string
}

// Self returns the memory cgroup of the calling process.
func Self() (*Group, error) { return Find("/") }

// Find returns the memory cgroup described by root/proc/self/cgroup and
// root/proc/self/mountinfo, with every path resolved under root.
//
// On a hybrid host (v1 and v2 both mounted), the hierarchy that carries the
// memory controller wins: a v1 memory line in /proc/self/cgroup with a v1
// memory mount means v1; otherwise the unified line means v2 only if the
// memory controller is enabled for the process's cgroup.
func Find(root string) (*Group, error) { return find(root, "memory", ErrNoMemoryController) }

// find returns the cgroup of the hierarchy that applies controller to the
// process, or none when there is no such hierarchy.
func find(root, controller string, none error) (*Group, error) {
	cg, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, none
		}
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	mi, err := os.ReadFile(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	mounts, err := parseMountInfo(mi)
	if err != nil {
		return nil, err
	}

	self := parseSelfCgroup(cg, controller)
	if self.hasV1 {
		for _, m := range mounts {
			if m.fstype == "cgroup" && slices.Contains(strings.Split(m.superOpts, ","), controller) {
				if g := resolve(root, m, self.v1Path, 1); g != nil {
					return g, nil
				}
			}
		}
	}
	if self.hasV2 {
		for _, m := range mounts {
			if m.fstype != "cgroup2" {
				continue
			}
			g := resolve(root, m, self.v2Path, 2)
			if g == nil {
				continue
			}
			ctrl, err := os.ReadFile(filepath.Join(g.Dir, "cgroup.controllers"))
			if err == nil && slices.Contains(strings.Fields(string(ctrl)), controller) {
				return g, nil
			}
		}
	}
	return nil, none
}

// resolve maps a cgroup path from /proc/self/cgroup onto a mount. The mount's
// root is a prefix of the path on a host; inside a container without a cgroup
// namespace the mount root is the container's own cgroup and equals the path.
func resolve(root string, m mount, cgPath string, v Version) *Group {
	mountPoint := filepath.Join(root, m.point)
	rel := cgPath
	if m.root != "/" {
		switch {
		case cgPath == m.root:
			rel = "/"
		case strings.HasPrefix(cgPath, m.root+"/"):
			rel = strings.TrimPrefix(cgPath, m.root)
		default:
			return nil
		}
	}
	dir := filepath.Join(mountPoint, filepath.Clean("/"+rel))
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil
	}
	return &Group{Version: v, Dir: dir, Mount: mountPoint}
}

// selfCgroup is what /proc/self/cgroup says of a controller.
type selfCgroup struct {
	v1Path, v2Path string // the cgroup paths, "/..." as the kernel writes them
	hasV1, hasV2   bool   // a v1 line lists the controller; the v2 line is present
}

// parseSelfCgroup parses /proc/self/cgroup (cgroups(7)): one
// "hierarchy-ID:controller-list:cgroup-path" line per hierarchy, "0::path"
// for v2. The path is everything after the second colon, as the kernel does
// not escape it: it may hold colons and spaces. Lines of another shape are
// skipped; if several lines match, the last wins.
func parseSelfCgroup(b []byte, controller string) selfCgroup {
	var c selfCgroup
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		id, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		ctrl, path, ok := bytes.Cut(rest, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case string(id) == "0" && len(ctrl) == 0:
			c.v2Path, c.hasV2 = string(path), true
		case lists(ctrl, controller):
			c.v1Path, c.hasV1 = string(path), true
		}
	}
	return c
}

// lists reports whether a comma-separated controller list names
// controller.
func lists(list []byte, controller string) bool {
	for len(list) > 0 {
		item := list
		if i := bytes.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			list = nil
		}
		if string(item) == controller {
			return true
		}
	}
	return false
}

type mount struct {
	root, point, fstype, superOpts string
}

// parseMountInfo parses /proc/self/mountinfo (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Lines are split at newlines in the bytes already read, with no bound on
// their length: an unrelated mount's line can be long (an overlay's list of
// lower layers), and failing on it would hide the memory cgroup.
func parseMountInfo(b []byte) ([]mount, error) {
	var out []mount
	for len(b) > 0 {
		var line string
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = string(b[:i]), b[i+1:]
		} else {
			line, b = string(b), nil
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		// Six fields, optional fields, a "-" field, then the filesystem
		// type, the source and the super options. The kernel always writes
		// the separator; a line without it was cut short, and skipping it
		// could hide the memory mount. The separator is looked for after
		// the sixth field only: a root or mount point may be "-" itself.
		f := fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+4 {
			return nil, fmt.Errorf("cgroup: malformed mountinfo line %.256q", line)
		}
		out = append(out, mount{root: unescape(f[3]), point: unescape(f[4]), fstype: f[sep+1], superOpts: f[sep+3]})
	}
	return out, nil
}

// fields splits a mountinfo line at spaces, the kernel's only separator.
// Not strings.Fields: the kernel escapes only space, tab, newline and
// backslash in paths, so a path may hold a form feed, a carriage return or
// a non-breaking space, which strings.Fields would split at.
func fields(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, " ") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// unescape decodes the octal escapes the kernel writes for space, tab,
// newline and backslash in mountinfo paths.
func unescape(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(p)
}
