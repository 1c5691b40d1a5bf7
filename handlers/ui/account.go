package ui

import (
	"errors"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/views"
)

// Account is GET /account: change password, API tokens, staff users.
func (h *Handler) Account(w http.ResponseWriter, r *http.Request) {
	d, err := h.accountData(w, r)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.Render(w, r, views.AccountPage(d))
}

// accountData loads the page's lists; callers add form state before rendering.
func (h *Handler) accountData(w http.ResponseWriter, r *http.Request) (views.AccountData, error) {
	ctx := r.Context()
	me := auth.StaffFrom(ctx)
	d := views.AccountData{Page: h.page(w, r, "Account", "account"), UserID: me.ID, FullName: me.FullName}
	tokens, err := h.Store.ListAPITokens(ctx, me.ID)
	if err != nil {
		return d, err
	}
	for _, t := range tokens {
		d.Tokens = append(d.Tokens, views.TokenRow{ID: t.ID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt})
	}
	staff, err := h.Store.ListStaff(ctx)
	if err != nil {
		return d, err
	}
	for _, u := range staff {
		d.Staff = append(d.Staff, views.StaffRow{ID: u.ID, Username: u.Username, FullName: u.FullName, Email: u.Email,
			Active: u.IsActive, CreatedAt: u.CreatedAt, IsYou: u.ID == me.ID})
	}
	return d, nil
}

// passwordProblem says why pw may not be username's new password (auth's policy), or "".
func passwordProblem(username, pw string) string {
	if err := auth.CheckPasswordPolicy(username, pw); err != nil {
		return err.Error()
	}
	return ""
}

// ChangePassword is POST /account/password. Storing the new hash revokes every session
// of the user (db.SetPassword), this one included; the user is then bound to a fresh
// session here, so the browser that changed the password stays signed in while every
// other one (possibly an attacker's) is signed out.
func (h *Handler) ChangePassword(w http.ResponseWriter, r *http.Request) {
	if !h.readForm(w, r) {
		return
	}
	ctx := r.Context()
	me := auth.StaffFrom(ctx)
	current, next, confirm := r.PostFormValue("current_password"), r.PostFormValue("new_password"), r.PostFormValue("confirm_password")
	key := "password:" + strconv.FormatInt(me.ID, 10)

	rerender := func(status int, errs map[string]string, formErr string) {
		d, err := h.accountData(w, r)
		if err != nil {
			respond.ServerError(w, r, err)
			return
		}
		d.PasswordErrors, d.PasswordFormError = errs, formErr
		respond.RenderStatus(w, r, status, views.AccountPage(d))
	}
	if blocked, wait := h.Throttle.Blocked(key); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		rerender(http.StatusTooManyRequests, nil, "Too many wrong current passwords. Try again in "+strconv.Itoa(int(wait.Minutes())+1)+" minutes.")
		return
	}
	errs := map[string]string{}
	if !h.Passwords.Check(me.PasswordHash, current) {
		h.Throttle.Fail(key)
		errs["current_password"] = "This is not your current password."
	}
	if p := passwordProblem(me.Username, next); p != "" {
		errs["new_password"] = p
	} else if next == current && errs["current_password"] == "" {
		errs["new_password"] = "Choose a password different from the current one."
	}
	if confirm != next {
		errs["confirm_password"] = "The two new passwords differ."
	}
	if len(errs) > 0 {
		rerender(http.StatusOK, errs, "")
		return
	}
	h.Throttle.Reset(key)
	hash, err := h.Passwords.Hash(next)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if err := h.Store.SetPassword(ctx, me.ID, hash); err != nil {
		respond.ServerError(w, r, err)
		return
	}
	sess, err := h.Sessions.Get(r, auth.SessionCookie)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if err := h.Sessions.Login(ctx, sess, me); err != nil {
		respond.ServerError(w, r, err)
		return
	}
	h.redirectFlash(w, r, "/account", views.FlashSuccess, "Password changed. Every other session of your account was signed out.")
}

// CreateToken is POST /account/tokens. The token is shown in this response only (it is
// stored hashed), so this answers 200 with the page rather than redirecting: a
// redirect would have to carry the secret through the session.
func (h *Handler) CreateToken(w http.ResponseWriter, r *http.Request) {
	if !h.readForm(w, r) {
		return
	}
	ctx := r.Context()
	me := auth.StaffFrom(ctx)
	name := strings.TrimSpace(r.PostFormValue("name"))
	var problem string
	switch {
	case name == "":
		problem = "Give the token a name, so you can tell it apart later."
	case utf8.RuneCountInString(name) > 100:
		problem = "Use at most 100 characters."
	}
	if problem != "" {
		d, err := h.accountData(w, r)
		if err != nil {
			respond.ServerError(w, r, err)
			return
		}
		d.TokenName, d.TokenError = name, problem
		respond.Render(w, r, views.AccountPage(d))
		return
	}
	token, prefix, hash := auth.NewAPIToken()
	if _, err := h.Store.CreateAPIToken(ctx, me.ID, name, prefix, hash); err != nil {
		respond.ServerError(w, r, err)
		return
	}
	d, err := h.accountData(w, r)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	d.NewToken, d.NewTokenName = token, name
	w.Header().Set("Cache-Control", "no-store")
	respond.Render(w, r, views.AccountPage(d))
}

// RevokeToken is POST /account/tokens/{id}/revoke; only the user's own tokens.
func (h *Handler) RevokeToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	me := auth.StaffFrom(ctx)
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		respond.NotFound(w, r)
		return
	}
	err = h.Store.DeleteAPIToken(ctx, me.ID, id)
	switch {
	case errors.Is(err, db.ErrNotFound):
		h.redirectFlash(w, r, "/account", views.FlashError, "That token does not exist any more: nothing was revoked.")
	case err != nil:
		respond.ServerError(w, r, err)
	default:
		h.redirectFlash(w, r, "/account", views.FlashSuccess, "Token revoked: requests using it are refused from now on.")
	}
}

// usernameRe is what a new staff username may contain (Django's username rule).
var usernameRe = regexp.MustCompile(`^[\w.@+-]{1,150}$`)

// CreateStaff is POST /account/staff: a new staff user with a password.
func (h *Handler) CreateStaff(w http.ResponseWriter, r *http.Request) {
	if !h.readForm(w, r) {
		return
	}
	ctx := r.Context()
	form := views.StaffForm{
		Username: strings.TrimSpace(r.PostFormValue("username")),
		FullName: strings.TrimSpace(r.PostFormValue("full_name")),
		Email:    strings.TrimSpace(r.PostFormValue("email")),
	}
	password, confirm := r.PostFormValue("password"), r.PostFormValue("confirm_password")
	errs := map[string]string{}
	switch {
	case form.Username == "":
		errs["username"] = "Enter a username."
	case !usernameRe.MatchString(form.Username):
		errs["username"] = "Use at most 150 letters, digits and @ . + - _ (no spaces)."
	}
	if utf8.RuneCountInString(form.FullName) > 150 {
		errs["full_name"] = "Use at most 150 characters."
	}
	if form.Email != "" {
		if a, err := mail.ParseAddress(form.Email); err != nil || a.Address != form.Email {
			errs["email"] = "Enter a valid email address, or leave it empty."
		}
	}
	if p := passwordProblem(form.Username, password); p != "" {
		errs["password"] = p
	}
	if confirm != password {
		errs["confirm_password"] = "The two passwords differ."
	}
	rerender := func() {
		d, err := h.accountData(w, r)
		if err != nil {
			respond.ServerError(w, r, err)
			return
		}
		d.StaffForm, d.StaffErrors = form, errs
		respond.Render(w, r, views.AccountPage(d))
	}
	if len(errs) > 0 {
		rerender()
		return
	}
	hash, err := h.Passwords.Hash(password)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	u := &db.User{Username: form.Username, FullName: form.FullName, Email: form.Email, IsStaff: true, IsActive: true, PasswordHash: hash}
	err = h.Store.CreateUser(ctx, u)
	if errors.Is(err, db.ErrConflict) {
		errs["username"] = "This username is taken (by a staff or platform user)."
		rerender()
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	h.redirectFlash(w, r, "/account", views.FlashSuccess, "Staff user "+u.Username+" added. They can sign in now.")
}

// DeactivateStaff is POST /account/staff/{id}/deactivate.
func (h *Handler) DeactivateStaff(w http.ResponseWriter, r *http.Request) {
	h.setStaffActive(w, r, false)
}

// ActivateStaff is POST /account/staff/{id}/activate.
func (h *Handler) ActivateStaff(w http.ResponseWriter, r *http.Request) { h.setStaffActive(w, r, true) }

// setStaffActive (de)activates a staff user other than oneself: deactivating yourself
// could lock everyone out of the dashboard.
func (h *Handler) setStaffActive(w http.ResponseWriter, r *http.Request, active bool) {
	ctx := r.Context()
	me := auth.StaffFrom(ctx)
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		respond.NotFound(w, r)
		return
	}
	u, err := h.Store.UserByID(ctx, id)
	if errors.Is(err, db.ErrNotFound) || (err == nil && !u.IsStaff) {
		respond.NotFound(w, r) // platform users are managed by the platform, through the API
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if u.ID == me.ID {
		h.redirectFlash(w, r, "/account", views.FlashError, "You cannot deactivate yourself: ask another staff user.")
		return
	}
	err = h.Store.SetUserActive(ctx, u.ID, active)
	if errors.Is(err, db.ErrLastStaff) {
		// Another staff user deactivated everyone else meanwhile.
		h.redirectFlash(w, r, "/account", views.FlashError, u.Username+" is the last active staff user: deactivating them would leave no one who can sign in.")
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if active {
		h.redirectFlash(w, r, "/account", views.FlashSuccess, u.Username+" is active again and can sign in.")
		return
	}
	h.redirectFlash(w, r, "/account", views.FlashSuccess, u.Username+" is deactivated: signed out everywhere, API tokens revoked.")
}
