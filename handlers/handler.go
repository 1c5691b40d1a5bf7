// Package handlers holds the HTTP handlers, JSON and HTML, as methods on one struct that
// carries their dependencies.
package handlers

import (
	"log/slog"
	"time"

	"matrixas/auth"
	"matrixas/db"
)

// Deps are the handlers' dependencies, wired by hand in web.New.
type Deps struct {
	Store    *db.Store
	Settings *db.Settings
	Sessions *auth.SessionStore
	Throttle *auth.Throttle
	Log      *slog.Logger

	PublicURL    string // this server's configured public URL, "" when unknown
	MaxBodyBytes int64
	Version      string
	StartedAt    time.Time
}

// Handler serves every route; web.Routes maps paths to its methods.
type Handler struct {
	Deps
}

// New returns a Handler.
func New(d Deps) *Handler {
	return &Handler{Deps: d}
}
