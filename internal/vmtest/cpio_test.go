package vmtest

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// entry is one member read back by readNewc.
type entry struct {
	name string
	mode uint64
	data string
}

// readNewc reads a newc archive as the kernel's initramfs unpacker does:
// 110-byte ASCII headers, names and bodies each padded to 4 bytes.
func readNewc(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("header at %d is not 4-byte aligned", off)
		}
		if len(b) < off+110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at %d", off)
		}
		field := func(i int) uint64 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("header at %d, field %d: %v", off, i, err)
			}
			return v
		}
		mode, size, namesize := field(1), field(6), field(11)
		nameStart := off + 110
		name := string(b[nameStart : nameStart+int(namesize)-1])
		if b[nameStart+int(namesize)-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		dataStart := (nameStart + int(namesize) + 3) &^ 3
		if name == "TRAILER!!!" {
			return out
		}
		out = append(out, entry{name, mode, string(b[dataStart : dataStart+int(size)])})
		off = (dataStart + int(size) + 3) &^ 3
	}
}

func TestCPIOWriterWritesNewc(t *testing.T) {
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	if err := w.Dir("/bin", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ name, data string }{{"init", "#!x"}, {"bin/a", ""}, {"bin/odd-length-name", "12345"}} {
		if err := w.File(f.name, 0o755, int64(len(f.data)), strings.NewReader(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, buf.Bytes())
	want := []entry{
		{"bin", 0o040755, ""},
		{"init", 0o100755, "#!x"},
		{"bin/a", 0o100755, ""},
		{"bin/odd-length-name", 0o100755, "12345"},
	}
	if len(got) != len(want) {
		t.Fatalf("read back %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestCPIOWriterShortFile(t *testing.T) {
	w := NewCPIOWriter(&bytes.Buffer{})
	if err := w.File("x", 0o644, 10, strings.NewReader("short")); err == nil {
		t.Error("a body shorter than its size: no error")
	}
}
