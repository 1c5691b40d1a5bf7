package ui

import (
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/views"
)

func projectRow(p *db.Project) views.ProjectRow {
	return views.ProjectRow{UUID: p.UUID, Name: p.Name, Description: p.Description, MemberCount: p.MemberCount,
		RoomUUID: p.RoomUUID, RoomState: string(p.RoomState), CreatedAt: p.CreatedAt}
}

// ProjectsPage is GET /projects: search and paginate; htmx gets only the table.
func (h *Handler) ProjectsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	search := strings.TrimSpace(q.Get("search"))
	page := pageNumber(q)
	projects, total, err := h.Store.ListProjects(r.Context(), db.ProjectFilter{Search: search, Page: db.Page{Number: page, Size: uiPageSize}})
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	d := views.ProjectsData{Page: h.page(w, r, "Projects", "projects"), Search: search,
		Pager: views.Pager{Page: page, PageSize: uiPageSize, Total: total, Target: "#projects-table",
			Link: func(n int) string { return views.ListLink("/projects", search, n) }}}
	for _, p := range projects {
		d.Rows = append(d.Rows, projectRow(p))
	}
	w.Header().Set("Vary", "HX-Request")
	if htmxTarget(r) == "projects-table" {
		pushCleanURL(w, r, views.ListLink("/projects", search, page))
		respond.Render(w, r, views.ProjectsTable(d))
		return
	}
	respond.Render(w, r, views.ProjectsPage(d))
}

// uiProjectFromPath loads the project named by {uuid}; it answers 404 itself.
func (h *Handler) uiProjectFromPath(w http.ResponseWriter, r *http.Request) (*db.Project, bool) {
	id, ok := db.NormalizeUUID(chi.URLParam(r, "uuid"))
	if !ok {
		h.uiFail(w, r, http.StatusNotFound, "There is no such project.")
		return nil, false
	}
	p, err := h.Store.ProjectByUUID(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		h.uiFail(w, r, http.StatusNotFound, "There is no such project.")
		return nil, false
	}
	if err != nil {
		h.uiServerError(w, r, err)
		return nil, false
	}
	return p, true
}

// ProjectDetail is GET /projects/{uuid}: the project, its members and its room.
func (h *Handler) ProjectDetail(w http.ResponseWriter, r *http.Request) {
	p, ok := h.uiProjectFromPath(w, r)
	if !ok {
		return
	}
	roles, err := h.Store.ListRoles(r.Context(), p.ID)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	d := views.ProjectDetailData{Page: h.page(w, r, p.Name+" · Projects", "projects"), Project: projectRow(p)}
	for _, role := range roles {
		d.Members = append(d.Members, views.ProjectMemberRow{UserUUID: role.UserUUID, Username: role.Username, FullName: role.FullName,
			Active: role.IsActive, Role: role.Role, Since: role.CreatedAt})
	}
	respond.Render(w, r, views.ProjectDetailPage(d))
}

// ProjectCreateRoom is POST /projects/{uuid}/room: queue the project's room (as
// POST /api/matrix-rooms/ does) and show it.
func (h *Handler) ProjectCreateRoom(w http.ResponseWriter, r *http.Request) {
	p, ok := h.uiProjectFromPath(w, r)
	if !ok {
		return
	}
	room, err := h.Store.CreateRoom(r.Context(), p.ID)
	if errors.Is(err, db.ErrConflict) {
		h.redirectFlash(w, r, "/projects/"+p.UUID, views.FlashError, "This project already has a Matrix room.")
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	h.wake()
	h.redirectFlash(w, r, "/rooms/"+room.UUID, views.FlashSuccess, "Room queued: the worker creates it and invites the members.")
}

func userRow(u *db.User) views.UserRow {
	return views.UserRow{UUID: u.UUID, Username: u.Username, FullName: u.FullName, Email: u.Email, Active: u.IsActive, Staff: u.IsStaff}
}

// UsersPage is GET /users: every user with their Matrix account; search, status filter,
// pagination; htmx gets only the table.
func (h *Handler) UsersPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	search := strings.TrimSpace(q.Get("search"))
	status := q.Get("status")
	f := db.UserFilter{Search: search, Page: db.Page{Number: pageNumber(q), Size: uiPageSize}}
	switch status {
	case "active", "inactive":
		active := status == "active"
		f.IsActive = &active
	default:
		status = ""
	}
	users, total, err := h.Store.ListUsersWithProfiles(r.Context(), f)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	d := views.UsersData{Page: h.page(w, r, "Users", "users"), Search: search, Status: status,
		Pager: views.Pager{Page: f.Page.Number, PageSize: uiPageSize, Total: total, Target: "#users-table",
			Link: func(n int) string { return views.ListLink("/users", search, n, "status", status) }}}
	for _, u := range users {
		row := userRow(&u.User)
		row.MatrixUserID, row.Provisioned, row.ProfileError = u.MatrixUserID.String(), u.Provisioned, u.ProfileError
		d.Rows = append(d.Rows, row)
	}
	w.Header().Set("Vary", "HX-Request")
	if htmxTarget(r) == "users-table" {
		pushCleanURL(w, r, views.ListLink("/users", search, f.Page.Number, "status", status))
		respond.Render(w, r, views.UsersTable(d))
		return
	}
	respond.Render(w, r, views.UsersPage(d))
}

// UserDetail is GET /users/{uuid}: the user and their Matrix profile.
func (h *Handler) UserDetail(w http.ResponseWriter, r *http.Request) {
	id, ok := db.NormalizeUUID(chi.URLParam(r, "uuid"))
	if !ok {
		respond.NotFound(w, r)
		return
	}
	ctx := r.Context()
	u, err := h.Store.UserByUUID(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		respond.NotFound(w, r)
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	d := views.UserDetailData{Page: h.page(w, r, u.Username+" · Users", "users"), User: userRow(u), Created: u.CreatedAt}
	p, err := h.Store.ProfileByUserID(ctx, u.ID)
	switch {
	case errors.Is(err, db.ErrNotFound):
	case err != nil:
		respond.ServerError(w, r, err)
		return
	default:
		d.User.MatrixUserID, d.User.Provisioned = p.MatrixUserID.String(), p.Provisioned
		d.Profile = &views.ProfileView{MatrixUserID: p.MatrixUserID.String(), Provisioned: p.Provisioned, ProvisionedAt: p.ProvisionedAt,
			LastSyncedAt: p.LastSyncedAt, Attempts: p.Attempts, LastError: p.LastError,
			Registration: string(p.Registration), SignedOut: p.SignedOut, Locked: p.Locked}
	}
	respond.Render(w, r, views.UserDetailPage(d))
}
