package handlers

import (
	"net/http"

	"matrixas/db"
	"matrixas/views"
)

// Overview renders the landing page.
func (h *Handler) Overview(w http.ResponseWriter, r *http.Request) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	n, err := h.Store.Counter(r.Context(), db.CounterTransactions)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, views.OverviewPage(views.OverviewData{
		Page:             h.page(w, r, "Overview", "overview"),
		Enabled:          ms.Enabled,
		HomeserverURL:    ms.HomeserverURL,
		HomeserverDomain: ms.HomeserverDomain,
		BotUserID:        ms.BotUserID(),
		TransactionCount: n,
	}))
}
