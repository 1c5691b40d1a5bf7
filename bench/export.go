package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// exportResults is what scenario 11 (TestBenchExport) hands back.
type exportResults struct {
	Messages  int
	FillS     float64 // posting the messages into the room
	Reps      []exportRep
	Pages     int   // history pages of 100 per run
	JSONBytes int64 // the export's plaintext document
}

// exportRep is one repetition: the server's export and the plain pager, back to back.
type exportRep struct {
	ExportS        float64 // POST export_history until the record says completed
	ServerRSSMiB   float64 // the server's resident set before the export
	ServerPeakMiB  float64 // its peak resident set during the export
	PagerS         float64 // the plain pager, process start to exit
	PagerPeakMiB   float64 // its peak resident set
	PagerBytes     int64   // the document it wrote
	SameDocument   bool    // the pager's messages are the export's, in the same order
	ExportMessages int
}

// historyExport is scenario 11: a room of 20,000 messages on Dendrite exported by the
// server (through the API, encrypted, recorded) against a plain serial pager writing the
// same JSON, in the same run, and the peak memory of each. The Go test in this package
// has the harness (Dendrite, the server as a subprocess, the pager as another).
func historyExport(ctx context.Context, e *env) error {
	out := filepath.Join(e.work, "export.json")
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout=60m", "-run=^TestBenchExport$", "-v", "./bench")
	cmd.Env = append(os.Environ(), "BENCH_EXPORT_RESULTS="+out, "BENCH_SERVER="+e.server, "MATRIXAS_INTEGRATION=1")
	if e.quick {
		cmd.Env = append(cmd.Env, "BENCH_QUICK=1")
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("export scenario: %w", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	var r exportResults
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	var exp, pager, ratio, growth, serverPeak, pagerPeak []float64
	same := true
	for _, rep := range r.Reps {
		exp = append(exp, rep.ExportS)
		pager = append(pager, rep.PagerS)
		ratio = append(ratio, rep.ExportS/rep.PagerS)
		serverPeak = append(serverPeak, rep.ServerPeakMiB)
		growth = append(growth, rep.ServerPeakMiB-rep.ServerRSSMiB)
		pagerPeak = append(pagerPeak, rep.PagerPeakMiB)
		same = same && rep.SameDocument
	}
	es, ps, rs, gs, sp, pp := summarise(exp), summarise(pager), summarise(ratio), summarise(growth), summarise(serverPeak), summarise(pagerPeak)
	var b2 strings.Builder
	fmt.Fprintf(&b2, "A room of %d messages by two members (posted serially in %.0f s) on a fresh local Dendrite v0.13.8 (SQLite in `/dev/shm`), %d history pages of 100. **Export**: the server as its own process, `POST /api/matrix-rooms/{uuid}/export_history/` until `GET /api/matrix-exports/{uuid}/` says `completed` (polled every 10 ms): paging as the bot with retries, each page streamed into the AES-256-GCM container, progress recorded, the file synced and renamed, the record completed. **Plain pager**: a separate process that pages the same room serially as the bot and writes the same JSON (the messages newest first, then the counts) with `encoding/json` into a plain buffered file: no encryption, no database. Each repetition runs both back to back; the downloaded export and the pager's file hold the same messages in the same order: %v. Peak memory is the process's peak resident set (`VmHWM` of the server, reset before each export; `ru_maxrss` of the pager process).\n\n",
		r.Messages, r.FillS, r.Pages, same)
	b2.WriteString("| run | n | median | min | max |\n|---|---|---|---|---|\n")
	row := func(name, unit string, s stats, n int) {
		fmt.Fprintf(&b2, "| %s | %d | %.2f%s | %.2f%s | %.2f%s |\n", name, n, s.med, unit, s.min, unit, s.max, unit)
	}
	row("export through the server", " s", es, len(exp))
	row("plain serial pager", " s", ps, len(pager))
	row("export ÷ pager", "×", rs, len(ratio))
	row("server peak RSS during the export", " MiB", sp, len(serverPeak))
	row("server RSS growth during the export", " MiB", gs, len(growth))
	row("pager peak RSS", " MiB", pp, len(pagerPeak))
	fmt.Fprintf(&b2, "\nThe encrypted document holds %.1f MiB of JSON (%.0f bytes a message). %.0f messages/s through the server against %.0f through the pager, both reading the same %d pages from Dendrite; what the export adds (encryption, writing through a temporary file, the records, the job's pick-up) is the difference. The server's resident set barely moves while it exports: each page is streamed into the file.\n",
		float64(r.JSONBytes)/(1<<20), float64(r.JSONBytes)/float64(r.Messages), float64(r.Messages)/es.med, float64(r.Messages)/ps.med, r.Pages)
	e.rep.section("11. History export", b2.String())
	// The rate of the export against the pager's is the inverse of the time ratio.
	e.rep.target(fmt.Sprintf("11. export of %d messages, messages/s ÷ plain serial pager", r.Messages), "≥ 0.9 (and the same messages)",
		fmt.Sprintf("%.2f (%.2f s vs %.2f s)", 1/rs.med, es.med, ps.med), 1/rs.med >= 0.9 && same)
	e.rep.target("11. server RSS flat during the export", "growth ≤ 32 MiB", fmt.Sprintf("%.1f MiB (peak %.0f MiB)", gs.med, sp.med), gs.med <= 32)
	return nil
}
