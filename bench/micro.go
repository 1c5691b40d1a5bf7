package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// microbenchmarks runs the hot paths' `go test -bench` benchmarks with -benchmem and
// puts their lines in the report: the webhook through the router and recorder, the
// recorder alone, the hs_token check, the status read and the HTTP middleware.
func microbenchmarks(ctx context.Context, e *env) error {
	count := "3"
	if e.quick {
		count = "1"
	}
	args := []string{"test", "-run", "^$", "-bench", "^(BenchmarkWebhookTransaction|BenchmarkRecord|BenchmarkHSTokenCheck|BenchmarkStatus|BenchmarkHTTPMiddleware)$",
		"-benchmem", "-count", count, "./handlers/appservice", "./handlers/api", "./db", "./metrics"}
	cmd := exec.CommandContext(ctx, "go", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "Benchmark") || strings.HasPrefix(l, "pkg:") {
			lines = append(lines, l)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "`go %s` (%s runs each; ns/op is wall time per operation, so the parallel ones divide by the concurrency):\n\n```\n%s\n```\n",
		strings.Join(args, " "), count, strings.Join(lines, "\n"))
	e.rep.section("8. Microbenchmarks", b.String())
	return nil
}
