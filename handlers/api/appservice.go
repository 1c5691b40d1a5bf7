package api

import (
	"context"
	"errors"
	"net/http"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/matrix"
	"matrixas/setup"

	"maunium.net/go/mautrix/id"
)

// Setup is POST /api/admin/matrix-appservice/setup/ (seed: admin_matrix_appservice_setup).
func (h *Handler) Setup(w http.ResponseWriter, r *http.Request) {
	fields, err := respond.ReadFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	res, err := h.AppserviceSetup.Run(r.Context(), setup.InputFrom(fields))
	var invalid setup.Invalid
	var missing *setup.MissingError
	switch {
	case errors.As(err, &invalid):
		respond.JSON(w, http.StatusBadRequest, invalid)
	case errors.As(err, &missing):
		respond.DetailError(w, http.StatusBadRequest, missing.Error())
	case err != nil:
		respond.ServerError(w, r, err)
	default:
		w.Header().Set("Cache-Control", "no-store") // it carries both tokens
		respond.JSON(w, http.StatusOK, res)
	}
}

// ProvisionBot is POST /api/admin/matrix-appservice/provision-bot/: retries only the bot
// step, for after the homeserver admin installed the registration and restarted.
func (h *Handler) ProvisionBot(w http.ResponseWriter, r *http.Request) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if !ms.Enabled || ms.ASToken == "" {
		respond.DetailError(w, http.StatusBadRequest, "The appservice is not set up yet: run setup first.")
		return
	}
	status, err := h.AppserviceSetup.ProvisionBot(r.Context(), ms)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.JSON(w, http.StatusOK, map[string]db.BotStatus{"bot_provision_status": status})
}

// AppserviceStatus is the seed's status response.
type AppserviceStatus struct {
	Enabled           bool      `json:"enabled"`
	ASTokenConfigured bool      `json:"as_token_configured"`
	HSTokenConfigured bool      `json:"hs_token_configured"`
	SenderLocalpart   string    `json:"sender_localpart"`
	BotUserID         id.UserID `json:"bot_user_id"`
	WebhookPath       string    `json:"webhook_path"`
	HomeserverURL     string    `json:"homeserver_url"`
	HomeserverDomain  string    `json:"homeserver_domain"`
	TransactionCount  int64     `json:"transaction_count"`
}

// appserviceStatus reads the status in O(1): cached settings and one counter row.
func (h *Handler) appserviceStatus(ctx context.Context) (*AppserviceStatus, error) {
	ms, err := h.Settings.Matrix(ctx)
	if err != nil {
		return nil, err
	}
	n, err := h.Store.Counter(ctx, db.CounterTransactions)
	if err != nil {
		return nil, err
	}
	return &AppserviceStatus{
		Enabled:           ms.Enabled,
		ASTokenConfigured: ms.ASToken != "",
		HSTokenConfigured: ms.HSToken != "",
		SenderLocalpart:   ms.SenderLocalpart,
		BotUserID:         ms.BotUserID(),
		WebhookPath:       matrix.WebhookPath,
		HomeserverURL:     ms.PublicURL(), // the reference's: the public one when set
		HomeserverDomain:  ms.HomeserverDomain,
		TransactionCount:  n,
	}, nil
}

// Status is GET /api/admin/matrix-appservice/status/ (seed: admin_matrix_appservice_status_retrieve).
func (h *Handler) Status(w http.ResponseWriter, r *http.Request) {
	st, err := h.appserviceStatus(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.JSON(w, http.StatusOK, st)
}

// RegistrationFile is GET /api/admin/matrix-appservice/registration.yaml: the current
// registration as a download for the homeserver admin.
func (h *Handler) RegistrationFile(w http.ResponseWriter, r *http.Request) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	reg, err := matrix.BuildRegistration(ms)
	if err != nil {
		respond.DetailError(w, http.StatusNotFound, "The appservice is not set up yet: run setup first, then download its registration.")
		return
	}
	yaml, err := reg.YAML()
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+reg.ID+`-registration.yaml"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(yaml))
}

// Diagnostics runs the live Matrix checks (staff only) and answers the seed's
// {"ok", "checks": [{"name", "label", "ok", "detail", "hint"?}]}. A failing check is
// still a 200: only this server's own failure (its database) is a 500.
func (h *Handler) Diagnostics(w http.ResponseWriter, r *http.Request) {
	rep, err := h.Diag.Run(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	respond.JSON(w, http.StatusOK, rep)
}
