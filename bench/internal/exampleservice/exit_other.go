//go:build !unix

package exampleservice

import "os"

// ExitStatus returns the exit code of a finished process. Only Unix
// reports a kill by signal; the harnesses enforce limits on Linux only.
func ExitStatus(ps *os.ProcessState) (code int, sigkill bool) {
	return ps.ExitCode(), false
}
