package ui

import (
	"net/http"

	"matrixas/auth"
	"matrixas/handlers/respond"
	"matrixas/views"
)

// page builds the layout's view model, taking (and clearing) the session's flashes.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, title, active string) views.Page {
	p := views.Page{Title: title, Active: active, Version: h.Version}
	if u := auth.UserFrom(r.Context()); u != nil {
		p.Username = u.Username
		p.IsStaff = u.IsStaff
	}
	p.Flashes = respond.TakeFlashes(w, r, h.Sessions)
	return p
}

// flash queues a one-time message for the next page this session sees.
func (h *Handler) flash(w http.ResponseWriter, r *http.Request, kind views.FlashKind, msg string) {
	respond.AddFlash(w, r, h.Sessions, kind, msg)
}
