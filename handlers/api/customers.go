package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"matrixas/db"
	"matrixas/handlers/respond"
)

// sourceName is how a row's owner reads in the API: "api" (pushed through this API) or
// "waldur" (mirrored by the platform sync, which owns it).
func sourceName(source string) string {
	if source == db.SourceAPI {
		return "api"
	}
	return source
}

// msgOwned refuses a directory write to a row the platform sync owns.
func msgOwned(kind string) string {
	return fmt.Sprintf("This %s is mirrored from the platform (Waldur) by the platform sync, which owns it: change it on the platform. "+
		"Directory API writes are for rows this API created.", kind)
}

// owned answers 409 when err is a write refused because the platform sync owns the row.
func owned(w http.ResponseWriter, err error) bool {
	var oe *db.OwnedError
	if !errors.As(err, &oe) {
		return false
	}
	respond.DetailError(w, http.StatusConflict, msgOwned(oe.Kind))
	return true
}

// CustomerJSON is a platform customer (organisation) in the directory API: its owners
// are members of every room of its projects.
type CustomerJSON struct {
	UUID         string  `json:"uuid"`
	Name         string  `json:"name"`
	Abbreviation string  `json:"abbreviation"`
	Source       string  `json:"source"` // "api" or "waldur"
	ProjectCount int     `json:"project_count"`
	OwnerCount   int     `json:"owner_count"`
	Created      *string `json:"created"`
	Modified     *string `json:"modified"`
}

func customerJSON(c *db.Customer) CustomerJSON {
	return CustomerJSON{UUID: c.UUID, Name: c.Name, Abbreviation: c.Abbreviation, Source: sourceName(c.Source),
		ProjectCount: c.ProjectCount, OwnerCount: c.OwnerCount, Created: apiTime(c.CreatedAt), Modified: apiTime(c.ModifiedAt)}
}

// customerInput merges the request's fields over base and validates them; requireName is
// false only for PATCH.
func customerInput(f map[string]string, base db.DirectoryCustomer, requireName bool) (db.DirectoryCustomer, respond.FieldErrors) {
	errs := respond.FieldErrors{}
	in := base
	if v, ok := f["name"]; ok {
		in.Name = strings.TrimSpace(v)
		switch {
		case in.Name == "":
			errs.Add("name", "This field may not be blank.")
		case utf8.RuneCountInString(in.Name) > 150:
			errs.Add("name", "Ensure this field has no more than 150 characters.")
		}
	} else if requireName {
		errs.Add("name", msgFieldRequired)
	}
	if v, ok := f["abbreviation"]; ok {
		in.Abbreviation = strings.TrimSpace(v)
		if utf8.RuneCountInString(in.Abbreviation) > 12 {
			errs.Add("abbreviation", "Ensure this field has no more than 12 characters.")
		}
	}
	return in, errs
}

// ListCustomers is GET /api/customers/: paginated, ?search= on name and abbreviation.
func (h *Handler) ListCustomers(w http.ResponseWriter, r *http.Request) {
	f := db.CustomerFilter{Search: strings.TrimSpace(r.URL.Query().Get("search"))}
	serveList(h, w, r, func(p db.Page) ([]*db.Customer, int, error) {
		f.Page = p
		return h.Store.ListCustomers(r.Context(), f)
	}, customerJSON)
}

func (h *Handler) customerFromPath(w http.ResponseWriter, r *http.Request) (*db.Customer, bool) {
	return respond.FromPath(w, r, h.Store.CustomerByUUID)
}

// writableCustomer loads the customer named by {uuid} for a write: 404 when missing, 409
// when the platform sync owns it (before the body is read).
func (h *Handler) writableCustomer(w http.ResponseWriter, r *http.Request) (*db.Customer, bool) {
	c, ok := h.customerFromPath(w, r)
	if ok && c.Source != db.SourceAPI {
		respond.DetailError(w, http.StatusConflict, msgOwned("customer"))
		return nil, false
	}
	return c, ok
}

// GetCustomer is GET /api/customers/{uuid}/.
func (h *Handler) GetCustomer(w http.ResponseWriter, r *http.Request) {
	if c, ok := h.customerFromPath(w, r); ok {
		respond.JSON(w, http.StatusOK, customerJSON(c))
	}
}

// CreateCustomer is POST /api/customers/: it upserts by the optional uuid (201 created,
// 200 updated), like the projects' push API. 409 for a customer the platform sync owns.
func (h *Handler) CreateCustomer(w http.ResponseWriter, r *http.Request) {
	f, err := respond.ReadFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	errs := respond.FieldErrors{}
	id := uuidField(f, "uuid", errs)
	base := db.DirectoryCustomer{}
	if id != "" && len(errs) == 0 {
		switch old, err := h.Store.CustomerByUUID(r.Context(), id); {
		case err == nil && old.Source != db.SourceAPI:
			respond.DetailError(w, http.StatusConflict, msgOwned("customer"))
			return
		case err == nil:
			base = db.DirectoryCustomer{Name: old.Name, Abbreviation: old.Abbreviation}
		case !errors.Is(err, db.ErrNotFound):
			respond.ServerError(w, r, err)
			return
		}
	}
	in, verrs := customerInput(f, base, true)
	for k, v := range verrs {
		errs[k] = append(errs[k], v...)
	}
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	in.UUID = id
	h.saveCustomer(w, r, in)
}

// UpdateCustomer is PUT and PATCH /api/customers/{uuid}/.
func (h *Handler) UpdateCustomer(w http.ResponseWriter, r *http.Request) {
	old, ok := h.writableCustomer(w, r)
	if !ok {
		return
	}
	f, err := respond.ReadFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	in, errs := customerInput(f, db.DirectoryCustomer{UUID: old.UUID, Name: old.Name, Abbreviation: old.Abbreviation}, r.Method == http.MethodPut)
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	h.saveCustomer(w, r, in)
}

func (h *Handler) saveCustomer(w http.ResponseWriter, r *http.Request, in db.DirectoryCustomer) {
	c, created, err := h.Store.PutCustomer(r.Context(), in)
	if owned(w, err) {
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.JSON(w, upsertStatus(created), customerJSON(c))
}

// DeleteCustomer is DELETE /api/customers/{uuid}/: 204; its owners leave the rooms of
// its projects, which stay (without a customer). 409 for a customer the sync owns.
func (h *Handler) DeleteCustomer(w http.ResponseWriter, r *http.Request) {
	c, ok := h.writableCustomer(w, r)
	if !ok {
		return
	}
	err := h.Store.DeleteCustomer(r.Context(), c.UUID)
	switch {
	case owned(w, err):
	case errors.Is(err, db.ErrNotFound):
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
	case err != nil:
		respond.ServerError(w, r, err)
	default:
		h.wake()
		h.wakeBot() // role changes are announced in the rooms
		w.WriteHeader(http.StatusNoContent)
	}
}

// OwnerJSON is one owner of a customer (role CUSTOMER.OWNER).
type OwnerJSON struct {
	User     string  `json:"user"`
	Username string  `json:"username"`
	FullName string  `json:"full_name"`
	IsActive bool    `json:"is_active"`
	Role     string  `json:"role"`
	Created  *string `json:"created"`
}

// ownerEntry is one item of an owners request body.
type ownerEntry struct {
	User string `json:"user"`
	Role string `json:"role"` // optional; CUSTOMER.OWNER (or "owner") when given
}

func validOwner(e ownerEntry, prefix string, errs respond.FieldErrors) string {
	id := ""
	switch u, ok := db.NormalizeUUID(strings.TrimSpace(e.User)); {
	case strings.TrimSpace(e.User) == "":
		errs.Add("user", prefix+msgFieldRequired)
	case !ok:
		errs.Add("user", prefix+"Must be a valid UUID.")
	default:
		id = u
	}
	if role := strings.TrimSpace(e.Role); role != "" && !strings.EqualFold(role, db.RoleCustomerOwner) && !strings.EqualFold(role, "owner") {
		errs.Add("role", prefix+fmt.Sprintf("%q is not a valid choice: a customer's role is CUSTOMER.OWNER.", role))
	}
	return id
}

func (h *Handler) writeOwners(w http.ResponseWriter, r *http.Request, status int, c *db.Customer) {
	owners, err := h.Store.ListCustomerOwners(r.Context(), c.ID)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	out := make([]OwnerJSON, 0, len(owners))
	for _, o := range owners {
		out = append(out, OwnerJSON{User: o.UserUUID, Username: o.Username, FullName: o.FullName, IsActive: o.IsActive,
			Role: db.RoleCustomerOwner, Created: apiTime(o.CreatedAt)})
	}
	respond.JSON(w, status, out)
}

// ListOwners is GET /api/customers/{uuid}/owners/.
func (h *Handler) ListOwners(w http.ResponseWriter, r *http.Request) {
	if c, ok := h.customerFromPath(w, r); ok {
		h.writeOwners(w, r, http.StatusOK, c)
	}
}

// SetOwners is PUT /api/customers/{uuid}/owners/ with [{"user"}, ...]: it replaces the
// owners in one transaction (owners left out leave the rooms of the customer's
// projects) and answers the new list.
func (h *Handler) SetOwners(w http.ResponseWriter, r *http.Request) {
	c, ok := h.writableCustomer(w, r)
	if !ok {
		return
	}
	var entries []ownerEntry
	if err := respond.DecodeJSON(r, &entries); err != nil {
		var bb respond.BadBodyError
		if errors.As(err, &bb) {
			respond.DetailError(w, http.StatusBadRequest, `Send a JSON list of {"user": "<user uuid>"} items.`)
			return
		}
		respond.BadBody(w, r, err)
		return
	}
	errs := respond.FieldErrors{}
	users := make([]string, 0, len(entries))
	seen := map[string]int{}
	for i, e := range entries {
		prefix := fmt.Sprintf("Item %d: ", i+1)
		id := validOwner(e, prefix, errs)
		if id == "" {
			continue
		}
		if j, dup := seen[id]; dup {
			errs.Add("user", fmt.Sprintf("%sUser %s is already listed as item %d.", prefix, id, j))
		}
		seen[id] = i + 1
		users = append(users, id)
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
	err = h.Store.SetCustomerOwners(r.Context(), c.UUID, users, rules)
	if owned(w, err) || unknownUser(w, err, func(u string) string { return fmt.Sprintf("Item %d: ", seen[u]) }) {
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	h.wake()
	h.wakeBot() // role changes are announced in the rooms
	h.writeOwners(w, r, http.StatusOK, c)
}

// AddOwner is POST /api/customers/{uuid}/owners/ {"user"}: makes the user an owner (201,
// or 200 when they were one), answering the owners.
func (h *Handler) AddOwner(w http.ResponseWriter, r *http.Request) {
	c, ok := h.writableCustomer(w, r)
	if !ok {
		return
	}
	var e ownerEntry
	if err := respond.DecodeJSON(r, &e); err != nil {
		var bb respond.BadBodyError
		if errors.As(err, &bb) {
			respond.DetailError(w, http.StatusBadRequest, `Send a JSON object {"user": "<user uuid>"}.`)
			return
		}
		respond.BadBody(w, r, err)
		return
	}
	errs := respond.FieldErrors{}
	id := validOwner(e, "", errs)
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	rules, err := h.profileRules(r)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	created, err := h.Store.PutCustomerOwner(r.Context(), c.UUID, id, rules)
	if !h.roleWritten(w, r, err) {
		return
	}
	h.writeOwners(w, r, upsertStatus(created), c)
}

// RemoveOwner is DELETE /api/customers/{uuid}/owners/{user}/: 204; the user leaves the
// rooms of the customer's projects (unless a project role keeps them there). 404 when
// they were no owner.
func (h *Handler) RemoveOwner(w http.ResponseWriter, r *http.Request) {
	c, ok := h.writableCustomer(w, r)
	if !ok {
		return
	}
	user, valid := db.NormalizeUUID(chi.URLParam(r, "user"))
	if !valid {
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
		return
	}
	if h.roleWritten(w, r, h.Store.DeleteCustomerOwner(r.Context(), c.UUID, user)) {
		w.WriteHeader(http.StatusNoContent)
	}
}
