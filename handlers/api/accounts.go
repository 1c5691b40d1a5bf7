package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/id"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/matrix"
	"matrixas/settings"
)

// Accounts makes a user's Matrix account ready on demand; the provisioning worker
// implements it (provision.Worker.EnsureAccount).
type Accounts interface {
	// EnsureAccount returns the user's profile once their account is registered and
	// theirs. problem, when not "", says for people why it is not ready (a 503); err is
	// this server's own failure.
	EnsureAccount(ctx context.Context, userID int64) (p *db.Profile, problem string, err error)
}

// SessionsPerHour is how many Matrix sessions one user may ask POST /api/matrix/session/
// for within an hour: each is a new device on the homeserver, so a web chat should keep
// the one it got rather than ask again on every page.
const SessionsPerHour = 10

// msgChatDisabled is the reference's answer while Matrix chat is disabled.
const msgChatDisabled = "Matrix chat is disabled."

// CredentialsJSON is GET /api/matrix/credentials/: how the caller reaches their Matrix
// account from a Matrix client of their own.
type CredentialsJSON struct {
	// Method is MATRIX_EXTERNAL_LOGIN_METHOD: none, password or oidc.
	Method        string    `json:"method"`
	HomeserverURL string    `json:"homeserver_url"`
	MatrixUserID  id.UserID `json:"matrix_user_id"`
}

// SessionJSON is POST /api/matrix/session/: a Matrix session (a new device) for the caller.
type SessionJSON struct {
	UserID        id.UserID   `json:"user_id"`
	DeviceID      id.DeviceID `json:"device_id"`
	AccessToken   string      `json:"access_token"`
	HomeserverURL string      `json:"homeserver_url"`
}

// callerAccount makes the caller's Matrix account ready: it answers 404 while Matrix
// chat is disabled and 503 when the account cannot be provisioned, itself.
func (h *Handler) callerAccount(w http.ResponseWriter, r *http.Request) (*db.MatrixSettings, *db.Profile, bool) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return nil, nil, false
	}
	if !ms.Enabled {
		respond.DetailError(w, http.StatusNotFound, msgChatDisabled)
		return nil, nil, false
	}
	u := auth.UserFrom(r.Context())
	if u == nil || h.Accounts == nil {
		respond.DetailError(w, http.StatusServiceUnavailable, "Your Matrix account could not be set up now.")
		return nil, nil, false
	}
	p, problem, err := h.Accounts.EnsureAccount(r.Context(), u.ID)
	switch {
	case err != nil:
		respond.ServerError(w, r, err)
		return nil, nil, false
	case problem != "":
		respond.DetailError(w, http.StatusServiceUnavailable, "Your Matrix account could not be set up: "+problem)
		return nil, nil, false
	}
	return ms, p, true
}

// Credentials is GET /api/matrix/credentials/ (any authenticated user, for themselves):
// the account is provisioned on demand; 404 while Matrix chat is disabled, 503 when the
// account cannot be provisioned.
func (h *Handler) Credentials(w http.ResponseWriter, r *http.Request) {
	ms, p, ok := h.callerAccount(w, r)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	respond.JSON(w, http.StatusOK, CredentialsJSON{
		Method:        ms.Value(settings.ExternalLoginMethod),
		HomeserverURL: ms.PublicURL(),
		MatrixUserID:  p.MatrixUserID,
	})
}

// Session is POST /api/matrix/session/ (any authenticated user, for themselves): a new
// Matrix session made with the appservice login (m.login.application_service), so that a
// platform's web chat can open the caller's rooms without a password. SessionsPerHour per
// user, then 429; the access token is in the answer only (never logged, never stored).
func (h *Handler) Session(w http.ResponseWriter, r *http.Request) {
	if u := auth.UserFrom(r.Context()); u != nil && h.SessionThrottle != nil {
		key := "session:" + u.UUID
		if blocked, wait := h.SessionThrottle.Blocked(key); blocked {
			secs := int(wait.Seconds()) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			respond.DetailError(w, http.StatusTooManyRequests, fmt.Sprintf("Request was throttled. Expected available in %d seconds.", secs))
			return
		}
		h.SessionThrottle.Fail(key) // every request counts: each may make a device
	}
	ms, p, ok := h.callerAccount(w, r)
	if !ok {
		return
	}
	s, err := matrix.LoginAs(r.Context(), ms, h.HTTPClient, p.MatrixUserID, siteName(ms)+" web chat")
	if err != nil {
		respond.DetailError(w, http.StatusServiceUnavailable,
			"The homeserver did not open a session: "+matrix.Redact(matrix.Reason(err), matrix.Secrets(ms)))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	respond.JSON(w, http.StatusOK, SessionJSON{UserID: s.UserID, DeviceID: s.DeviceID, AccessToken: s.AccessToken, HomeserverURL: ms.PublicURL()})
}

// siteName is SITE_NAME.
func siteName(ms *db.MatrixSettings) string {
	if s := strings.TrimSpace(ms.Value(settings.SiteName)); s != "" {
		return s
	}
	return settings.SiteName.Default
}

// LinkMatrixAccount is POST /api/users/{uuid}/link_matrix_account/ (staff): the API of
// "matrixas link-matrix-account". It links an existing Matrix account to the user on
// purpose: body {"matrix_user_id": "@id:domain"}, by default the ID the user's profile
// has (the refused one) or would get. Refused: another domain, the bot's account (400),
// a homeserver admin account when the homeserver lets the bot tell (400), an ID linked to
// another user or a second account for a user whose own works (409). 200 with the
// profile; the worker then provisions it (display name) and syncs the user's rooms.
func (h *Handler) LinkMatrixAccount(w http.ResponseWriter, r *http.Request) {
	u, ok := h.userFromPath(w, r)
	if !ok {
		return
	}
	f, err := respond.ReadFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	ctx := r.Context()
	ms, err := h.Settings.Matrix(ctx)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if ms.HomeserverDomain == "" {
		respond.DetailError(w, http.StatusBadRequest, "Matrix chat is not set up yet: the homeserver domain is not configured.")
		return
	}
	target := strings.TrimSpace(f["matrix_user_id"])
	if target == "" {
		mxid, err := h.Store.EnsureProfile(ctx, u.ID, ms.ProfileRules())
		if err != nil {
			respond.ServerError(w, r, err)
			return
		}
		target = mxid.String()
	}
	uid, err := matrix.ParseLinkTarget(ms, target)
	if err != nil {
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"matrix_user_id": {upperFirst(err.Error()) + "."}})
		return
	}
	if _, err := matrix.CheckLinkable(ctx, ms, h.HTTPClient, uid); err != nil {
		if errors.Is(err, matrix.ErrAdminAccount) {
			respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"matrix_user_id": {uid.String() + ": " + err.Error() + "."}})
			return
		}
		respond.DetailError(w, http.StatusServiceUnavailable, fmt.Sprintf("Could not ask the homeserver whether %s is an admin account (%s): try again when it answers.",
			uid, matrix.Redact(matrix.Reason(err), matrix.Secrets(ms))))
		return
	}
	p, err := h.Store.LinkAccount(ctx, u.ID, uid, ms.BotUserID())
	switch {
	case errors.Is(err, db.ErrMatrixIDTaken):
		respond.DetailError(w, http.StatusConflict, uid.String()+" is linked to another user.")
		return
	case errors.Is(err, db.ErrHasAccount):
		respond.DetailError(w, http.StatusConflict, u.Username+" already has a working Matrix account; it is not replaced.")
		return
	case err != nil:
		respond.ServerError(w, r, err)
		return
	}
	by := ""
	if s := auth.UserFrom(ctx); s != nil {
		by = s.Username
	}
	h.Log.Info("matrix account linked", "by", by, "user", u.Username, "matrix_user_id", uid)
	h.wake()
	respond.JSON(w, http.StatusOK, profileJSON(p))
}

// upperFirst capitalises a sentence's first letter.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
