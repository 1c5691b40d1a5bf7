package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"matrixas/platform"
	"matrixas/web"
)

// runSync runs one full reconcile with the platform from the shell and prints the
// differences it found, one per line; --dry-run changes nothing. It needs the same
// configuration as the server (WALDUR_URL, WALDUR_TOKEN, DATABASE_PATH).
func runSync(ctx context.Context, env *cliEnv, args []string) error {
	c := find("sync")
	fs := c.flags(env)
	dryRun := fs.Bool("dry-run", false, "print the differences and change nothing")
	if _, err := c.parse(env, fs, args, 0); err != nil {
		return helpOK(err)
	}
	cfg, store, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	defer store.Close()
	if !cfg.Platform.Enabled() {
		return errors.New("no platform is configured: set WALDUR_URL and WALDUR_TOKEN (or WALDUR_TOKEN_FILE)")
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sync, err := web.NewPlatformSync(cfg, store, log, version)
	if err != nil {
		return err
	}
	st, err := sync.Status(ctx, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "platform: %s (token %s)\n", st.URL, st.TokenFingerprint)
	res, err := sync.Sync(ctx, true, *dryRun)
	if err != nil {
		return fmt.Errorf("the sync failed and changed nothing: %s", platform.Describe(err))
	}
	n := 0
	res.Diff.Lines(func(line string) {
		fmt.Fprintln(env.stdout, line)
		n++
	})
	k := res.Counts
	fmt.Fprintf(env.stdout, "%d differences (created/updated/removed): customers %d/%d/%d, users %d/%d/%d, projects %d/%d/%d, roles %d/%d/%d; %d requests\n",
		res.Counts.Total(), k.Customers.Created, k.Customers.Updated, k.Customers.Removed, k.Users.Created, k.Users.Updated, k.Users.Removed,
		k.Projects.Created, k.Projects.Updated, k.Projects.Removed, k.Roles.Created, k.Roles.Updated, k.Roles.Removed, res.Requests)
	for _, p := range res.Pending {
		fmt.Fprintf(env.stdout, "not removed yet (retried by the next run): %s\n", p)
	}
	switch {
	case *dryRun:
		fmt.Fprintln(env.stdout, "dry run: nothing changed")
	case n > 0:
		fmt.Fprintln(env.stdout, "applied; a running server's worker follows within PROVISION_INTERVAL")
	}
	return nil
}
