package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"matrixas/bot"
	"matrixas/db"
	"matrixas/handlers/respond"
)

// ProjectJSON is a platform project in the directory API, with its room's summary.
type ProjectJSON struct {
	UUID         string  `json:"uuid"`
	Name         string  `json:"name"`
	Description  string  `json:"description"`
	Customer     *string `json:"customer"`      // the customer's uuid, null when none
	CustomerName *string `json:"customer_name"` // null when no customer
	Source       string  `json:"source"`        // "api" or "waldur" (the platform sync owns it)
	Room         *string `json:"room"`          // the room's uuid, null when none
	RoomState    *string `json:"room_state"`    // null when no room
	MemberCount  int     `json:"member_count"`
	// Deleting: deleted while its room had to be disabled first; it goes once the room
	// is archived.
	Deleting bool    `json:"deleting"`
	Created  *string `json:"created"`
	Modified *string `json:"modified"`
}

func projectJSON(p *db.Project) ProjectJSON {
	out := ProjectJSON{UUID: p.UUID, Name: p.Name, Description: p.Description, MemberCount: p.MemberCount, Deleting: p.Deleting,
		Source: sourceName(p.Source), Created: apiTime(p.CreatedAt), Modified: apiTime(p.ModifiedAt)}
	if p.CustomerUUID != "" {
		c, n := p.CustomerUUID, p.CustomerName
		out.Customer, out.CustomerName = &c, &n
	}
	if p.RoomUUID != "" {
		room, state := p.RoomUUID, string(p.RoomState)
		out.Room, out.RoomState = &room, &state
	}
	return out
}

// projectInput merges the request's fields over base and validates them; requireName is
// false only for PATCH.
func projectInput(f map[string]string, base db.DirectoryProject, requireName bool) (db.DirectoryProject, respond.FieldErrors) {
	errs := respond.FieldErrors{}
	in := base
	if v, ok := f["name"]; ok {
		in.Name = strings.TrimSpace(v)
		switch {
		case in.Name == "":
			errs.Add("name", "This field may not be blank.")
		case utf8.RuneCountInString(in.Name) > 500:
			errs.Add("name", "Ensure this field has no more than 500 characters.")
		}
	} else if requireName {
		errs.Add("name", msgFieldRequired)
	}
	if v, ok := f["description"]; ok {
		in.Description = strings.TrimSpace(v)
		if utf8.RuneCountInString(in.Description) > 5000 {
			errs.Add("description", "Ensure this field has no more than 5000 characters.")
		}
	}
	if v, ok := f["customer"]; ok {
		in.CustomerUUID = ""
		if v = strings.TrimSpace(v); v != "" {
			u, valid := db.NormalizeUUID(v)
			if !valid {
				errs.Add("customer", "Must be a valid UUID.")
			}
			in.CustomerUUID = u
		}
	}
	return in, errs
}

// writableProject loads the project named by {uuid} for a write (its fields or its
// members): 404 when missing, 409 when the platform sync owns it (before the body is
// read).
func (h *Handler) writableProject(w http.ResponseWriter, r *http.Request) (*db.Project, bool) {
	p, ok := h.projectFromPath(w, r)
	if ok && p.Source != db.SourceAPI {
		respond.DetailError(w, http.StatusConflict, msgOwned("project"))
		return nil, false
	}
	return p, ok
}

// ListProjects is GET /api/projects/: paginated, ?search= on name and description,
// ?customer= a customer's uuid.
func (h *Handler) ListProjects(w http.ResponseWriter, r *http.Request) {
	f := db.ProjectFilter{Search: strings.TrimSpace(r.URL.Query().Get("search"))}
	if c := strings.TrimSpace(r.URL.Query().Get("customer")); c != "" {
		u, ok := db.NormalizeUUID(c)
		if !ok {
			respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"customer": {"Must be a valid UUID."}})
			return
		}
		f.CustomerUUID = u
	}
	serveList(h, w, r, func(p db.Page) ([]*db.Project, int, error) {
		f.Page = p
		return h.Store.ListProjects(r.Context(), f)
	}, projectJSON)
}

// projectFromPath loads the project named by {uuid}; it answers 404 itself.
func (h *Handler) projectFromPath(w http.ResponseWriter, r *http.Request) (*db.Project, bool) {
	return respond.FromPath(w, r, h.Store.ProjectByUUID)
}

// GetProject is GET /api/projects/{uuid}/.
func (h *Handler) GetProject(w http.ResponseWriter, r *http.Request) {
	if p, ok := h.projectFromPath(w, r); ok {
		respond.JSON(w, http.StatusOK, projectJSON(p))
	}
}

// CreateProject is POST /api/projects/: it upserts by the optional uuid (201 created,
// 200 updated). With AUTO_CREATE_ROOMS a new project's room is queued at once.
func (h *Handler) CreateProject(w http.ResponseWriter, r *http.Request) {
	f, err := respond.ReadFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	errs := respond.FieldErrors{}
	id := uuidField(f, "uuid", errs)
	in, verrs := projectInput(f, db.DirectoryProject{}, true)
	for k, v := range verrs {
		errs[k] = append(errs[k], v...)
	}
	if id != "" && len(errs) == 0 {
		// An update through POST keeps the description and customer unless given.
		if old, err := h.Store.ProjectByUUID(r.Context(), id); err == nil {
			if old.Source != db.SourceAPI {
				respond.DetailError(w, http.StatusConflict, msgOwned("project"))
				return
			}
			in, _ = projectInput(f, db.DirectoryProject{Name: old.Name, Description: old.Description, CustomerUUID: old.CustomerUUID}, true)
		} else if !errors.Is(err, db.ErrNotFound) {
			respond.ServerError(w, r, err)
			return
		}
	}
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	in.UUID = id
	h.saveProject(w, r, in)
}

// UpdateProject is PUT and PATCH /api/projects/{uuid}/.
func (h *Handler) UpdateProject(w http.ResponseWriter, r *http.Request) {
	old, ok := h.writableProject(w, r)
	if !ok {
		return
	}
	f, err := respond.ReadFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	in, errs := projectInput(f, db.DirectoryProject{UUID: old.UUID, Name: old.Name, Description: old.Description, CustomerUUID: old.CustomerUUID}, r.Method == http.MethodPut)
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	h.saveProject(w, r, in)
}

func (h *Handler) saveProject(w http.ResponseWriter, r *http.Request, in db.DirectoryProject) {
	p, created, err := h.Store.PutProject(r.Context(), in, h.AutoCreateRooms)
	var uc *db.UnknownCustomerError
	if errors.As(err, &uc) {
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"customer": {"No customer with uuid " + uc.UUID + "."}})
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
	h.wakeBot() // role changes are announced in the rooms
	respond.JSON(w, upsertStatus(created), projectJSON(p))
}

// DeleteProject is DELETE /api/projects/{uuid}/. A project whose room has nothing on the
// homeserver to close (no room, archived, never created) is deleted with it: 204. One
// whose room is live takes the disable path first ("Chat room was deactivated due to
// project termination" posted, everyone removed, the history exported) and is deleted
// with its room once that is archived: 202 with the project, "deleting": true, until
// then (asking again answers the same). A project the platform sync owns is 409 (it goes
// when the platform removes it).
func (h *Handler) DeleteProject(w http.ResponseWriter, r *http.Request) {
	p, ok := h.writableProject(w, r)
	if !ok {
		return
	}
	deleted, err := h.Store.DeleteProject(r.Context(), p.UUID, bot.RoomDeactivated(true))
	switch {
	case errors.Is(err, db.ErrNotFound):
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
	case err != nil:
		respond.ServerError(w, r, err)
	case deleted:
		w.WriteHeader(http.StatusNoContent)
	default:
		h.wake()
		h.wakeBot()
		if p, err = h.Store.ProjectByUUID(r.Context(), p.UUID); err != nil {
			respond.ServerError(w, r, err)
			return
		}
		respond.JSON(w, http.StatusAccepted, projectJSON(p))
	}
}

// MemberJSON is one project role in the members API. Role is the platform's name
// (PROJECT.ADMIN, PROJECT.MANAGER, PROJECT.MEMBER).
type MemberJSON struct {
	User     string  `json:"user"`
	Username string  `json:"username"`
	FullName string  `json:"full_name"`
	IsActive bool    `json:"is_active"`
	Role     string  `json:"role"`
	Created  *string `json:"created"`
}

// memberEntry is one item of a members request body.
type memberEntry struct {
	User string `json:"user"`
	Role string `json:"role"`
}

const msgBadRole = "%q is not a valid choice: use PROJECT.ADMIN, PROJECT.MANAGER or PROJECT.MEMBER (or admin, manager, member)."

// validMember checks one entry; prefix names its place in a list ("" for a single one).
func validMember(e memberEntry, prefix string, errs respond.FieldErrors) db.RoleInput {
	in := db.RoleInput{Role: strings.TrimSpace(e.Role)}
	switch u, ok := db.NormalizeUUID(strings.TrimSpace(e.User)); {
	case strings.TrimSpace(e.User) == "":
		errs.Add("user", prefix+msgFieldRequired)
	case !ok:
		errs.Add("user", prefix+"Must be a valid UUID.")
	default:
		in.UserUUID = u
	}
	switch {
	case in.Role == "":
		errs.Add("role", prefix+msgFieldRequired)
	default:
		role, ok := db.ParseProjectRole(in.Role)
		if !ok {
			errs.Add("role", prefix+fmt.Sprintf(msgBadRole, in.Role))
		}
		in.Role = role
	}
	return in
}

func (h *Handler) writeMembers(w http.ResponseWriter, r *http.Request, status int, p *db.Project) {
	roles, err := h.Store.ListRoles(r.Context(), p.ID)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	out := make([]MemberJSON, 0, len(roles))
	for _, m := range roles {
		out = append(out, MemberJSON{User: m.UserUUID, Username: m.Username, FullName: m.FullName, IsActive: m.IsActive,
			Role: m.Role, Created: apiTime(m.CreatedAt)})
	}
	respond.JSON(w, status, out)
}

// ListMembers is GET /api/projects/{uuid}/members/.
func (h *Handler) ListMembers(w http.ResponseWriter, r *http.Request) {
	if p, ok := h.projectFromPath(w, r); ok {
		h.writeMembers(w, r, http.StatusOK, p)
	}
}

// unknownUser answers a role write that named a user that does not exist.
func unknownUser(w http.ResponseWriter, err error, prefix func(uuid string) string) bool {
	var uu *db.UnknownUserError
	if !errors.As(err, &uu) {
		return false
	}
	respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"user": {prefix(uu.UUID) + "No user with uuid " + uu.UUID + "."}})
	return true
}

// upsertStatus is the status of a create-or-update: 201 when it created, else 200.
func upsertStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// roleWritten answers a failed write of one role (a project member's or a customer
// owner's) in the API's shape: 409 for a row the platform sync owns, 400 for an unknown
// user, 404 for a role that was not there. After a successful one it wakes the worker
// and the bot (role changes are announced in the rooms). It reports whether the write
// succeeded, the answer then being the caller's.
func (h *Handler) roleWritten(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case owned(w, err), unknownUser(w, err, func(string) string { return "" }):
		return false
	case errors.Is(err, db.ErrNotFound):
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
		return false
	case err != nil:
		respond.ServerError(w, r, err)
		return false
	}
	h.wake()
	h.wakeBot()
	return true
}

// SetMembers is PUT /api/projects/{uuid}/members/ with [{"user", "role"}, ...]: it
// replaces the whole member list in one transaction (users left out lose their role and
// are removed from the room) and answers the new list.
func (h *Handler) SetMembers(w http.ResponseWriter, r *http.Request) {
	p, ok := h.writableProject(w, r)
	if !ok {
		return
	}
	var entries []memberEntry
	if err := respond.DecodeJSON(r, &entries); err != nil {
		var bb respond.BadBodyError
		if errors.As(err, &bb) {
			respond.DetailError(w, http.StatusBadRequest, `Send a JSON list of {"user": "<user uuid>", "role": "PROJECT.ADMIN|PROJECT.MANAGER|PROJECT.MEMBER"} items.`)
			return
		}
		respond.BadBody(w, r, err)
		return
	}
	errs := respond.FieldErrors{}
	in := make([]db.RoleInput, 0, len(entries))
	seen := map[string]int{}
	index := map[string]int{}
	for i, e := range entries {
		prefix := fmt.Sprintf("Item %d: ", i+1)
		ri := validMember(e, prefix, errs)
		if ri.UserUUID != "" {
			if j, dup := seen[ri.UserUUID]; dup {
				errs.Add("user", fmt.Sprintf("%sUser %s is already listed as item %d.", prefix, ri.UserUUID, j))
			}
			seen[ri.UserUUID] = i + 1
			index[ri.UserUUID] = i + 1
		}
		in = append(in, ri)
	}
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	rules, err := h.profileRules(r)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	err = h.Store.SetRoles(r.Context(), p.ID, in, rules)
	if unknownUser(w, err, func(u string) string { return fmt.Sprintf("Item %d: ", index[u]) }) {
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	h.wake()
	h.wakeBot() // role changes are announced in the rooms
	h.writeMembers(w, r, http.StatusOK, p)
}

// AddMember is POST /api/projects/{uuid}/members/ {"user", "role"}: adds the user
// (201) or changes their role (200), answering the member list.
func (h *Handler) AddMember(w http.ResponseWriter, r *http.Request) {
	p, ok := h.writableProject(w, r)
	if !ok {
		return
	}
	var e memberEntry
	if err := respond.DecodeJSON(r, &e); err != nil {
		var bb respond.BadBodyError
		if errors.As(err, &bb) {
			respond.DetailError(w, http.StatusBadRequest, `Send a JSON object {"user": "<user uuid>", "role": "PROJECT.ADMIN|PROJECT.MANAGER|PROJECT.MEMBER"}.`)
			return
		}
		respond.BadBody(w, r, err)
		return
	}
	errs := respond.FieldErrors{}
	in := validMember(e, "", errs)
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	rules, err := h.profileRules(r)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	created, err := h.Store.PutRole(r.Context(), p.ID, in, rules)
	if !h.roleWritten(w, r, err) {
		return
	}
	h.writeMembers(w, r, upsertStatus(created), p)
}

// RemoveMember is DELETE /api/projects/{uuid}/members/{user}/: the user loses their
// role and is kicked from the room with "Role removed". 204; 404 when they had none.
func (h *Handler) RemoveMember(w http.ResponseWriter, r *http.Request) {
	p, ok := h.writableProject(w, r)
	if !ok {
		return
	}
	user, valid := db.NormalizeUUID(chi.URLParam(r, "user"))
	if !valid {
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
		return
	}
	if h.roleWritten(w, r, h.Store.DeleteRole(r.Context(), p.ID, user)) {
		w.WriteHeader(http.StatusNoContent)
	}
}
