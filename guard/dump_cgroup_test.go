package guard_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/guard"
	"github.com/oomguard/oomguard/internal/cgrouptest"
	"github.com/oomguard/oomguard/profile"
)

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestCgroupLeakLeavesEvidence runs a service that leaks through one named
// function in a real 256 MiB cgroup. The guard must write profiles at
// Elevated, High and Critical, serve the newest so that go tool pprof names
// the function first, and diff the first and last to name it as the growth.
func TestCgroupLeakLeavesEvidence(t *testing.T) {
	child := cgrouptest.New(t, 256*mib)
	dir := t.TempDir()
	runService(t, child, "leak", []string{"OOMGUARD_DUMP_DIR=" + dir}, func(first helperLine) {
		if first.Kind != "listening" {
			t.Fatalf("service did not start: %+v", first)
		}
		base := "http://" + first.Addr + "/debug/guard"

		var metas []profile.Meta
		reasons := map[string]bool{}
		for deadline := time.Now().Add(time.Minute); !reasons["level critical"]; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no profile at Critical after a minute; profiles: %+v", metas)
			}
			getJSON(t, base+"/heap", &metas)
			for _, m := range metas {
				reasons[m.Reason] = true
			}
		}
		for _, want := range []string{"level elevated", "level high", "level critical"} {
			if !reasons[want] {
				t.Errorf("no profile for %q; reasons: %v", want, reasons)
			}
		}
		for _, m := range metas {
			t.Logf("profile %s: %s at %s, usage %.1f MiB, heap %.1f MiB, %d bytes", m.Name, m.Reason, m.Level, float64(m.Usage)/mib, float64(m.Heap)/mib, m.Size)
		}

		// The newest profile names the leak first by inuse_space: read here
		// (a profile from nothing grows by what it holds), and by go tool
		// pprof over loopback where there is a Go toolchain (not in the VM).
		top := topAllocators(t, base+"/heap/latest")
		if top[0].Function != "main.leakMemory" {
			t.Errorf("top in-use allocators of the latest profile: %+v, want main.leakMemory first", top)
		}
		if gobin, err := exec.LookPath("go"); err != nil {
			t.Logf("no go command, so no go tool pprof: %v", err)
		} else {
			cmd := exec.Command(gobin, "tool", "pprof", "-top", "-sample_index=inuse_space", base+"/heap/latest")
			cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go tool pprof: %v\n%s", err, out)
			}
			if top := firstRow(string(out)); !strings.Contains(top, "main.leakMemory") {
				t.Errorf("go tool pprof -top: first row %q, want main.leakMemory\n%s", top, out)
			} else {
				t.Logf("go tool pprof -top %s/heap/latest: %s", base, top)
			}
		}

		// The diff of the first and last heap profiles names the leak as
		// the growth. (A goroutine profile is written at Critical too.) The
		// service holds its leak at Critical, where GET /heap/diff is
		// refused, so the two profiles are fetched and diffed here.
		var heaps []profile.Meta
		for _, m := range metas {
			if m.Kind == "" || m.Kind == profile.KindHeap {
				heaps = append(heaps, m)
			}
		}
		oldest, newest := heaps[0], heaps[len(heaps)-1]
		d, err := profile.Diff(fetchProfile(t, base+"/heap/"+url.PathEscape(oldest.Name)), fetchProfile(t, base+"/heap/"+url.PathEscape(newest.Name)))
		if err != nil {
			t.Fatalf("diff of %s and %s: %v", oldest.Name, newest.Name, err)
		}
		if top, err = profile.TopGrowth(d, 3, "inuse_space"); err != nil || len(top) == 0 {
			t.Fatalf("top growth from %s to %s: %v %v", oldest.Name, newest.Name, top, err)
		}
		if top[0].Function != "main.leakMemory" {
			t.Errorf("top growth %+v, want main.leakMemory first", top)
		}
		t.Logf("top growth from %s to %s: %s +%.1f MiB", oldest.Name, newest.Name, top[0].Function, float64(top[0].Bytes)/mib)

		var s guard.Snapshot
		getJSON(t, base+"/status", &s)
		if s.ProfilesWritten < 3 || s.ProfileErrors != 0 || s.ProfileDiskBytes <= 0 {
			t.Errorf("status: %d written, %d errors, %d bytes", s.ProfilesWritten, s.ProfileErrors, s.ProfileDiskBytes)
		}
	})
}

// topAllocators fetches a heap profile and returns its three functions
// holding the most in-use bytes.
func topAllocators(t *testing.T, url string) []profile.Growth {
	t.Helper()
	top, err := profile.TopGrowth(fetchProfile(t, url), 3, "inuse_space")
	if err != nil || len(top) == 0 {
		t.Fatalf("top allocators of %s: %v %v", url, top, err)
	}
	return top
}

// fetchProfile fetches and parses a profile.
func fetchProfile(t *testing.T, url string) *profile.Profile {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p, err := profile.Parse(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return p
}

// firstRow returns the first row below pprof -top's column header.
func firstRow(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.Contains(l, "flat%") && i+1 < len(lines) {
			return strings.TrimSpace(lines[i+1])
		}
	}
	return fmt.Sprintf("(no table in %d lines)", len(lines))
}
