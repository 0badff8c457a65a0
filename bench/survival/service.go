package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/oomguard/oomguard/bench/internal/exampleservice"
)

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the oomguard module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}

// startupDeath is a service that exited before it listened, with the OOM
// kills its cgroup counted then; -1 unknown.
type startupDeath struct {
	*exampleservice.ExitedEarly
	oomKills int64
}

func (e *startupDeath) Unwrap() error { return e.ExitedEarly }
