package ui

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/views"
)

// reprovisionProgress reads the last run for the page; nil when there never was one.
func (h *Handler) reprovisionProgress(r *http.Request) (*views.ReprovisionProgressView, error) {
	p, err := h.Store.LastReprovision(r.Context())
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &views.ReprovisionProgressView{StartedAt: p.StartedAt, Rooms: p.Rooms, Users: p.Users,
		RoomsRemaining: p.RoomsRemaining, RoomsDone: p.RoomsDone, RoomsErrored: p.RoomsErrored,
		UsersRemaining: p.UsersRemaining, UsersDone: p.UsersDone}, nil
}

// reprovisionData builds the page: the dry run's counts and the last run's progress.
func (h *Handler) reprovisionData(w http.ResponseWriter, r *http.Request) (views.ReprovisionData, error) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		return views.ReprovisionData{}, err
	}
	d := views.ReprovisionData{Page: h.page(w, r, "Reprovision", "reprovision"), Enabled: ms.Enabled,
		HomeserverURL: ms.HomeserverURL, Domain: ms.HomeserverDomain}
	if ms.Enabled {
		c, err := h.Store.Reprovision(r.Context(), true)
		if err != nil {
			return d, err
		}
		d.RoomsToReset, d.UsersToReset = c.Rooms, c.Users
	}
	if d.Progress, err = h.reprovisionProgress(r); err != nil {
		return d, err
	}
	return d, nil
}

// ReprovisionPage is GET /reprovision.
func (h *Handler) ReprovisionPage(w http.ResponseWriter, r *http.Request) {
	d, err := h.reprovisionData(w, r)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.Render(w, r, views.ReprovisionPage(d))
}

// ReprovisionSubmit is POST /reprovision: the same reprovision as the API, after the
// typed confirmation is checked here too (app.js only disables the button; a form
// posted without JavaScript, or by hand, is checked by the server).
func (h *Handler) ReprovisionSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.readForm(w, r) {
		return
	}
	ctx := r.Context()
	ms, err := h.Settings.Matrix(ctx)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if !ms.Enabled {
		h.redirectFlash(w, r, "/reprovision", views.FlashError, "Matrix chat is disabled: nothing was reprovisioned.")
		return
	}
	typed := strings.TrimSpace(r.PostFormValue("confirm_domain"))
	if ms.HomeserverDomain == "" || typed != ms.HomeserverDomain {
		d, err := h.reprovisionData(w, r)
		if err != nil {
			respond.ServerError(w, r, err)
			return
		}
		d.Confirm = typed
		d.ConfirmError = "Type the homeserver domain exactly as shown to confirm. Nothing was changed."
		respond.Render(w, r, views.ReprovisionPage(d))
		return
	}
	c, err := h.Store.Reprovision(ctx, false)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	h.Log.Info("reprovision started", "by", auth.StaffFrom(ctx).Username, "rooms", c.Rooms, "users", c.Users, "homeserver", ms.HomeserverURL)
	h.wake()
	h.redirectFlash(w, r, "/reprovision", views.FlashSuccess,
		fmt.Sprintf("Reprovision started: %d rooms and %d accounts are being re-created on %s.", c.Rooms, c.Users, ms.HomeserverURL))
}

// ReprovisionProgressFragment is GET /reprovision/progress: the progress panel for htmx
// polling; a plain browser is sent to the page.
func (h *Handler) ReprovisionProgressFragment(w http.ResponseWriter, r *http.Request) {
	if !isHTMX(r) {
		http.Redirect(w, r, "/reprovision", http.StatusSeeOther)
		return
	}
	p, err := h.reprovisionProgress(r)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	if p == nil {
		// Nothing to show: stop polling (htmx stops when the element goes).
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	respond.Render(w, r, views.ReprovisionProgress(*p))
}
