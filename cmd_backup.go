package main

import (
	"context"
	"errors"
	"fmt"

	"matrixas/db"
	"matrixas/matrix"
	"matrixas/web"
)

// runBackup writes a consistent copy of the database with VACUUM INTO, which reads one
// snapshot: the server may keep writing meanwhile.
func runBackup(ctx context.Context, env *cliEnv, args []string) error {
	c := find("backup")
	rest, err := c.parse(env, c.flags(env), args, 1)
	if err != nil {
		return helpOK(err)
	}
	cfg, err := web.LoadConfig(env.getenv)
	if err != nil {
		return err
	}
	store, err := db.OpenNoMigrate(cfg.DatabasePath)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Backup(ctx, rest[0]); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "backed up %s to %s\n", cfg.DatabasePath, rest[0])
	return nil
}

// runRegistration prints the registration the homeserver needs (the same as the
// dashboard's download), so it can be installed from the shell.
func runRegistration(ctx context.Context, env *cliEnv, args []string) error {
	c := find("registration")
	if _, err := c.parse(env, c.flags(env), args, 0); err != nil {
		return helpOK(err)
	}
	cfg, store, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	defer store.Close()
	ms, err := db.NewSettings(store, cfg.FixedSettings()).Matrix(ctx)
	if err != nil {
		return err
	}
	reg, err := matrix.BuildRegistration(ms)
	if errors.Is(err, matrix.ErrNotSetUp) {
		return errors.New("the appservice is not set up yet: run setup in the dashboard or POST /api/admin/matrix-appservice/setup/ first")
	}
	if err != nil {
		return err
	}
	yaml, err := reg.YAML()
	if err != nil {
		return err
	}
	fmt.Fprint(env.stdout, yaml)
	return nil
}
