package ui

import (
	"net/http"
	"time"

	"github.com/a-h/templ"

	"matrixas/handlers/respond"
	"matrixas/views"
)

// runDiagnostics runs the checks and shapes them for the page.
func (h *Handler) runDiagnostics(r *http.Request) (views.DiagnosticsResultsData, error) {
	start := time.Now()
	rep, err := h.Diag.Run(r.Context())
	if err != nil {
		return views.DiagnosticsResultsData{}, err
	}
	d := views.DiagnosticsResultsData{OK: rep.OK, RanAt: start.UTC(), Duration: time.Since(start)}
	for _, c := range rep.Checks {
		d.Checks = append(d.Checks, views.CheckView{Name: c.Name, Label: c.Label, Detail: c.Detail, Hint: c.Hint, OK: c.OK})
	}
	return d, nil
}

// DiagnosticsPage is GET /diagnostics; with ?run=1 it runs the checks right away, so
// the page works without JavaScript.
func (h *Handler) DiagnosticsPage(w http.ResponseWriter, r *http.Request) {
	d := views.DiagnosticsData{Page: h.page(w, r, "Diagnostics", "diagnostics")}
	if r.URL.Query().Get("run") != "" {
		res, err := h.runDiagnostics(r)
		if err != nil {
			respond.ServerError(w, r, err)
			return
		}
		d.Results = &res
	}
	w.Header().Set("Cache-Control", "no-store")
	respond.Render(w, r, views.DiagnosticsPage(d))
}

// DiagnosticsResults is GET /diagnostics/results: the checks as a fragment for htmx.
// A browser that asks for it directly is sent to the full page.
func (h *Handler) DiagnosticsResults(w http.ResponseWriter, r *http.Request) {
	h.diagnosticsFragment(w, r, views.DiagnosticsResults)
}

// DiagnosticsSummary is GET /diagnostics/summary: the overview's short form, for htmx.
func (h *Handler) DiagnosticsSummary(w http.ResponseWriter, r *http.Request) {
	h.diagnosticsFragment(w, r, views.DiagnosticsSummary)
}

func (h *Handler) diagnosticsFragment(w http.ResponseWriter, r *http.Request, c func(views.DiagnosticsResultsData) templ.Component) {
	if !isHTMX(r) {
		http.Redirect(w, r, "/diagnostics?run=1", http.StatusSeeOther)
		return
	}
	res, err := h.runDiagnostics(r)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "HX-Request")
	respond.Render(w, r, c(res))
}
