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

// ErrAccountRefused means a user's Matrix ID belongs to an account that existed on the
// homeserver before this server asked for it, and nobody linked it: it is never used
// (no silent takeover). errors.Is finds it in the error provisioning returns.
var ErrAccountRefused = errors.New("the Matrix account exists and was not created by this server")

// refusedError is ErrAccountRefused with the message that says how to link the account.
type refusedError struct{ msg string }

func (e *refusedError) Error() string        { return e.msg }
func (e *refusedError) Is(target error) bool { return target == ErrAccountRefused }

// RefusalMessage is what staff (the user's page, the profiles API) and the user
// (GET /api/matrix/credentials/) are told about a refused account: what happened and the
// two ways to link it on purpose.
func RefusalMessage(username, userUUID string, uid id.UserID) string {
	return fmt.Sprintf("%s already exists on the homeserver and was not created by this server, so it is not used for %s. "+
		"If the account is theirs, link it on purpose: matrixas link-matrix-account %s %s (or --all for every refused account), "+
		"or POST /api/users/%s/link_matrix_account/.", uid, username, username, uid, userUUID)
}

// account is who provisionUser registers.
type account struct {
	UserID       int64
	UserUUID     string
	Username     string
	FullName     string
	MatrixUserID id.UserID
}

// userLock serialises everything done to one user's account (registering, signing out,
// locking) within this process: two registrations of the same ID racing each other
// could otherwise read each other's M_USER_IN_USE as someone else's account.
func (w *Worker) userLock(userID int64) func() {
	mu := &w.userLocks[uint64(userID)%uint64(len(w.userLocks))]
	mu.Lock()
	return mu.Unlock
}

// ensureProvisioned registers a member on the homeserver unless their profile says so.
func (w *Worker) ensureProvisioned(ctx context.Context, ms *db.MatrixSettings, m *db.DesiredMember) error {
	if m.Provisioned {
		return nil
	}
	a := account{UserID: m.UserID, UserUUID: m.UserUUID, Username: m.Username, FullName: m.FullName, MatrixUserID: m.MatrixUserID}
	if err := w.provisionUser(ctx, ms, a); err != nil {
		return err
	}
	if _, err := w.store.MarkProfileProvisioned(context.WithoutCancel(ctx), m.UserID, m.FullName); err != nil {
		return err
	}
	m.Provisioned = true
	return nil
}

// provisionUser makes sure the user's account exists and is theirs, unlocked, and named
// after them (full name, else username).
//
// No silent takeover: the registration (m.login.application_service) is recorded as sent
// before it leaves (db.BeginRegistration). M_USER_IN_USE then means our own account when
// an earlier registration of ours went unanswered (a crash, a timeout: the homeserver
// may have made it), or when the account was made or linked before; on a first attempt
// it means the account was there before we ever asked, and it is refused
// (ErrAccountRefused) until staff link it.
func (w *Worker) provisionUser(ctx context.Context, ms *db.MatrixSettings, a account) error {
	defer w.userLock(a.UserID)()
	bg := context.WithoutCancel(ctx) // what the homeserver did must be recorded
	st, err := w.store.BeginRegistration(ctx, a.UserID)
	if err != nil {
		return err
	}
	if st.Prior == db.RegistrationRefused {
		return &refusedError{RefusalMessage(a.Username, a.UserUUID, a.MatrixUserID)}
	}
	bot, err := matrix.Client(ms, w.opts.HTTPClient, "")
	if err != nil {
		return err
	}
	localpart, _, err := a.MatrixUserID.Parse()
	if err != nil {
		return fmt.Errorf("bad matrix user id %q: %w", a.MatrixUserID, err)
	}
	_, err = bot.MakeRequest(ctx, http.MethodPost, bot.BuildClientURL("v3", "register"), &mautrix.ReqRegister[any]{
		Username:     localpart,
		Type:         mautrix.AuthTypeAppservice,
		InhibitLogin: true,
	}, nil)
	fresh := err == nil // a new account has the homeserver's default display name
	if errors.Is(err, mautrix.MUserInUse) && st.Prior == db.RegistrationSent {
		// Most likely our own lost answer; but an admin account is never taken for one
		// when the homeserver lets the bot tell (the account appeared in between).
		if admin, aerr := matrix.IsServerAdmin(ctx, ms, w.opts.HTTPClient, a.MatrixUserID); aerr == nil && admin {
			st.Prior = db.RegistrationNone
		}
	}
	switch {
	case err == nil, errors.Is(err, mautrix.MUserInUse) && st.Prior != db.RegistrationNone:
		if _, err := w.store.FinishRegistration(bg, a.UserID, db.RegistrationCreated, ""); err != nil {
			return err
		}
	case errors.Is(err, mautrix.MUserInUse):
		msg := RefusalMessage(a.Username, a.UserUUID, a.MatrixUserID)
		after, ferr := w.store.FinishRegistration(bg, a.UserID, db.RegistrationRefused, msg)
		if ferr != nil {
			return ferr
		}
		if !after.Ours() { // else linked meanwhile: go on
			return &refusedError{msg}
		}
	default:
		if st.Prior == db.RegistrationNone && answered(err) {
			// The homeserver refused this request (M_EXCLUSIVE, M_LIMIT_EXCEEDED...), so
			// it made no account: the next M_USER_IN_USE is not ours.
			if _, ferr := w.store.FinishRegistration(bg, a.UserID, db.RegistrationNone, ""); ferr != nil {
				return ferr
			}
		}
		return step("register "+a.MatrixUserID.String(), err)
	}
	if st.Locked {
		// Deactivated and locked before: lift the lock. A homeserver without a lock the
		// bot may use cannot have been locked by it.
		if err := matrix.SetLocked(ctx, ms, w.opts.HTTPClient, a.MatrixUserID, false); err != nil && !errors.Is(err, matrix.ErrNoAdminAPI) {
			return step("unlock "+a.MatrixUserID.String(), err)
		}
	}
	user, err := matrix.Client(ms, w.opts.HTTPClient, a.MatrixUserID)
	if err != nil {
		return err
	}
	name := db.DisplayName(a.FullName, a.Username)
	// Setting a display name sends a member event to every room the user is in: only
	// when it changed. A new account is in no room and has the default name: set it.
	if !fresh {
		if cur, err := user.GetOwnDisplayName(ctx); err == nil && cur.DisplayName == name {
			return nil
		}
	}
	if err := user.SetDisplayName(ctx, name); err != nil {
		return step("set display name of "+a.MatrixUserID.String(), err)
	}
	return nil
}

// answered reports whether the homeserver answered err with an error of the caller's
// (4xx): the request was refused, not lost on the way.
func answered(err error) bool {
	var he mautrix.HTTPError
	return errors.As(err, &he) && he.Response != nil && he.Response.StatusCode >= 400 && he.Response.StatusCode < 500
}

// profileJob registers one user whose profile is pending.
func (w *Worker) profileJob(ctx context.Context, ms *db.MatrixSettings, p *db.Profile) {
	err := w.provisionUser(ctx, ms, profileAccount(p))
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
	if errors.Is(err, ErrAccountRefused) {
		// Recorded with the fix; not retried until someone links it.
		w.log.Warn("existing Matrix account refused", "user", p.Username, "matrix_user_id", p.MatrixUserID)
		return
	}
	msg := describe(ms, err)
	if ferr := w.store.FailProfile(context.WithoutCancel(ctx), p.UserID, msg, w.backoff); ferr != nil {
		w.logErr(ctx, "record user failure", ferr)
		return
	}
	w.log.Warn("user not provisioned; will retry", "user", p.MatrixUserID, "attempts", p.Attempts+1, "error", msg)
}

func profileAccount(p *db.Profile) account {
	return account{UserID: p.UserID, UserUUID: p.UserUUID, Username: p.Username, FullName: p.FullName, MatrixUserID: p.MatrixUserID}
}

// EnsureAccount makes the user's Matrix account ready now, for a caller who needs it at
// once (GET /api/matrix/credentials/, POST /api/matrix/session/): the profile is made
// when missing and provisioned when pending, through the same steps (and the same
// per-user lock) as the worker's. problem, when not "", says for people why the account
// is not ready (the appservice is not set up, the account is someone else's, the
// homeserver failed: also recorded on the profile); err is this server's own failure.
func (w *Worker) EnsureAccount(ctx context.Context, userID int64) (p *db.Profile, problem string, err error) {
	ms, err := w.settings.Matrix(ctx)
	if err != nil {
		return nil, "", err
	}
	if !ready(ms) {
		return nil, "Matrix chat is not set up yet.", nil
	}
	if _, err := w.store.EnsureProfile(ctx, userID, ms.ProfileRules()); err != nil {
		return nil, "", err
	}
	if p, err = w.store.ProfileByUserID(ctx, userID); err != nil {
		return nil, "", err
	}
	if p.Provisioned {
		return p, "", nil
	}
	if err := w.provisionUser(ctx, ms, profileAccount(p)); err != nil {
		if errors.Is(err, ErrAccountRefused) {
			return p, err.Error(), nil
		}
		if ctx.Err() != nil {
			return p, "", err
		}
		msg := describe(ms, err)
		if ferr := w.store.FailProfile(context.WithoutCancel(ctx), p.UserID, msg, w.backoff); ferr != nil {
			return p, "", ferr
		}
		return p, msg, nil
	}
	if _, err := w.store.MarkProfileProvisioned(context.WithoutCancel(ctx), p.UserID, p.FullName); err != nil {
		return p, "", err
	}
	p, err = w.store.ProfileByUserID(ctx, userID)
	return p, "", err
}

// deactivationJob does the homeserver side of a user's deactivation: every device of
// theirs is signed out, acting as them, and their account is locked where the homeserver
// offers an admin API the bot may use (matrix.SetLocked). Their rooms are the member
// sync's: it kicks a user without an active role.
func (w *Worker) deactivationJob(ctx context.Context, ms *db.MatrixSettings, p *db.Profile) {
	err := w.deactivate(ctx, ms, p)
	defer func() { w.observe(ctx, KindUserDeactivate, err) }()
	if err == nil || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		return
	}
	msg := describe(ms, err)
	if ferr := w.store.FailProfile(context.WithoutCancel(ctx), p.UserID, msg, w.backoff); ferr != nil {
		w.logErr(ctx, "record deactivation failure", ferr)
		return
	}
	w.log.Warn("deactivated user not signed out yet; will retry", "user", p.MatrixUserID, "attempts", p.Attempts+1, "error", msg)
}

func (w *Worker) deactivate(ctx context.Context, ms *db.MatrixSettings, p *db.Profile) error {
	defer w.userLock(p.UserID)()
	bg := context.WithoutCancel(ctx)
	if err := matrix.SignOutAll(ctx, ms, w.opts.HTTPClient, p.MatrixUserID); err != nil {
		return step("sign out "+p.MatrixUserID.String(), err)
	}
	lock, err := w.store.BeginLock(bg, p.UserID)
	if err != nil {
		return err
	}
	locked := false
	if lock { // else reactivated meanwhile
		err := matrix.SetLocked(ctx, ms, w.opts.HTTPClient, p.MatrixUserID, true)
		switch {
		case errors.Is(err, matrix.ErrNoAdminAPI):
			if err := w.store.LockUnsupported(bg, p.UserID); err != nil {
				return err
			}
		case err != nil:
			return step("lock "+p.MatrixUserID.String(), err)
		default:
			locked = true
		}
	}
	if err := w.store.MarkSignedOut(bg, p.UserID); err != nil {
		return err
	}
	w.log.Info("deactivated user signed out", "user", p.MatrixUserID, "locked", locked)
	return nil
}
