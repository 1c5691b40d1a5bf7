package ui

import (
	"net/http"

	"matrixas/db"
	"matrixas/diagnostics"
	"matrixas/handlers/respond"
	"matrixas/settings"
	"matrixas/views"
)

// settingsData builds the settings page from the resolved settings: one field per
// editable setting (settings.EditableSettings).
func (h *Handler) settingsData(w http.ResponseWriter, r *http.Request, ms *db.MatrixSettings) views.SettingsData {
	d := views.SettingsData{
		Page:            h.page(w, r, "Settings", "settings"),
		Enabled:         ms.Enabled,
		AppserviceURL:   ms.AppserviceURL,
		SenderLocalpart: ms.SenderLocalpart,
	}
	for _, s := range settings.EditableSettings() {
		f := settingField("settings-", s, ms)
		f.Required = s.Required && !s.Secret // a secret's field stays empty: it keeps the current one
		d.Fields = append(d.Fields, f)
	}
	if ms.ASToken != "" {
		d.ASToken = diagnostics.Fingerprint(ms.ASToken)
	}
	if ms.HSToken != "" {
		d.HSToken = diagnostics.Fingerprint(ms.HSToken)
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

// SettingsSubmit is POST /settings: each editable setting is cleaned and checked as the
// settings table says (the setup API checks the same way), a value the environment fixes
// is never written, and a secret left empty keeps the current one.
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
	values, typed, errs := map[string]string{}, map[string]string{}, map[string]string{}
	for _, s := range settings.EditableSettings() {
		if h.Settings.IsFixed(s.Key) {
			continue
		}
		v := s.Clean(r.PostFormValue(s.Key))
		typed[s.Key] = v
		switch {
		case v == "" && s.Secret:
			continue // write-only: empty keeps the current secret
		case v == "" && s.Required:
			errs[s.Key] = "This field is required."
		case v != "":
			if err := s.Validate(v); err != nil {
				errs[s.Key] = err.Error()
			}
		}
		values[s.Key] = v
	}
	if len(errs) > 0 {
		d := h.settingsData(w, r, ms)
		showSubmitted(d.Fields, typed, errs)
		d.FormError = "Nothing was saved: fix the fields marked below."
		respond.Render(w, r, views.SettingsPage(d))
		return
	}
	if err := h.Settings.Set(ctx, values); err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if v, ok := values[settings.HomeserverDomain.Key]; ok && v != ms.HomeserverDomain && ms.Enabled {
		h.flash(w, r, views.FlashInfo, "The domain changed, so the registration's namespaces did too: run setup again and install the new registration on the homeserver.")
	}
	h.redirectFlash(w, r, "/settings", views.FlashSuccess, "Settings saved.")
}
