package handlers

import (
	"net/http"
)

// Diagnostics runs the live Matrix checks (staff only) and answers the seed's
// {"ok", "checks": [{"name", "label", "ok", "detail", "hint"?}]}. A failing check is
// still a 200: only this server's own failure (its database) is a 500.
func (h *Handler) Diagnostics(w http.ResponseWriter, r *http.Request) {
	rep, err := h.Diag.Run(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, rep)
}
