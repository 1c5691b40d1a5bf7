package api

import (
	"errors"
	"net/http"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/settings"
)

// ReprovisionProgressJSON is GET /api/admin/matrix/reprovision/: the last run and how far
// the worker got with it.
type ReprovisionProgressJSON struct {
	Enabled            bool    `json:"enabled"`
	StartedAt          *string `json:"started_at"` // null: never reprovisioned
	RoomsReprovisioned int     `json:"rooms_reprovisioned"`
	UsersReset         int     `json:"users_reset"`
	Rooms              struct {
		Remaining int `json:"remaining"`
		Done      int `json:"done"`
		Errored   int `json:"errored"`
	} `json:"rooms"`
	Users struct {
		Remaining int `json:"remaining"`
		Done      int `json:"done"`
	} `json:"users"`
}

// Reprovision is POST /api/admin/matrix/reprovision/ (staff): every active room is
// re-created and every provisioned user re-registered, on the homeserver the settings now
// name, in one transaction; 202 {"rooms_reprovisioned", "users_reset"}. ?dry_run=true
// answers the same counts with 200 and changes nothing. 400 when Matrix chat is disabled.
func (h *Handler) Reprovision(w http.ResponseWriter, r *http.Request) {
	dryRun := false
	if s := r.URL.Query().Get("dry_run"); s != "" {
		b, ok := settings.ParseBool(s)
		if !ok {
			respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"dry_run": {"Must be a valid boolean."}})
			return
		}
		dryRun = b
	}
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if !ms.Enabled {
		// The reference's answer: a list, not {"detail"}.
		respond.JSON(w, http.StatusBadRequest, []string{"Matrix chat is disabled."})
		return
	}
	c, err := h.Store.Reprovision(r.Context(), dryRun)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if dryRun {
		respond.JSON(w, http.StatusOK, c)
		return
	}
	by := ""
	if u := auth.UserFrom(r.Context()); u != nil {
		by = u.Username
	}
	h.Log.Info("reprovision started", "by", by, "rooms", c.Rooms, "users", c.Users, "homeserver", ms.HomeserverURL)
	h.wake()
	respond.JSON(w, http.StatusAccepted, c)
}

// ReprovisionProgress is GET /api/admin/matrix/reprovision/ (staff).
func (h *Handler) ReprovisionProgress(w http.ResponseWriter, r *http.Request) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	out := ReprovisionProgressJSON{Enabled: ms.Enabled}
	p, err := h.Store.LastReprovision(r.Context())
	switch {
	case errors.Is(err, db.ErrNotFound):
	case err != nil:
		respond.ServerError(w, r, err)
		return
	default:
		out.StartedAt = apiTime(p.StartedAt)
		out.RoomsReprovisioned, out.UsersReset = p.Rooms, p.Users
		out.Rooms.Remaining, out.Rooms.Done, out.Rooms.Errored = p.RoomsRemaining, p.RoomsDone, p.RoomsErrored
		out.Users.Remaining, out.Users.Done = p.UsersRemaining, p.UsersDone
	}
	respond.JSON(w, http.StatusOK, out)
}
