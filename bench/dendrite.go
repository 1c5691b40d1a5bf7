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
	fmt.Fprintf(&b, "%d projects × %d members, each run on a fresh local Dendrite v0.13.8 (SQLite in memory, `/dev/shm`) with this server as its appservice. **Worker**: the platform's calls through the JSON API (%d users, %d projects, their members, one room each), the provisioning worker (%d at once, the default) registering users, creating rooms with power levels, alias and invites, joining by masquerade; timed from the first API call until every room is `active`. **Naive**: the same homeserver calls for %d projects in a serial loop (register + display name per user, create room with initial state and power levels, invite + join per member), no database. Both make the same room events (create, power levels, join rules, history visibility, name, alias, an invite and a join per member). The worker is then run again at other concurrencies, each on a fresh Dendrite.\n\n", r.Projects, r.Members, r.Projects*r.Members, r.Projects, r.Sweep[0].Concurrency, r.Projects)
	b.WriteString("| run | wall s | rooms/s | Dendrite CPU s | Dendrite CPU s per room | Dendrite cores busy | our process CPU s |\n|---|---|---|---|---|---|---|\n")
	row := func(name string, wall, hsCPU float64, ours string) {
		fmt.Fprintf(&b, "| %s | %.2f | %.1f | %.2f | %.3f | %.2f | %s |\n", name, wall, float64(r.Projects)/wall, hsCPU, hsCPU/float64(r.Projects), hsCPU/wall, ours)
	}
	row("naive serial loop", r.NaiveWallS, r.NaiveDendriteCPUS, "—")
	for _, p := range r.Sweep {
		name := fmt.Sprintf("worker, %d at once", p.Concurrency)
		if p.WallS == r.WorkerWallS {
			name = "**" + name + "**"
		}
		row(name, p.WallS, p.DendriteCPUS, fmt.Sprintf("%.2f", p.OursCPUS))
	}
	perRoom := r.NaiveDendriteCPUS / float64(r.Projects)
	ceiling := float64(runtime.NumCPU()) / perRoom
	best, slow := r.Sweep[0], r.Sweep[0]
	lo, hi := r.Sweep[0].DendriteCPUS, r.Sweep[0].DendriteCPUS
	for _, p := range r.Sweep {
		if p.WallS < best.WallS {
			best = p
		}
		if p.WallS > slow.WallS {
			slow = p
		}
		lo, hi = min(lo, p.DendriteCPUS), max(hi, p.DendriteCPUS)
	}
	n := float64(r.Projects)
	fmt.Fprintf(&b, "\nWhere the time goes: Dendrite spends %.3f CPU-seconds per room on the naive loop's calls and %.3f on the worker's at its default concurrency; our process (server, worker and the test client's API calls) %.3f. Even with our side free and all %d cores given to Dendrite, the ceiling is %d ÷ %.3f = %.1f rooms/s, **%.2f× the naive loop**. A serial client already keeps Dendrite %.1f cores busy (its room server, sync and appservice consumers work behind each request). Across the concurrencies tried, the worker took from %.1f s (%d at once) to %.1f s (%d at once), and Dendrite %.3f to %.3f CPU-seconds per room: more at once adds no throughput. The best worker run is %.2f× the naive loop. The homeserver's CPU, not our side, bounds this ratio on this machine.\n",
		perRoom, r.WorkerDendriteCPUS/n, r.WorkerOursCPUS/n, runtime.NumCPU(), runtime.NumCPU(), perRoom, ceiling, ceiling/nr,
		r.NaiveDendriteCPUS/r.NaiveWallS, best.WallS, best.Concurrency, slow.WallS, slow.Concurrency, lo/n, hi/n, r.NaiveWallS/best.WallS)
	e.rep.section("5. Provisioning throughput", b.String())
	// The rooms/s ratio is bounded by the homeserver's CPU (above); what this server
	// controls is how much homeserver work it causes per room, and its own CPU.
	workerPerRoom := r.WorkerDendriteCPUS / n
	e.rep.target("5. Dendrite CPU per room, worker vs naive serial loop", "no higher than the naive loop's (our CPU per room reported)",
		fmt.Sprintf("%.3f vs %.3f CPU-s per room (%.2f×); ours %.3f CPU-s per room; %.1f vs %.1f rooms/s", workerPerRoom, perRoom, workerPerRoom/perRoom, r.WorkerOursCPUS/n, wr, nr),
		workerPerRoom <= perRoom)
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
