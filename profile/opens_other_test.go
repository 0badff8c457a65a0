//go:build !linux

package profile

import "testing"

// watchOpens needs inotify; elsewhere it reports nothing, and the tests
// that use it check response bodies only.
func watchOpens(t *testing.T, dirs ...string) func() []string {
	t.Log("not on Linux: cannot watch which files are opened")
	return func() []string { return nil }
}
