// Command detect starts the guard and prints what it detected: the
// effective memory limit and its source, GOMEMLIMIT, the working set, the Go
// heap and the level. Run it inside a container or a memory cgroup to see
// the guard's view of it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/oomguard/oomguard/guard"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	g, err := guard.Start(context.Background(), guard.Config{Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer g.Stop()
	out, _ := json.MarshalIndent(g.Snapshot(), "", "  ")
	fmt.Println(string(out))
}
