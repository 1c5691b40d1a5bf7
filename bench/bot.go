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

// botScenario: scenario 9, the bot on a real Dendrite (TestBenchBot in this package):
// from a command's transaction arriving to its reply's send leaving this server, and
// the outbox's throughput against a serial loop of plain sends.
func botScenario(ctx context.Context, e *env) error {
	out := filepath.Join(e.work, "bot.json")
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout=30m", "-run=^TestBenchBot$", "-v", "./bench")
	cmd.Env = append(os.Environ(), "BENCH_BOT_RESULTS="+out, "MATRIXAS_INTEGRATION=1")
	if e.quick {
		cmd.Env = append(cmd.Env, "BENCH_QUICK=1")
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bot scenario: %w", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	var r botResults
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	lat := summarise(r.LatencyMS)
	outboxRate, serialRate := float64(r.Messages)/r.OutboxS, float64(r.Messages)/r.SerialS
	var s strings.Builder
	fmt.Fprintf(&s, "This server as the appservice of a fresh local Dendrite v0.13.8 (SQLite in `/dev/shm`), with two taps: a reverse proxy between Dendrite and the webhook notes when each command's transaction arrives, one between this server and Dendrite notes when each reply's send leaves. A member sends `!help` %d times, one command at a time, across %d rooms (the rate rule allows 10 replies per room and minute).\n\n", r.Commands, r.Rooms)
	s.WriteString("| command's transaction arriving → reply's send leaving | n | p50 | p99 | min | max |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&s, "| recorded with its reply queued, sender woken, reply composed (`!help`: the room and the sender's access read) and stored, send started | %d | %.1f ms | %.1f ms | %.1f ms | %.1f ms |\n\n", len(r.LatencyMS), lat.med, lat.p99, lat.min, lat.max)
	fmt.Fprintf(&s, "Throughput: %d messages queued through `POST /api/matrix-rooms/{uuid}/messages/` by 8 callers at once into the %d rooms and posted by the sender (%d sends in flight, one per room), timed from the first request to the last message recorded as sent; against a serial loop of as many plain sends as the bot to the same rooms through the same tap.\n\n", r.Messages, r.Rooms, r.InFlight)
	s.WriteString("| run | wall s | messages/s |\n|---|---|---|\n")
	fmt.Fprintf(&s, "| serial loop of plain sends | %.2f | %.1f |\n| **outbox** (queue through the API, post, record) | %.2f | %.1f |\n", r.SerialS, serialRate, r.OutboxS, outboxRate)
	fmt.Fprintf(&s, "\nQueueing the %d messages through the API took %.2f s of the outbox's time; the sender starts posting with the first one.\n", r.Messages, r.QueuedS)
	e.rep.section("9. The bot", s.String())
	e.rep.target("9. command transaction → reply send, p99", "≤ 100 ms", fmt.Sprintf("%.1f ms (p50 %.1f ms)", lat.p99, lat.med), lat.p99 <= 100)
	e.rep.target("9. outbox messages/s ÷ serial loop of plain sends", "≥ 1", fmt.Sprintf("%.2f (%.1f vs %.1f messages/s)", outboxRate/serialRate, outboxRate, serialRate), outboxRate >= serialRate)
	return nil
}
