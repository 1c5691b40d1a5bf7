// Package api serves the JSON API under /api/: the appservice's admin endpoints (setup,
// status, diagnostics, reprovision), the platform directory (users, projects and their
// members) and the managed rooms and Matrix profiles. It mirrors the platform's Django
// REST API: the same paths and the same error shapes ({"detail": "..."} or
// {"field": ["message"]}), written through package respond.
package api

import (
	"log/slog"
	"net/http"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/diagnostics"
	"matrixas/setup"
)

// Handler serves /api/; web.Routes maps the paths to its methods. Who may call what is
// the router's middleware's business, not the handlers'.
type Handler struct {
	Store    *db.Store
	Settings *db.Settings
	// AppserviceSetup runs the appservice setup and the bot step (shared with the dashboard).
	AppserviceSetup *setup.Service
	// Diag runs the live diagnostics.
	Diag diagnostics.Runner
	Log  *slog.Logger
	// Wake nudges the provisioning worker after a write it should act on; nil = no worker.
	Wake func()
	// WakeBot nudges the bot's sender after a message was queued or put back in the
	// queue; nil = no sender.
	WakeBot func()
	// AutoCreateRooms queues a Matrix room for every new project (AUTO_CREATE_ROOMS).
	AutoCreateRooms bool
	// PublicURL is this server's configured public URL (the base of Link headers); ""
	// when unknown.
	PublicURL string
	// Exports queues history exports and opens their files.
	Exports Exports
	// Accounts makes a caller's Matrix account ready on demand (credentials, sessions).
	Accounts Accounts
	// SessionThrottle limits POST /api/matrix/session/ per user (SessionsPerHour); nil =
	// no limit.
	SessionThrottle *auth.Throttle
	// HTTPClient calls the homeserver while answering (sessions, the admin check of a link).
	HTTPClient *http.Client
	// Platform is the platform sync (status, runs on demand, the event receiver); nil
	// when no platform is configured.
	Platform PlatformSync
	// EventsSecret is the event receiver's path secret (WALDUR_EVENTS_SECRET); "" keeps
	// the receiver off.
	EventsSecret string
}

// wake nudges the provisioning worker, when there is one.
func (h *Handler) wake() {
	if h.Wake != nil {
		h.Wake()
	}
}

// wakeBot nudges the bot's sender, when there is one.
func (h *Handler) wakeBot() {
	if h.WakeBot != nil {
		h.WakeBot()
	}
}

// profileRules are the settings that derive Matrix user ids.
func (h *Handler) profileRules(r *http.Request) (db.ProfileRules, error) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		return db.ProfileRules{}, err
	}
	return ms.ProfileRules(), nil
}
