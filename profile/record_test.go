package profile

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestRecord(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadRecord("state.json"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading a missing record: %v, want os.ErrNotExist", err)
	}
	// A durable write, a refresh, and a durable write over the refresh.
	writes := []func(string, []byte) error{s.WriteRecord, s.RefreshRecord, s.WriteRecord}
	for i, data := range []string{`{"a":1}`, `{"a":2,"b":3}`, `{"a":2,"longer":true}`} {
		if err := writes[i]("state.json", []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := s.ReadRecord("state.json")
		if err != nil || !bytes.Equal(got, []byte(data)) {
			t.Fatalf("read back %q, %v; want %q", got, err, data)
		}
	}
	// A record is neither a profile nor a temporary file, after a restart too.
	s.Close()
	s2, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n := len(s2.List()); n != 0 {
		t.Errorf("%d profiles listed, want 0: a record is not a profile", n)
	}
	if got, err := s2.ReadRecord("state.json"); err != nil || string(got) != `{"a":2,"longer":true}` {
		t.Errorf("after a restart: %q, %v", got, err)
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tempPrefix) {
			t.Errorf("temporary file %s left", de.Name())
		}
	}
	s = s2
	for _, bad := range []string{"", "../state.json", "sub/state.json", "state.txt", ".state.json", "heap-x.json", strings.Repeat("a", 200) + ".json"} {
		if err := s.WriteRecord(bad, nil); err == nil || !strings.Contains(err.Error(), "bad record name") {
			t.Errorf("WriteRecord(%q) = %v, want a bad record name", bad, err)
		}
		if err := s.RefreshRecord(bad, nil); err == nil || !strings.Contains(err.Error(), "bad record name") {
			t.Errorf("RefreshRecord(%q) = %v, want a bad record name", bad, err)
		}
		if _, err := s.ReadRecord(bad); err == nil {
			t.Errorf("ReadRecord(%q) succeeded", bad)
		}
	}
	if err := s.WriteRecord("big.json", make([]byte, recordMaxBytes+1)); err == nil {
		t.Error("a record past the size bound was written")
	}
	if err := s.RefreshRecord("big.json", make([]byte, recordMaxBytes+1)); err == nil {
		t.Error("a record past the size bound was refreshed")
	}
}
