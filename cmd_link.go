package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
)

// runLinkMatrixAccount links existing Matrix accounts to platform users on purpose, the
// fix the error of a refused account names (no silent takeover): one user to the given
// ID, or with --all every refused account to the user it was refused for. A homeserver
// admin account is refused when the homeserver lets the bot tell; the bot's own account
// and an ID another user has are always refused. It is POST
// /api/users/{uuid}/link_matrix_account/ from the shell.
func runLinkMatrixAccount(ctx context.Context, env *cliEnv, args []string) error {
	c := find("link-matrix-account")
	fs := c.flags(env)
	all := fs.Bool("all", false, "link every refused account to its user, each to the ID it was refused for")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitUsage
	}
	if (*all && fs.NArg() != 0) || (!*all && fs.NArg() != 2) {
		fs.Usage()
		return exitUsage
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
	if ms.HomeserverDomain == "" {
		//lint:ignore ST1005 printed to the operator as a sentence
		return errors.New("Matrix chat is not set up yet: the homeserver domain is not configured")
	}
	l := &linker{ms: ms, store: store, hc: matrix.HTTPClient(3*time.Second, 10*time.Second), out: env.stdout}
	if !*all {
		u, err := store.UserByUsername(ctx, fs.Arg(0))
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("no user %q", fs.Arg(0))
		}
		if err != nil {
			return err
		}
		uid, err := matrix.ParseLinkTarget(ms, fs.Arg(1))
		if err != nil {
			return fmt.Errorf("%s: %w", fs.Arg(1), err)
		}
		return l.link(ctx, u.ID, u.Username, uid)
	}
	refused, err := store.RefusedProfiles(ctx)
	if err != nil {
		return err
	}
	if len(refused) == 0 {
		fmt.Fprintln(env.stdout, "no refused accounts: nothing to link")
		return nil
	}
	failed := 0
	for _, p := range refused {
		if err := l.link(ctx, p.UserID, p.Username, p.MatrixUserID); err != nil {
			fmt.Fprintf(env.stdout, "not linked: %s to %s: %v\n", p.MatrixUserID, p.Username, err)
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d refused accounts not linked", failed, len(refused))
	}
	return nil
}

// linker links accounts and says what it did.
type linker struct {
	ms    *db.MatrixSettings
	store *db.Store
	hc    *http.Client
	out   io.Writer
}

// link checks uid with the homeserver and links it to the user.
func (l *linker) link(ctx context.Context, userID int64, username string, uid id.UserID) error {
	told, err := matrix.CheckLinkable(ctx, l.ms, l.hc, uid)
	switch {
	case errors.Is(err, matrix.ErrAdminAccount):
		return fmt.Errorf("%s: %w", uid, err)
	case err != nil:
		return fmt.Errorf("could not ask the homeserver whether %s is an admin account (%s): try again when it answers",
			uid, matrix.Redact(matrix.Reason(err), matrix.Secrets(l.ms)))
	}
	_, err = l.store.LinkAccount(ctx, userID, uid, l.ms.BotUserID())
	switch {
	case errors.Is(err, db.ErrMatrixIDTaken):
		return fmt.Errorf("%s is linked to another user", uid)
	case errors.Is(err, db.ErrHasAccount):
		return fmt.Errorf("%s already has a working Matrix account; it is not replaced", username)
	case err != nil:
		return err
	}
	fmt.Fprintf(l.out, "linked %s to %s; a running server sets it up and syncs their rooms within PROVISION_INTERVAL\n", uid, username)
	if !told {
		fmt.Fprintf(l.out, "note: the homeserver does not let the bot tell whether %s is a server admin (no admin API for it): make sure it is not one\n", uid)
	}
	return nil
}
