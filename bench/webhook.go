package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"matrixas/db"
)

const benchToken = "bench_hs_token"

// webhookThroughput runs the peer benchmark (no-op handler, mautrix-go's appservice,
// minimal SQLite recorders) with this server as a fifth, interleaved, same load generator.
func webhookThroughput(ctx context.Context, e *env) error {
	out := filepath.Join(e.work, "peer")
	reps, dur := "3", "10"
	if e.quick {
		reps, dur = "1", "4"
	}
	cmd := exec.CommandContext(ctx, "./run.sh")
	cmd.Dir = e.peer
	cmd.Env = append(os.Environ(), "REPS="+reps, "DUR="+dur, "CONNS=32", "OUT="+out, "TOKEN="+benchToken,
		"EXTRA_NAME=matrixas", "EXTRA_CMD="+e.bin+" serve {addr} {db} "+benchToken)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("peer-bench: %w", err)
	}
	f, err := os.Open(filepath.Join(out, "results.csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return err
	}
	type agg struct{ rps, p50, p99, hwm []float64 }
	by := map[string]*agg{}
	var order []string
	errors := 0
	for _, r := range rows[1:] {
		name := r[0]
		if by[name] == nil {
			by[name] = &agg{}
			order = append(order, name)
		}
		a := by[name]
		num := func(i int) float64 { v, _ := strconv.ParseFloat(r[i], 64); return v }
		a.rps = append(a.rps, num(3))
		a.p50 = append(a.p50, num(4))
		a.p99 = append(a.p99, num(5))
		a.hwm = append(a.hwm, num(8)/1024)
		if name == "matrixas" {
			errors += int(num(6) + num(7))
		}
	}
	if by["matrixas"] == nil || by["noop"] == nil || by["mautrix"] == nil {
		return fmt.Errorf("peer-bench results lack a server: %v", order)
	}
	noop, mautrix := summarise(by["noop"].rps).med, summarise(by["mautrix"].rps).med
	var b strings.Builder
	fmt.Fprintf(&b, "`wrk -t2 -c32 -d%ss` with `../shared/peer-bench/txn.lua` (PUT of 10 events, ~3 KB, unique txnIds), %s repetitions interleaved with a fresh server each, all servers started by `../shared/peer-bench/run.sh`. Ours is the real server (router, middleware, metrics, hs_token check, body validation, membership handling, durable group commit in WAL with `synchronous=NORMAL`, a 200 only after the commit), started set up by `go run ./bench serve` with the production defaults (log level info: a delivered transaction's access-log line is at debug level, as its record is in the database and the metrics).\n\n", dur, reps)
	b.WriteString("| server | req/s median | min | max | p50 ms | p99 ms | peak RSS MiB | ÷ no-op | ÷ mautrix |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, name := range order {
		a := by[name]
		r := summarise(a.rps)
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %.3f | %.3f | %.1f | %.2f | %.2f |\n", name, r.med, r.min, r.max,
			summarise(a.p50).med, summarise(a.p99).med, summarise(a.hwm).max, r.med/noop, r.med/mautrix)
	}
	ours := by["matrixas"]
	r := summarise(ours.rps)
	p99 := summarise(ours.p99).med
	fmt.Fprintf(&b, "\nErrors (non-2xx and socket errors) for ours: %d.\n", errors)
	e.rep.section("1. Webhook throughput", b.String())
	e.rep.target("1. webhook req/s ÷ no-op", "≥ 0.40", fmt.Sprintf("%.2f (%.0f vs %.0f req/s)", r.med/noop, r.med, noop), r.med/noop >= 0.40)
	e.rep.target("1. webhook req/s ÷ mautrix-go", "≥ 2", fmt.Sprintf("%.2f (%.0f vs %.0f req/s)", r.med/mautrix, r.med, mautrix), r.med/mautrix >= 2)
	e.rep.target("1. webhook p99", "≤ 10 ms", fmt.Sprintf("%.2f ms", p99), p99 <= 10)
	e.peakRSS = summarise(ours.hwm).max
	return nil
}

var luaLine = regexp.MustCompile(`LUA body_bytes=\d+ generated=(\d+) distinct_txn_ids=(\d+) repeated=(\d+) completed=(\d+)`)

// duplicates sends the same load with half the txnIds repeated and checks that what is
// stored equals the distinct txnIds sent, live and after a restart.
func duplicates(ctx context.Context, e *env) error {
	dur := "10"
	if e.quick {
		dur = "4"
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	dbPath := filepath.Join(e.work, "dup.db")
	srv := exec.CommandContext(ctx, e.bin, "serve", addr, dbPath, benchToken)
	if err := srv.Start(); err != nil {
		return err
	}
	if err := waitReady("http://"+addr+"/readyz", 10*time.Second); err != nil {
		srv.Process.Kill()
		return err
	}
	raw, err := exec.CommandContext(ctx, "wrk", "-t2", "-c32", "-d"+dur+"s", "--latency", "-s", filepath.Join(e.peer, "txn.lua"),
		"http://"+addr, "--", "dup", fmt.Sprintf("dup-%d", time.Now().UnixNano()), dur, benchToken).CombinedOutput()
	srv.Process.Signal(syscall.SIGTERM)
	srv.Wait()
	if err != nil {
		return fmt.Errorf("wrk: %v\n%s", err, raw)
	}
	m := luaLine.FindStringSubmatch(string(raw))
	if m == nil {
		return fmt.Errorf("wrk output without the script's summary:\n%s", raw)
	}
	sent, _ := strconv.Atoi(m[1])
	distinct, _ := strconv.ParseInt(m[2], 10, 64)
	repeated, _ := strconv.Atoi(m[3])
	rps := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindStringSubmatch(string(raw))
	non2xx := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindStringSubmatch(string(raw))

	store, err := db.OpenNoMigrate(dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	counter, err := store.Counter(ctx, db.CounterTransactions)
	if err != nil {
		return err
	}
	rows, err := store.CountTransactionRows(ctx)
	if err != nil {
		return err
	}
	ok := counter == distinct && rows == distinct && non2xx == nil
	var b strings.Builder
	fmt.Fprintf(&b, "`wrk -t2 -c32 -d%ss`, `txn.lua` in `dup` mode: every second request repeats an earlier txnId of the same connection (repeats can race their original on another connection), and the last second sends only repeats, so every distinct txnId was answered before wrk stops. The database is reopened from disk after a graceful stop.\n\n", dur)
	b.WriteString("| req/s | requests | repeats | distinct txnIds sent | counter | rows on disk | non-2xx | result |\n|---|---|---|---|---|---|---|---|\n")
	n2 := "0"
	if non2xx != nil {
		n2 = non2xx[1]
	}
	result := "PASS"
	if !ok {
		result = "FAIL"
	}
	fmt.Fprintf(&b, "| %s | %d | %d (%.0f%%) | %d | %d | %d | %s | %s |\n", rps[1], sent, repeated, 100*float64(repeated)/float64(max(sent, 1)), distinct, counter, rows, n2, result)
	e.rep.section("2. Duplicates", b.String())
	e.rep.target("2. stored = distinct txnIds under 50% repeats", "exact", fmt.Sprintf("%d stored, %d distinct sent (%s req/s)", rows, distinct, rps[1]), ok)
	return nil
}
