package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"matrixas/db"
)

// runReprovision is POST /api/admin/matrix/reprovision/ from the shell: every active room
// is re-created and every provisioned user re-registered on the homeserver the settings
// now name. It shows what it would reset and asks before changing anything.
func runReprovision(ctx context.Context, env *cliEnv, args []string) error {
	c := find("reprovision")
	fs := c.flags(env)
	dryRun := fs.Bool("dry-run", false, "print what would be reset and change nothing")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	if _, err := c.parse(env, fs, args, 0); err != nil {
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
	if !ms.Enabled {
		//lint:ignore ST1005 printed to the operator as a sentence
		return errors.New("Matrix chat is disabled: set the appservice up first")
	}
	would, err := store.Reprovision(ctx, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "homeserver: %s (server name %s)\n", ms.HomeserverURL, ms.HomeserverDomain)
	fmt.Fprintf(env.stdout, "would reprovision %d active rooms and reset %d provisioned users\n", would.Rooms, would.Users)
	if *dryRun {
		fmt.Fprintln(env.stdout, "dry run: nothing changed")
		return nil
	}
	if !*yes {
		fmt.Fprintf(env.stdout, "Every active room is created anew on %s and every user registered there again.\n"+
			"Rooms on the previous homeserver stay as they are; the new homeserver must have the same server name.\n"+
			"Type yes to continue: ", ms.HomeserverURL)
		answer, err := bufio.NewReader(env.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if strings.TrimSpace(answer) != "yes" {
			return errors.New("aborted: nothing changed")
		}
	}
	done, err := store.Reprovision(ctx, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "reprovisioned %d rooms and reset %d users; a running server picks them up within PROVISION_INTERVAL (or at its next start)\n",
		done.Rooms, done.Users)
	return nil
}
