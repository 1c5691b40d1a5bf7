package main

import (
	"context"
	"errors"
)

// provisioningThroughput and diagnosticsTime need a real Dendrite; they run as Go tests
// in this package (see dendrite_bench_test.go) and report through a results file.
func provisioningThroughput(ctx context.Context, e *env) error {
	return errors.New("not implemented yet")
}

func diagnosticsTime(ctx context.Context, e *env) error {
	return errors.New("not implemented yet")
}
