package main

import (
	"slices"
	"strings"
	"testing"
)

func TestServiceEnv(t *testing.T) {
	for _, kv := range []string{"GOMEMLIMIT=1GiB", "GOGC=50", "OOMGUARD=off", "OOMGUARD_LIMIT=1", "AUTOMEMLIMIT=0.5", "SURVIVAL_TEST_KEEP=1"} {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	env := serviceEnv()
	for _, gone := range []string{"GOMEMLIMIT=1GiB", "GOGC=50", "OOMGUARD=off", "OOMGUARD_LIMIT=1", "AUTOMEMLIMIT=0.5"} {
		if slices.Contains(env, gone) {
			t.Errorf("the service's environment keeps %s", gone)
		}
	}
	if !slices.Contains(env, "SURVIVAL_TEST_KEEP=1") {
		t.Error("the service's environment lost an unrelated variable")
	}
}
