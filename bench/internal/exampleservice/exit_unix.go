//go:build unix

package exampleservice

import (
	"os"
	"syscall"
)

// ExitStatus returns the shell-style exit code of a finished process
// (128 + signal when a signal killed it) and whether SIGKILL did.
func ExitStatus(ps *os.ProcessState) (code int, sigkill bool) {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), ws.Signal() == syscall.SIGKILL
	}
	return ps.ExitCode(), false
}
