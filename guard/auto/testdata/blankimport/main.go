// Command blankimport is a program whose only use of oomguard is the blank
// import: it prints the GOMEMLIMIT the import left, in bytes.
package main

import (
	"fmt"
	"runtime/debug"

	_ "github.com/oomguard/oomguard/guard/auto"
)

func main() {
	fmt.Println(debug.SetMemoryLimit(-1))
}
