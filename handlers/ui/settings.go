package ui

import (
	"net/http"
	"strings"

	"matrixas/db"
	"matrixas/diagnostics"
	"matrixas/handlers/respond"
	"matrixas/matrix"
	"matrixas/views"
)

// settingsData builds the settings page from the resolved settings.
func (h *Handler) settingsData(w http.ResponseWriter, r *http.Request, ms *db.MatrixSettings) views.SettingsData {
	d := views.SettingsData{
		Page:      h.page(w, r, "Settings", "settings"),
		Locked:    map[string]string{},
		Errors:    map[string]string{},
		SecretSet: ms.RegistrationSecret != "",
		Form: views.SettingsForm{
			HomeserverURL:       ms.HomeserverURL,
			HomeserverPublicURL: ms.HomeserverPublicURL,
			HomeserverDomain:    ms.HomeserverDomain,
		},
		Enabled:         ms.Enabled,
		AppserviceURL:   ms.AppserviceURL,
		SenderLocalpart: ms.SenderLocalpart,
	}
	if ms.ASToken != "" {
		d.ASToken = diagnostics.Fingerprint(ms.ASToken)
	}
	if ms.HSToken != "" {
		d.HSToken = diagnostics.Fingerprint(ms.HSToken)
	}
	for _, key := range setupFields {
		if lock := envLock(ms, key); lock != "" {
			d.Locked[key] = lock
		}
	}
	return d
}

// SettingsPage is GET /settings.
func (h *Handler) SettingsPage(w http.ResponseWriter, r *http.Request) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.Render(w, r, views.SettingsPage(h.settingsData(w, r, ms)))
}

// SettingsSubmit is POST /settings: validates like setup (matrix.ValidHTTPURL,
// matrix.ValidDomain), never writes a value the environment fixes, and keeps the secret
// when its field is left empty.
func (h *Handler) SettingsSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.readForm(w, r) {
		return
	}
	ctx := r.Context()
	ms, err := h.Settings.Matrix(ctx)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	trim := func(k string) string { return strings.TrimRight(strings.TrimSpace(r.PostFormValue(k)), "/") }
	form := views.SettingsForm{
		HomeserverURL:       trim("homeserver_url"),
		HomeserverPublicURL: trim("homeserver_public_url"),
		HomeserverDomain:    strings.TrimSpace(r.PostFormValue("homeserver_domain")),
	}
	secret := r.PostFormValue("user_registration_secret")
	errs := map[string]string{}
	values := map[string]string{}

	if !h.Settings.IsFixed(db.SettingHomeserverURL) {
		if form.HomeserverURL == "" {
			errs["homeserver_url"] = "Enter the homeserver URL."
		} else if err := matrix.ValidHTTPURL(form.HomeserverURL); err != nil {
			errs["homeserver_url"] = err.Error()
		}
		values[db.SettingHomeserverURL] = form.HomeserverURL
	}
	if !h.Settings.IsFixed(db.SettingHomeserverPublicURL) {
		if form.HomeserverPublicURL != "" {
			if err := matrix.ValidHTTPURL(form.HomeserverPublicURL); err != nil {
				errs["homeserver_public_url"] = err.Error()
			}
		}
		values[db.SettingHomeserverPublicURL] = form.HomeserverPublicURL
	}
	if !h.Settings.IsFixed(db.SettingHomeserverDomain) {
		if form.HomeserverDomain == "" {
			errs["homeserver_domain"] = "Enter the homeserver's server_name."
		} else if !matrix.ValidDomain(form.HomeserverDomain) {
			errs["homeserver_domain"] = "Enter a host name such as matrix.example.org, optionally with :port."
		}
		values[db.SettingHomeserverDomain] = form.HomeserverDomain
	}
	if !h.Settings.IsFixed(db.SettingRegistrationSecret) && secret != "" {
		if len(secret) > 1024 {
			errs["user_registration_secret"] = "Use at most 1024 characters."
		}
		values[db.SettingRegistrationSecret] = secret
	}
	if len(errs) > 0 {
		d := h.settingsData(w, r, ms)
		d.Form, d.Errors = form, errs
		// Locked fields show the value in force, not what a crafted form sent.
		if d.Locked[db.SettingHomeserverURL] != "" {
			d.Form.HomeserverURL = ms.HomeserverURL
		}
		if d.Locked[db.SettingHomeserverPublicURL] != "" {
			d.Form.HomeserverPublicURL = ms.HomeserverPublicURL
		}
		if d.Locked[db.SettingHomeserverDomain] != "" {
			d.Form.HomeserverDomain = ms.HomeserverDomain
		}
		d.FormError = "Nothing was saved: fix the fields marked below."
		respond.Render(w, r, views.SettingsPage(d))
		return
	}
	if err := h.Settings.Set(ctx, values); err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if v, ok := values[db.SettingHomeserverDomain]; ok && v != ms.HomeserverDomain && ms.Enabled {
		h.flash(w, r, "info", "The domain changed, so the registration's namespaces did too: run setup again and install the new registration on the homeserver.")
	}
	h.redirectFlash(w, r, "/settings", "success", "Settings saved.")
}
