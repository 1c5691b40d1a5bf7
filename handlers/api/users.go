package api

import (
	"errors"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/settings"
)

// UserJSON is a platform user in the directory API.
type UserJSON struct {
	UUID     string  `json:"uuid"`
	Username string  `json:"username"`
	Email    string  `json:"email"`
	FullName string  `json:"full_name"`
	IsActive bool    `json:"is_active"`
	Source   string  `json:"source"` // "api" or "waldur" (the platform sync owns it)
	Created  *string `json:"created"`
	Modified *string `json:"modified"`
}

func userJSON(u *db.User) UserJSON {
	return UserJSON{UUID: u.UUID, Username: u.Username, Email: u.Email, FullName: u.FullName, IsActive: u.IsActive,
		Source: sourceName(u.Source), Created: apiTime(u.CreatedAt), Modified: apiTime(u.ModifiedAt)}
}

// platformUsernameRe is the platform's (Django's) username rule.
var platformUsernameRe = regexp.MustCompile(`^[\w.@+-]+$`)

const msgFieldRequired = "This field is required."

// msgStaffAccount refuses a directory write on a staff account (db.ErrStaffAccount).
const msgStaffAccount = "Staff accounts are not platform users: manage them on the Account page of the dashboard or with `matrixas createstaff`, not through this API."

// userInput merges the request's fields over base (the stored user for an update, the
// defaults for a create) and validates them. requireUsername is false only for PATCH.
func userInput(f map[string]string, base db.DirectoryUser, requireUsername bool) (db.DirectoryUser, respond.FieldErrors) {
	errs := respond.FieldErrors{}
	in := base
	if v, ok := f["username"]; ok {
		in.Username = strings.TrimSpace(v)
		switch {
		case in.Username == "":
			errs.Add("username", "This field may not be blank.")
		case utf8.RuneCountInString(in.Username) > 150:
			errs.Add("username", "Ensure this field has no more than 150 characters.")
		case !platformUsernameRe.MatchString(in.Username):
			errs.Add("username", "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.")
		}
	} else if requireUsername {
		errs.Add("username", msgFieldRequired)
	}
	if v, ok := f["email"]; ok {
		in.Email = strings.TrimSpace(v)
		if in.Email != "" {
			a, err := mail.ParseAddress(in.Email)
			if err != nil || a.Address != in.Email || len(in.Email) > 254 {
				errs.Add("email", "Enter a valid email address.")
			}
		}
	}
	if v, ok := f["full_name"]; ok {
		in.FullName = strings.TrimSpace(v)
		if utf8.RuneCountInString(in.FullName) > 150 {
			errs.Add("full_name", "Ensure this field has no more than 150 characters.")
		}
	}
	if v, ok := f["is_active"]; ok {
		b, valid := settings.ParseBool(v)
		if !valid {
			errs.Add("is_active", "Must be a valid boolean.")
		}
		in.IsActive = b
	}
	return in, errs
}

// uuidField reads an optional uuid field (with or without dashes).
func uuidField(f map[string]string, name string, errs respond.FieldErrors) string {
	v, ok := f[name]
	if !ok || strings.TrimSpace(v) == "" {
		return ""
	}
	u, valid := db.NormalizeUUID(strings.TrimSpace(v))
	if !valid {
		errs.Add(name, "Must be a valid UUID.")
	}
	return u
}

// ListUsers is GET /api/users/: the platform users, paginated; ?search= (username, name,
// email) and ?is_active= filter.
func (h *Handler) ListUsers(w http.ResponseWriter, r *http.Request) {
	f := db.UserFilter{Search: strings.TrimSpace(r.URL.Query().Get("search")), PlatformOnly: auth.HidesStaffAccounts(r.Context())}
	if s := r.URL.Query().Get("is_active"); s != "" {
		b, ok := settings.ParseBool(s)
		if !ok {
			respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"is_active": {"Must be a valid boolean."}})
			return
		}
		f.IsActive = &b
	}
	serveList(h, w, r, func(p db.Page) ([]*db.User, int, error) {
		f.Page = p
		return h.Store.ListUsers(r.Context(), f)
	}, userJSON)
}

// userFromPath loads the user named by {uuid}; it answers 404 itself, also for a staff
// account the caller may not see.
func (h *Handler) userFromPath(w http.ResponseWriter, r *http.Request) (*db.User, bool) {
	u, ok := respond.FromPath(w, r, h.Store.UserByUUID)
	if ok && u.IsStaff && auth.HidesStaffAccounts(r.Context()) {
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
		return nil, false
	}
	return u, ok
}

// writableUser loads the user named by {uuid} for a directory write: 404 when missing,
// 403 for a staff account, 409 for a user the platform sync owns (before the body is
// read, as the reference API checks permissions before it validates).
func (h *Handler) writableUser(w http.ResponseWriter, r *http.Request) (*db.User, bool) {
	u, ok := h.userFromPath(w, r)
	switch {
	case ok && u.IsStaff:
		respond.DetailError(w, http.StatusForbidden, msgStaffAccount)
		return nil, false
	case ok && u.Source != db.SourceAPI:
		respond.DetailError(w, http.StatusConflict, msgOwned("user"))
		return nil, false
	}
	return u, ok
}

// GetUser is GET /api/users/{uuid}/.
func (h *Handler) GetUser(w http.ResponseWriter, r *http.Request) {
	if u, ok := h.userFromPath(w, r); ok {
		respond.JSON(w, http.StatusOK, userJSON(u))
	}
}

// CreateUser is POST /api/users/: it upserts by the optional uuid, so a directory sync
// can replay it: 201 when created, 200 when the uuid existed and was updated.
func (h *Handler) CreateUser(w http.ResponseWriter, r *http.Request) {
	f, err := respond.ReadFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	errs := respond.FieldErrors{}
	id := uuidField(f, "uuid", errs)
	base := db.DirectoryUser{IsActive: true}
	if id != "" {
		old, err := h.Store.UserByUUID(r.Context(), id)
		switch {
		case err == nil && old.IsStaff:
			respond.DetailError(w, http.StatusForbidden, msgStaffAccount)
			return
		case err == nil && old.Source != db.SourceAPI:
			respond.DetailError(w, http.StatusConflict, msgOwned("user"))
			return
		case err == nil:
			base = directoryUser(old)
		case !errors.Is(err, db.ErrNotFound):
			respond.ServerError(w, r, err)
			return
		}
	}
	in, verrs := userInput(f, base, true)
	for k, v := range verrs {
		errs[k] = append(errs[k], v...)
	}
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	in.UUID = id
	h.saveUser(w, r, in)
}

func directoryUser(u *db.User) db.DirectoryUser {
	return db.DirectoryUser{UUID: u.UUID, Username: u.Username, Email: u.Email, FullName: u.FullName, IsActive: u.IsActive}
}

// UpdateUser is PUT and PATCH /api/users/{uuid}/: PUT needs the username, PATCH changes
// only the fields given.
func (h *Handler) UpdateUser(w http.ResponseWriter, r *http.Request) {
	old, ok := h.writableUser(w, r)
	if !ok {
		return
	}
	f, err := respond.ReadFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	in, errs := userInput(f, directoryUser(old), r.Method == http.MethodPut)
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	h.saveUser(w, r, in)
}

// DeactivateUser is POST /api/users/{uuid}/deactivate/: the user loses access and leaves
// every project room (the worker kicks them); roles are kept for a reactivation.
func (h *Handler) DeactivateUser(w http.ResponseWriter, r *http.Request) {
	old, ok := h.writableUser(w, r)
	if !ok {
		return
	}
	in := directoryUser(old)
	in.IsActive = false
	h.saveUser(w, r, in)
}

func (h *Handler) saveUser(w http.ResponseWriter, r *http.Request, in db.DirectoryUser) {
	rules, err := h.profileRules(r)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	u, created, err := h.Store.PutUser(r.Context(), in, rules)
	if errors.Is(err, db.ErrConflict) {
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"username": {"A user with that username already exists."}})
		return
	}
	if errors.Is(err, db.ErrStaffAccount) {
		respond.DetailError(w, http.StatusForbidden, msgStaffAccount)
		return
	}
	if owned(w, err) {
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	h.wake()
	respond.JSON(w, upsertStatus(created), userJSON(u))
}
