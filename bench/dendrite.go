package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// dendriteRun runs the Dendrite scenarios (a Go test in this package, which has the
// harness that starts Dendrite) once and caches the results for scenarios 5 and 6.
func (e *env) dendriteRun(ctx context.Context) (*dendriteResults, error) {
	if e.dendrite != nil {
		return e.dendrite, nil
	}
	out := filepath.Join(e.work, "dendrite.json")
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout=30m", "-run=^TestBenchProvisioning$", "-v", "./bench")
	cmd.Env = append(os.Environ(), "BENCH_RESULTS="+out, "MATRIXAS_INTEGRATION=1")
	if e.quick {
		cmd.Env = append(cmd.Env, "BENCH_QUICK=1")
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dendrite scenarios: %w", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	var r dendriteResults
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	e.dendrite = &r
	return &r, nil
}

// provisioningThroughput: projects × members to all active, the worker versus a naive
// serial loop over the same homeserver calls, and where the time goes.
func provisioningThroughput(ctx context.Context, e *env) error {
	r, err := e.dendriteRun(ctx)
	if err != nil {
		return err
	}
	wr, nr := float64(r.Projects)/r.WorkerWallS, float64(r.Projects)/r.NaiveWallS
	var b strings.Builder
	fmt.Fprintf(&b, "%d projects × %d members on one local Dendrite v0.13.8 (SQLite in memory, `/dev/shm`). **Worker**: the platform's calls through the JSON API (600 users, %d projects, their members, one room each), the provisioning worker (8 at once) registering users, creating rooms with power levels and alias, inviting and joining by masquerade; timed from the first API call until every room is `active`. **Naive**: the same homeserver calls for another %d projects in a serial loop (register + display name per user, create room with initial state and power levels, invite + join per member), no database.\n\n", r.Projects, r.Members, r.Projects, r.Projects)
	b.WriteString("| run | wall s | rooms/s | Dendrite CPU s | our process CPU s |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| worker | %.2f | %.1f | %.2f | %.2f |\n| naive serial loop | %.2f | %.1f | %.2f | — |\n", r.WorkerWallS, wr, r.WorkerDendriteCPUS, r.WorkerOursCPUS, r.NaiveWallS, nr, r.NaiveDendriteCPUS)
	perRoom := r.NaiveDendriteCPUS / float64(r.Projects)
	ceiling := float64(runtime.NumCPU()) / perRoom
	fmt.Fprintf(&b, "\nWhere the time goes: during the worker's run Dendrite used %.2f CPU-seconds and our process (server, worker and the test client's API calls) %.2f, over %.2f s of wall time on %d cores. Dendrite spends %.3f CPU-seconds per room for the naive loop's calls, so even with our side free and both cores given to Dendrite the ceiling is %d ÷ %.3f = %.1f rooms/s, **%.2f× the naive loop**: the homeserver's CPU, not our concurrency, bounds this ratio on this machine.\n",
		r.WorkerDendriteCPUS, r.WorkerOursCPUS, r.WorkerWallS, runtime.NumCPU(), perRoom, runtime.NumCPU(), perRoom, ceiling, ceiling/nr)
	e.rep.section("5. Provisioning throughput", b.String())
	e.rep.target("5. worker rooms/s ÷ naive serial loop", "≥ 3", fmt.Sprintf("%.2f (%.1f vs %.1f rooms/s)", wr/nr, wr, nr), wr/nr >= 3)
	return nil
}

// diagnosticsTime: wall time of the diagnostics call against the healthy Dendrite and
// against a listener that accepts connections and never answers.
func diagnosticsTime(ctx context.Context, e *env) error {
	r, err := e.dendriteRun(ctx)
	if err != nil {
		return err
	}
	h, bh := summarise(r.DiagHealthyMS), summarise(r.DiagBlackholeS)
	var b strings.Builder
	b.WriteString("`GET /api/admin/matrix/diagnostics/` end to end (HTTP, every check, database reads). The black hole accepts TCP connections and never answers; the largest single timeout is the configured maximum of connect and request timeouts.\n\n")
	b.WriteString("| homeserver | n | median | min | max |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| healthy Dendrite | %d | %.1f ms | %.1f ms | %.1f ms |\n| black hole | %d | %.2f s | %.2f s | %.2f s |\n", len(r.DiagHealthyMS), h.med, h.min, h.max, len(r.DiagBlackholeS), bh.med, bh.min, bh.max)
	e.rep.section("6. Diagnostics", b.String())
	e.rep.target("6. diagnostics against a healthy Dendrite", "≤ 100 ms", fmt.Sprintf("%.1f ms", h.med), h.med <= 100)
	e.rep.target("6. diagnostics against a black hole", fmt.Sprintf("≤ %.1f s (largest timeout + 0.5 s)", r.DiagTimeoutS+0.5), fmt.Sprintf("%.2f s", bh.med), bh.med <= r.DiagTimeoutS+0.5)
	return nil
}
