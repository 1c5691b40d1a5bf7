package appservice

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/metrics"
)

// maxTxnIDLen bounds the txnId path segment; homeservers use short ids.
const maxTxnIDLen = 255

// checkHSToken authenticates a homeserver request by its Bearer hs_token (or the legacy
// access_token query parameter), in constant time. It answers the failure itself and
// returns the settings on success.
func (h *Handler) checkHSToken(w http.ResponseWriter, r *http.Request) (*db.MatrixSettings, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		token = r.URL.Query().Get("access_token")
	}
	if token == "" {
		h.authFailed(metrics.AuthMissingToken)
		respond.Matrix(w, http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
		return nil, false
	}
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		respond.RecordError(r, err)
		respond.Matrix(w, http.StatusInternalServerError, "M_UNKNOWN", "Settings unavailable; retry later")
		return nil, false
	}
	if ms.HSToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(ms.HSToken)) != 1 {
		h.authFailed(tokenFailure(ms.HSToken))
		respond.Matrix(w, http.StatusForbidden, "M_FORBIDDEN", "Invalid access token")
		return nil, false
	}
	return ms, true
}

// bodyBuffers hold transaction bodies between requests; the webhook is the hot path.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBodyBuffer(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 { // do not keep a rare huge transaction's buffer alive
		bodyBuffers.Put(b)
	}
}

var emptyObject = []byte("{}\n")

// writeEmpty answers 200 {} (the Matrix success body) without encoding anything.
func writeEmpty(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(emptyObject)
}

// Transaction is PUT /_matrix/app/v1/transactions/{txnId}: the homeserver pushes events.
// A 200 always means the transaction is durably recorded; a repeated txnId is a no-op;
// any failure to record is a 5xx, so the homeserver delivers it again later.
func (h *Handler) Transaction(w http.ResponseWriter, r *http.Request) {
	// Every delivery is on record in the transactions table and the metrics; a log line
	// each (thousands a second under load) is kept for debug level and for failures.
	respond.QuietOnSuccess(r)
	ms, ok := h.checkHSToken(w, r)
	if !ok {
		return
	}
	defer h.Recorder.Expect()()
	txnID := chi.URLParam(r, "txnId")
	if txnID == "" || len(txnID) > maxTxnIDLen {
		h.txnDone(metrics.TxnRejected, 0)
		respond.Matrix(w, http.StatusBadRequest, "M_INVALID_PARAM", "Invalid transaction id")
		return
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(r.Body)
	body := buf.Bytes()
	if err != nil {
		h.txnDone(metrics.TxnRejected, 0)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			respond.Matrix(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Transaction too large")
			return
		}
		respond.Matrix(w, http.StatusBadRequest, "M_BAD_JSON", "Could not read the body")
		return
	}
	if !ms.Enabled {
		h.txnDone(metrics.TxnDiscarded, 0)
		writeEmpty(w) // disabled: acknowledge and discard
		return
	}
	txn, err := ParseTransaction(body)
	if err != nil {
		h.txnDone(metrics.TxnRejected, 0)
		var bad errTxnBody
		errors.As(err, &bad)
		respond.Matrix(w, http.StatusBadRequest, bad.code, bad.msg)
		return
	}
	rec := db.TxnRecord{TxnID: txnID, EventCount: txn.Events, Members: txn.Members, Commands: txn.Commands}
	if len(txn.Members) > 0 || len(txn.Commands) > 0 {
		rec.BotUserID = ms.BotUserID()
	}
	res, err := h.Recorder.Record(r.Context(), rec)
	if err != nil {
		respond.RecordError(r, err)
		h.txnDone(metrics.TxnFailed, 0)
		respond.Matrix(w, http.StatusInternalServerError, "M_UNKNOWN", "Could not record the transaction; retry later")
		return
	}
	h.txnDone(txnOutcome(res.New), txn.Events)
	if res.Commands > 0 || res.CommandsDropped > 0 {
		h.commandsDone(res.Commands, res.CommandsDropped)
	}
	if res.RoomsDirty > 0 && h.Wake != nil {
		h.Wake()
	}
	if res.Commands > 0 && h.WakeBot != nil {
		h.WakeBot() // the replies are queued: the sender picks them up now
	}
	writeEmpty(w)
}

// Ping is POST /_matrix/app/v1/ping: the homeserver checks that we answer.
func (h *Handler) Ping(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.checkHSToken(w, r); !ok {
		return
	}
	respond.JSON(w, http.StatusOK, struct{}{})
}

// QueryNotFound answers user and room-alias queries: this appservice creates its users
// and aliases itself before use, so it never claims one on demand.
func (h *Handler) QueryNotFound(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.checkHSToken(w, r); !ok {
		return
	}
	respond.Matrix(w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
}
