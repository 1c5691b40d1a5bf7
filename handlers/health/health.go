// Package health serves the probes of load balancers and orchestrators: /healthz (the
// process is up) and /readyz (the database answers). Neither needs credentials or says
// anything secret.
package health

import (
	"context"
	"net/http"
	"time"

	"matrixas/db"
	"matrixas/handlers/respond"
)

// Handler serves the readiness probe.
type Handler struct {
	Store *db.Store
}

// Healthz answers 200 while the process runs.
func Healthz(w http.ResponseWriter, r *http.Request) {
	respond.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readyz answers 200 when the database answers, else 503. While writes fail (a full
// disk, a read-only file) it still answers 200, with status "degraded" and the reason:
// reads and the dashboard work, and taking the server out of rotation would hide the
// problem from staff without helping the homeserver, which retries its transactions.
func (h *Handler) Readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.Store.Ping(ctx); err != nil {
		respond.RecordError(r, err)
		respond.JSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
		return
	}
	respond.JSON(w, http.StatusOK, readyzBody(h.Store.WriteHealth()))
}

// readyzBody is /readyz's answer for the store's write health: {"status": "ok"} alone
// when no write ever failed. The error is the store's fixed description, never the
// driver's text.
func readyzBody(wh db.WriteHealth) map[string]string {
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case wh.Failing:
		return map[string]string{"status": "degraded", "writes": "failing", "write_error": wh.LastError, "write_error_at": at(wh.LastErrorAt)}
	case wh.LastError != "":
		return map[string]string{"status": "ok", "writes": "ok", "last_write_error": wh.LastError,
			"last_write_error_at": at(wh.LastErrorAt), "recovered_at": at(wh.RecoveredAt)}
	}
	return map[string]string{"status": "ok"}
}
