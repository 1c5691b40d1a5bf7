package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"matrixas/db"
	"matrixas/web"
)

// serveFixture runs the real server on a fresh database that is already set up with a
// known hs_token, as the webhook load generators expect (peer-bench's TOKEN).
func serveFixture(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: bench serve ADDR DB_PATH HS_TOKEN")
	}
	addr, path, token := args[0], args[1], args[2]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := map[string]string{"LISTEN_ADDR": addr, "DATABASE_PATH": path, "LOG_LEVEL": "error"}
	cfg, err := web.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		return err
	}
	store, err := db.Open(ctx, cfg.DatabasePath)
	if err != nil {
		return err
	}
	defer store.Close()
	settings := db.NewSettings(store, nil)
	if err := settings.Set(ctx, map[string]string{
		db.SettingHSToken: token, db.SettingASToken: "bench_as_token", db.SettingEnabled: "true",
		db.SettingHomeserverURL: "http://127.0.0.1:9", db.SettingHomeserverDomain: "bench.example.org",
		db.SettingAppserviceURL: "http://" + addr,
	}); err != nil {
		return err
	}
	srv, err := web.New(ctx, cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)), "bench")
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
