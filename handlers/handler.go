// Package handlers holds the HTTP handlers, JSON and HTML, as methods on one struct that
// carries their dependencies.
package handlers

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/diagnostics"
)

// Deps are the handlers' dependencies, wired by hand in web.New.
type Deps struct {
	Store    *db.Store
	Settings *db.Settings
	Sessions *auth.SessionStore
	// Throttle limits wrong current passwords on the account page, per user.
	Throttle *auth.Throttle
	// Logins limits failed sign-ins per client address and per (username, address).
	Logins *auth.LoginThrottle
	// Passwords hashes and checks staff passwords (bcrypt at auth.PasswordCost).
	Passwords *auth.Passwords
	Log       *slog.Logger

	// MatrixHTTP is the HTTP client for calls to the homeserver (bounded timeouts).
	MatrixHTTP *http.Client
	// Recorder durably records homeserver transactions (group commit).
	Recorder *db.Recorder
	// Wake nudges the provisioning worker after a write it should act on; nil = no worker.
	Wake func()
	// AutoCreateRooms queues a Matrix room for every new project (AUTO_CREATE_ROOMS).
	AutoCreateRooms bool
	// Diag runs the live diagnostics (the API endpoint and the dashboard page).
	Diag diagnostics.Runner
	// WebhookMetrics counts transactions and refused homeserver requests; nil = not counted.
	WebhookMetrics WebhookObserver

	PublicURL string // this server's configured public URL, "" when unknown
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	MaxBodyBytes   int64
	Version        string
	StartedAt      time.Time
}

// Handler serves every route; web.Routes maps paths to its methods.
type Handler struct {
	Deps
}

// New returns a Handler.
func New(d Deps) *Handler {
	return &Handler{Deps: d}
}
