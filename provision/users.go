package provision

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
)

// ensureProvisioned registers a member on the homeserver unless their profile says so.
func (w *Worker) ensureProvisioned(ctx context.Context, ms *db.MatrixSettings, m *db.DesiredMember) error {
	if m.Provisioned {
		return nil
	}
	if err := w.provisionUser(ctx, ms, m.MatrixUserID, m.Username, m.FullName); err != nil {
		return err
	}
	if _, err := w.store.MarkProfileProvisioned(context.WithoutCancel(ctx), m.UserID, m.FullName); err != nil {
		return err
	}
	m.Provisioned = true
	return nil
}

// provisionUser registers a namespaced user through m.login.application_service
// (M_USER_IN_USE counts as done) and sets their display name (full name, else username).
func (w *Worker) provisionUser(ctx context.Context, ms *db.MatrixSettings, uid id.UserID, username, fullName string) error {
	bot, err := matrix.Client(ms, w.opts.HTTPClient, "")
	if err != nil {
		return err
	}
	localpart, _, err := uid.Parse()
	if err != nil {
		return fmt.Errorf("bad matrix user id %q: %w", uid, err)
	}
	_, err = bot.MakeRequest(ctx, http.MethodPost, bot.BuildClientURL("v3", "register"), &mautrix.ReqRegister[any]{
		Username:     localpart,
		Type:         mautrix.AuthTypeAppservice,
		InhibitLogin: true,
	}, nil)
	if err != nil && !errors.Is(err, mautrix.MUserInUse) {
		return step("register "+uid.String(), err)
	}
	fresh := err == nil // a new account has the homeserver's default display name
	user, err := matrix.Client(ms, w.opts.HTTPClient, uid)
	if err != nil {
		return err
	}
	name := db.DisplayName(fullName, username)
	// Setting a display name sends a member event to every room the user is in: only
	// when it changed. A new account is in no room and has the default name: set it.
	if !fresh {
		if cur, err := user.GetOwnDisplayName(ctx); err == nil && cur.DisplayName == name {
			return nil
		}
	}
	if err := user.SetDisplayName(ctx, name); err != nil {
		return step("set display name of "+uid.String(), err)
	}
	return nil
}

// profileJob registers one user whose profile is pending.
func (w *Worker) profileJob(ctx context.Context, ms *db.MatrixSettings, p *db.Profile) {
	err := w.provisionUser(ctx, ms, p.MatrixUserID, p.Username, p.FullName)
	defer func() { w.observe(ctx, KindUser, err) }()
	if err == nil {
		_, err = w.store.MarkProfileProvisioned(context.WithoutCancel(ctx), p.UserID, p.FullName)
		if err == nil {
			return
		}
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return
	}
	msg := describe(ms, err)
	if ferr := w.store.FailProfile(context.WithoutCancel(ctx), p.UserID, msg, w.backoff); ferr != nil {
		w.logErr(ctx, "record user failure", ferr)
		return
	}
	w.log.Warn("user not provisioned; will retry", "user", p.MatrixUserID, "attempts", p.Attempts+1, "error", msg)
}
