//go:build !unix

package main

import "os"

// exitStatus returns the exit code of a finished process. Only Unix
// reports a kill by signal; the harness enforces limits on Linux only.
func exitStatus(ps *os.ProcessState) (code int, sigkill bool) {
	return ps.ExitCode(), false
}
