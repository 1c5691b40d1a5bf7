package handlers

import (
	"context"
	"database/sql"
	"net/http"
	"strings"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/matrix"
)

// SetupInput is the seed's MatrixAppserviceSetupRequest; empty means "not given".
type SetupInput struct {
	URL                 string
	SenderLocalpart     string
	HomeserverURL       string
	HomeserverPublicURL string
	HomeserverDomain    string
	RegistrationSecret  string
}

// SetupResult is the seed's setup response.
type SetupResult struct {
	RegistrationYAML   string `json:"registration_yaml"`
	ASToken            string `json:"as_token"`
	HSToken            string `json:"hs_token"`
	SenderLocalpart    string `json:"sender_localpart"`
	WebhookURL         string `json:"webhook_url"`
	BotProvisionStatus string `json:"bot_provision_status"`
}

// setupInputFrom reads the request fields (JSON or form) into a SetupInput.
func setupInputFrom(f map[string]string) SetupInput {
	t := func(k string) string { return strings.TrimSpace(f[k]) }
	return SetupInput{
		URL:                 t("url"),
		SenderLocalpart:     t("sender_localpart"),
		HomeserverURL:       t("homeserver_url"),
		HomeserverPublicURL: t("homeserver_public_url"),
		HomeserverDomain:    t("homeserver_domain"),
		RegistrationSecret:  f["user_registration_secret"], // a secret is taken as typed
	}
}

// SetupPlan is what a valid setup request resolves to: the values to use, and which of
// them to store (the four homeserver fields only when not configured yet).
type SetupPlan struct {
	URL             string
	SenderLocalpart string
	Store           map[string]string
}

// PlanSetup validates in against the current settings without side effects. Given
// values must be well-formed; the homeserver URL, domain and registration secret must
// resolve from the request or the settings. publicURL (PUBLIC_URL) is the fallback for url.
func PlanSetup(in SetupInput, ms *db.MatrixSettings, publicURL string) (*SetupPlan, FieldErrors) {
	errs := FieldErrors{}
	strip := func(s string) string { return strings.TrimRight(s, "/") }
	in.URL, in.HomeserverURL, in.HomeserverPublicURL = strip(in.URL), strip(in.HomeserverURL), strip(in.HomeserverPublicURL)

	for _, f := range []struct{ name, val string }{
		{"url", in.URL}, {"homeserver_url", in.HomeserverURL}, {"homeserver_public_url", in.HomeserverPublicURL},
	} {
		if f.val != "" {
			if err := matrix.ValidHTTPURL(f.val); err != nil {
				errs.Add(f.name, err.Error())
			}
		}
	}
	if in.SenderLocalpart != "" && !matrix.ValidLocalpart(in.SenderLocalpart) {
		errs.Add("sender_localpart", "Use only lowercase letters, digits and . _ = - / (a Matrix user name, not a pattern).")
	}
	if in.HomeserverDomain != "" && !matrix.ValidDomain(in.HomeserverDomain) {
		errs.Add("homeserver_domain", "Enter a host name such as matrix.example.org, optionally with :port.")
	}
	if len(in.RegistrationSecret) > 1024 {
		errs.Add("user_registration_secret", "Ensure this field has no more than 1024 characters.")
	}

	plan := &SetupPlan{Store: map[string]string{}}
	plan.URL = firstNonEmpty(in.URL, ms.AppserviceURL, publicURL)
	if plan.URL == "" && errs["url"] == nil {
		errs.Add("url", "This field is required: the URL at which the homeserver reaches this server.")
	}
	plan.SenderLocalpart = firstNonEmpty(in.SenderLocalpart, ms.SenderLocalpart, db.DefaultSenderLocalpart)

	// The four homeserver fields: stored only when not configured yet (by env or database).
	required := []struct {
		key, field, have, given, missing string
	}{
		{db.SettingHomeserverURL, "homeserver_url", ms.HomeserverURL, in.HomeserverURL, "Matrix homeserver URL is not configured: give homeserver_url."},
		{db.SettingHomeserverDomain, "homeserver_domain", ms.HomeserverDomain, in.HomeserverDomain, "Matrix homeserver domain is not configured: give homeserver_domain."},
		{db.SettingRegistrationSecret, "user_registration_secret", ms.RegistrationSecret, in.RegistrationSecret, "User registration secret is not configured: give user_registration_secret."},
		{db.SettingHomeserverPublicURL, "homeserver_public_url", ms.HomeserverPublicURL, in.HomeserverPublicURL, ""},
	}
	for _, f := range required {
		switch {
		case f.have != "":
		case f.given != "":
			if errs[f.field] == nil {
				plan.Store[f.key] = f.given
			}
		case f.missing != "":
			errs.Add(f.field, f.missing)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return plan, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// runSetup validates, then in one transaction stores the missing homeserver fields,
// rotates both tokens, sets url and sender_localpart and enables the appservice; then it
// provisions the bot, best effort. The API and the setup page both call it.
func (h *Handler) runSetup(ctx context.Context, in SetupInput) (*SetupResult, FieldErrors, error) {
	ms, err := h.Settings.Matrix(ctx)
	if err != nil {
		return nil, nil, err
	}
	plan, errs := PlanSetup(in, ms, h.PublicURL)
	if errs != nil {
		return nil, errs, nil
	}
	asToken, hsToken := auth.RandomHex(32), auth.RandomHex(32)
	values := map[string]string{
		db.SettingASToken:            asToken,
		db.SettingHSToken:            hsToken,
		db.SettingAppserviceURL:      plan.URL,
		db.SettingSenderLocalpart:    plan.SenderLocalpart,
		db.SettingEnabled:            "true",
		db.SettingBotProvisionStatus: "pending",
	}
	for k, v := range plan.Store {
		values[k] = v
	}
	err = h.Settings.Update(ctx, func(tx *sql.Tx) error {
		for k, v := range values {
			if err := h.Settings.SetTx(ctx, tx, k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if ms, err = h.Settings.Matrix(ctx); err != nil {
		return nil, nil, err
	}
	reg, err := matrix.BuildRegistration(ms)
	if err != nil {
		return nil, nil, err
	}
	yaml, err := reg.YAML()
	if err != nil {
		return nil, nil, err
	}
	status, err := h.provisionBot(ctx, ms)
	if err != nil {
		return nil, nil, err
	}
	return &SetupResult{
		RegistrationYAML:   yaml,
		ASToken:            ms.ASToken,
		HSToken:            ms.HSToken,
		SenderLocalpart:    ms.SenderLocalpart,
		WebhookURL:         matrix.WebhookURL(ms.AppserviceURL),
		BotProvisionStatus: status,
	}, nil, nil
}

// provisionBot tries the bot step and stores its outcome for the status page.
func (h *Handler) provisionBot(ctx context.Context, ms *db.MatrixSettings) (string, error) {
	status := matrix.ProvisionBot(ctx, ms, h.MatrixHTTP)
	if err := h.Settings.Set(ctx, map[string]string{db.SettingBotProvisionStatus: status}); err != nil {
		return "", err
	}
	return status, nil
}

// Setup is POST /api/admin/matrix-appservice/setup/ (seed: admin_matrix_appservice_setup).
func (h *Handler) Setup(w http.ResponseWriter, r *http.Request) {
	fields, err := readFields(r)
	if err != nil {
		h.badBody(w, r, err)
		return
	}
	res, errs, err := h.runSetup(r.Context(), setupInputFrom(fields))
	switch {
	case err != nil:
		h.serverError(w, r, err)
	case errs != nil:
		writeJSON(w, http.StatusBadRequest, errs)
	default:
		w.Header().Set("Cache-Control", "no-store") // it carries both tokens
		writeJSON(w, http.StatusOK, res)
	}
}

// ProvisionBot is POST /api/admin/matrix-appservice/provision-bot/: retries only the bot
// step, for after the homeserver admin installed the registration and restarted.
func (h *Handler) ProvisionBot(w http.ResponseWriter, r *http.Request) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if !ms.Enabled || ms.ASToken == "" {
		writeDetail(w, http.StatusBadRequest, "The appservice is not set up yet: run setup first.")
		return
	}
	status, err := h.provisionBot(r.Context(), ms)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"bot_provision_status": status})
}

// AppserviceStatus is the seed's status response.
type AppserviceStatus struct {
	Enabled           bool   `json:"enabled"`
	ASTokenConfigured bool   `json:"as_token_configured"`
	HSTokenConfigured bool   `json:"hs_token_configured"`
	SenderLocalpart   string `json:"sender_localpart"`
	BotUserID         string `json:"bot_user_id"`
	WebhookPath       string `json:"webhook_path"`
	HomeserverURL     string `json:"homeserver_url"`
	HomeserverDomain  string `json:"homeserver_domain"`
	TransactionCount  int64  `json:"transaction_count"`
}

// appserviceStatus reads the status in O(1): cached settings and one counter row.
func (h *Handler) appserviceStatus(ctx context.Context) (*AppserviceStatus, *db.MatrixSettings, error) {
	ms, err := h.Settings.Matrix(ctx)
	if err != nil {
		return nil, nil, err
	}
	n, err := h.Store.Counter(ctx, db.CounterTransactions)
	if err != nil {
		return nil, nil, err
	}
	return &AppserviceStatus{
		Enabled:           ms.Enabled,
		ASTokenConfigured: ms.ASToken != "",
		HSTokenConfigured: ms.HSToken != "",
		SenderLocalpart:   ms.SenderLocalpart,
		BotUserID:         ms.BotUserID(),
		WebhookPath:       matrix.WebhookPath,
		HomeserverURL:     ms.HomeserverURL,
		HomeserverDomain:  ms.HomeserverDomain,
		TransactionCount:  n,
	}, ms, nil
}

// Status is GET /api/admin/matrix-appservice/status/ (seed: admin_matrix_appservice_status_retrieve).
func (h *Handler) Status(w http.ResponseWriter, r *http.Request) {
	st, _, err := h.appserviceStatus(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// RegistrationFile is GET /api/admin/matrix-appservice/registration.yaml: the current
// registration as a download for the homeserver admin.
func (h *Handler) RegistrationFile(w http.ResponseWriter, r *http.Request) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	reg, err := matrix.BuildRegistration(ms)
	if err != nil {
		writeDetail(w, http.StatusNotFound, "The appservice is not set up yet: run setup first, then download its registration.")
		return
	}
	yaml, err := reg.YAML()
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+reg.ID+`-registration.yaml"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(yaml))
}
