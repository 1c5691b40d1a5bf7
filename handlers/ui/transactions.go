package ui

import (
	"net/http"
	"net/url"
	"time"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/views"
)

// transactionsPageSize is how many transactions one page of the list shows.
const transactionsPageSize = 50

// Transactions is GET /transactions: the recorded transactions, newest first, with
// keyset pagination (?after=<cursor>) so old pages cost no more than the first.
func (h *Handler) Transactions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	after, ok := db.ParseTxnCursor(r.URL.Query().Get("after"))
	if !ok {
		respond.Fail(w, r, http.StatusBadRequest, "The page link is not valid; start again from the newest transactions.")
		return
	}
	counters, err := h.Store.Counters(ctx)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	rows, next, err := h.Store.ListTransactions(ctx, after, transactionsPageSize)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	d := views.TransactionsData{
		Page:      h.page(w, r, "Transactions", "transactions"),
		Total:     counters[db.CounterTransactions],
		Events:    counters[db.CounterEvents],
		FirstPage: after.IsZero(),
	}
	if at := counters[db.CounterLastTransactionAt]; at > 0 {
		d.LastAt = time.Unix(at, 0).UTC()
	}
	d.LastAgo = views.Ago(time.Now(), d.LastAt)
	for _, t := range rows {
		d.Rows = append(d.Rows, views.TransactionRow{TxnID: t.TxnID, EventCount: t.EventCount, ProcessedAt: t.ProcessedAt})
	}
	if !next.IsZero() {
		d.NextLink = withQuery("/transactions", url.Values{"after": {next.String()}})
	}
	respond.Render(w, r, views.TransactionsPage(d))
}
