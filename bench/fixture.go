package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"matrixas/db"
	"matrixas/settings"
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
	// The production defaults: log level info (a delivered transaction's access-log line
	// is at debug; refusals and failures are logged), text, to standard error.
	env := map[string]string{"LISTEN_ADDR": addr, "DATABASE_PATH": path}
	cfg, err := web.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		return err
	}
	store, err := db.Open(ctx, cfg.DatabasePath)
	if err != nil {
		return err
	}
	defer store.Close()
	st := db.NewSettings(store, nil)
	if err := st.Set(ctx, map[string]string{
		settings.HSToken.Key: token, settings.ASToken.Key: "bench_as_token", settings.Enabled.Key: "true",
		settings.HomeserverURL.Key: "http://127.0.0.1:9", settings.HomeserverDomain.Key: "bench.example.org",
		settings.AppserviceURL.Key: "http://" + addr,
	}); err != nil {
		return err
	}
	web.TuneRuntime(os.Getenv) // as `serve` does
	logw := web.NewBufferedWriter(os.Stderr)
	defer logw.Close()
	srv, err := web.New(ctx, cfg, store, web.NewLogger(cfg, logw), "bench")
	if err != nil {
		return err
	}
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" { // for looking into the hot path
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return srv.Run(ctx)
}
