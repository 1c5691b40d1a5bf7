package ui

import (
	"net/http"
	"time"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/views"
)

// Overview renders the landing page: status cards from cheap reads (cached settings and
// one read-only snapshot of counts) and, until the appservice works, what to do next.
func (h *Handler) Overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ms, err := h.Settings.Matrix(ctx)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	stats, err := h.Store.DiagnosticStats(ctx, time.Now().Add(-time.Hour))
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	d := views.OverviewData{
		Page:                 h.page(w, r, "Overview", "overview"),
		Enabled:              ms.Enabled,
		HomeserverURL:        ms.HomeserverURL,
		HomeserverDomain:     ms.HomeserverDomain,
		BotUserID:            ms.BotUserID().String(),
		BotStatus:            string(ms.BotProvisionStatus),
		TransactionCount:     stats.TransactionsTotal,
		TransactionsLastHour: stats.TransactionsSince,
		LastTransactionAt:    stats.LastTransactionAt,
		Rooms:                stateCounts(stats.Rooms),
		ProfilesTotal:        stats.ProfilesTotal,
		ProfilesReady:        stats.ProfilesProvisioned,
		Pending:              stats.Pending(),
		Retrying:             stats.Retrying,
	}
	d.LastTransactionAgo = views.Ago(time.Now(), d.LastTransactionAt)
	wh := h.Store.WriteHealth()
	d.Writes = views.WriteHealthView{Failing: wh.Failing, Error: wh.LastError, ErrorAt: wh.LastErrorAt, RecoveredAt: wh.RecoveredAt}
	d.Steps = nextSteps(ms)
	d.AllStepsDone = true
	for _, s := range d.Steps {
		d.AllStepsDone = d.AllStepsDone && s.Done
	}
	respond.Render(w, r, views.OverviewPage(d))
}

// nextSteps is the setup checklist, each step marked done from the settings alone.
func nextSteps(ms *db.MatrixSettings) []views.SetupStep {
	configured := ms.HomeserverURL != "" && ms.HomeserverDomain != "" && ms.RegistrationSecret != ""
	setUp := ms.Enabled && ms.ASToken != "" && ms.HSToken != ""
	return []views.SetupStep{
		{
			Title:  "Tell the appservice where the homeserver is",
			Detail: "Its URL, its server name (domain) and its shared registration secret.",
			Href:   "/setup", Action: "Fill them in on the Setup page",
			Done: configured,
		},
		{
			Title:  "Run setup",
			Detail: "It generates the tokens and the registration file the homeserver needs.",
			Href:   "/setup", Action: "Run setup",
			Done: setUp,
		},
		{
			Title:  "Install the registration on the homeserver and restart it",
			Detail: "Synapse: app_service_config_files in homeserver.yaml; Dendrite: app_service_api.config_files in dendrite.yaml. Then provision the bot.",
			Href:   "/setup", Action: "See the instructions",
			Done: setUp && ms.BotProvisionStatus == db.BotOK,
		},
		{
			Title:  "Check the connection",
			Detail: "Diagnostics test every link between this server and the homeserver.",
			Href:   "/diagnostics?run=1", Action: "Run diagnostics",
			Done: setUp && ms.BotProvisionStatus == db.BotOK,
		},
	}
}
