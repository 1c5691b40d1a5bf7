// Command bench measures the server against baselines measured in the same run and
// writes docs/PERFORMANCE.md. The machine is shared and noisy, so every headline figure
// is a ratio against a baseline from the same run, with absolute numbers beside it.
//
//	go run ./bench            # all scenarios (about 18 minutes)
//	go run ./bench -quick     # one short repetition of each, for a smoke check
//	go run ./bench serve ADDR DB HS_TOKEN   # the set-up server the load generator hits
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serveFixture(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	quick := flag.Bool("quick", false, "one short repetition of each scenario")
	out := flag.String("out", "docs/PERFORMANCE.md", "report file")
	peer := flag.String("peer-bench", "../shared/peer-bench", "folder of the peer benchmark anchors")
	only := flag.String("only", "", "comma-separated scenario numbers to run (default all)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAll(ctx, *quick, *out, *peer, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// env is what every scenario gets: where to work, the built binaries, and the report.
type env struct {
	quick  bool
	work   string // scratch folder
	bin    string // this command built as a binary (serves the fixture)
	server string // the product binary, stripped like a release
	peer   string
	rep    *report

	peakRSS  float64          // MiB, of our server during scenario 1
	dendrite *dendriteResults // scenarios 5 and 6, run once
}

func runAll(ctx context.Context, quick bool, out, peer, only string) error {
	work, err := os.MkdirTemp("", "matrixas-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	e := &env{quick: quick, work: work, peer: peer, rep: newReport(quick)}
	e.bin = filepath.Join(work, "bench")
	e.server = filepath.Join(work, "matrixas")
	fmt.Println("== building")
	if err := sh(ctx, "", "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", e.bin, "./bench"); err != nil {
		return err
	}
	if err := sh(ctx, "", "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", e.server, "."); err != nil {
		return err
	}
	scenarios := []struct {
		n    string
		name string
		run  func(context.Context, *env) error
	}{
		{"1", "webhook throughput", webhookThroughput},
		{"2", "duplicates", duplicates},
		{"3", "status at scale", statusAtScale},
		{"4", "reprovision at scale", reprovisionAtScale},
		{"5", "provisioning throughput", provisioningThroughput},
		{"6", "diagnostics", diagnosticsTime},
		{"7", "memory, size, start", memoryAndStart},
		{"8", "microbenchmarks", microbenchmarks},
		{"9", "the bot", botScenario},
		{"10", "platform sync at scale", platformSync},
		{"11", "history export", historyExport},
	}
	for _, s := range scenarios {
		if only != "" && !strings.Contains(","+only+",", ","+s.n+",") {
			continue
		}
		fmt.Printf("== scenario %s: %s\n", s.n, s.name)
		start := time.Now()
		if err := s.run(ctx, e); err != nil {
			e.rep.failed(s.n, s.name, err)
			fmt.Printf("   FAILED: %v\n", err)
			continue
		}
		fmt.Printf("   done in %s\n", time.Since(start).Round(time.Second))
	}
	if err := os.WriteFile(out, []byte(e.rep.markdown(runtime.Version())), 0o644); err != nil {
		return err
	}
	fmt.Println("== wrote", out)
	return nil
}
