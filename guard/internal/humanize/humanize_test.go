package humanize

import (
	"testing"
	"time"
)

func TestHumanUnits(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{Bytes(0), "0 B"}, {Bytes(1023), "1023 B"}, {Bytes(1536), "1.5 KiB"},
		{Bytes(12_897_485), "12.3 MiB"}, {Bytes(3 << 30), "3.00 GiB"}, {Bytes(-5 << 20), "-5.0 MiB"},
		{Duration(1500 * time.Microsecond), "1 ms"}, {Duration(3200 * time.Millisecond), "3.2 s"},
		{Duration(42 * time.Second), "42 s"}, {Duration(4*time.Minute + 12*time.Second), "4 min 12 s"},
		{Duration(251*time.Hour + 35*time.Minute), "10 d 11 h"}, {Duration(-time.Second), "0 ms"},
		{BytesIn(50<<20, 1<<20), "50 MiB"}, {BytesIn(1<<29, 1<<30), "0.5 GiB"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
