package handlers

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"matrixas/db"
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
		writeMatrixError(w, http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
		return nil, false
	}
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		recordError(r, err)
		writeMatrixError(w, http.StatusInternalServerError, "M_UNKNOWN", "Settings unavailable; retry later")
		return nil, false
	}
	if ms.HSToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(ms.HSToken)) != 1 {
		writeMatrixError(w, http.StatusForbidden, "M_FORBIDDEN", "Invalid access token")
		return nil, false
	}
	return ms, true
}

// txnBody is the part of a transaction the server reads, decoded in one pass. Events
// is a pointer so that a missing or null list can be told from an empty one.
type txnBody struct {
	Events *[]txnEvent `json:"events"`
}

// txnEvent is the part of an event the server reads.
type txnEvent struct {
	Type     string  `json:"type"`
	EventID  string  `json:"event_id"`
	RoomID   string  `json:"room_id"`
	Sender   string  `json:"sender"`
	StateKey *string `json:"state_key"`
	Content  struct {
		Membership string `json:"membership"`
	} `json:"content"`
}

// errTxnBody is a transaction body that is not acceptable, with its Matrix errcode.
type errTxnBody struct{ code, msg string }

func (e errTxnBody) Error() string { return e.msg }

// ParseTransaction validates a transaction body and returns its event count and the
// membership events in it. A body that is not JSON is M_NOT_JSON; one that is not an
// object, or whose events is missing or not a list of objects, is M_BAD_JSON.
func ParseTransaction(body []byte) (int, []db.MemberEvent, error) {
	var tb txnBody
	if err := json.Unmarshal(body, &tb); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return 0, nil, errTxnBody{"M_NOT_JSON", "The body is not valid JSON"}
		}
		if typeErr.Field == "" {
			return 0, nil, errTxnBody{"M_BAD_JSON", "The transaction must be a JSON object"}
		}
		if !strings.HasPrefix(typeErr.Field, "events.") {
			return 0, nil, errTxnBody{"M_BAD_JSON", "events must be a list of event objects"}
		}
		// A field inside an event has an unexpected type (event content is written by
		// users). encoding/json went on decoding the rest; refusing the transaction
		// would make the homeserver retry it forever, so the odd field is left empty.
	}
	if tb.Events == nil {
		return 0, nil, errTxnBody{"M_BAD_JSON", "events must be a list"}
	}
	events := *tb.Events
	var members []db.MemberEvent
	for _, e := range events {
		if e.Type != "m.room.member" || e.StateKey == nil || *e.StateKey == "" || e.RoomID == "" || e.EventID == "" {
			continue
		}
		members = append(members, db.MemberEvent{
			EventID: e.EventID, RoomID: e.RoomID, StateKey: *e.StateKey, Sender: e.Sender, Membership: e.Content.Membership,
		})
	}
	return len(events), members, nil
}

// Transaction is PUT /_matrix/app/v1/transactions/{txnId}: the homeserver pushes events.
// A 200 always means the transaction is durably recorded; a repeated txnId is a no-op;
// any failure to record is a 5xx, so the homeserver delivers it again later.
func (h *Handler) Transaction(w http.ResponseWriter, r *http.Request) {
	ms, ok := h.checkHSToken(w, r)
	if !ok {
		return
	}
	txnID := chi.URLParam(r, "txnId")
	if txnID == "" || len(txnID) > maxTxnIDLen {
		writeMatrixError(w, http.StatusBadRequest, "M_INVALID_PARAM", "Invalid transaction id")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeMatrixError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Transaction too large")
			return
		}
		writeMatrixError(w, http.StatusBadRequest, "M_BAD_JSON", "Could not read the body")
		return
	}
	if !ms.Enabled {
		writeJSON(w, http.StatusOK, struct{}{}) // disabled: acknowledge and discard
		return
	}
	count, members, err := ParseTransaction(body)
	if err != nil {
		var bad errTxnBody
		errors.As(err, &bad)
		writeMatrixError(w, http.StatusBadRequest, bad.code, bad.msg)
		return
	}
	res, err := h.Recorder.Record(r.Context(), db.TxnRecord{
		TxnID: txnID, EventCount: count, Members: members, BotUserID: ms.BotUserID(),
	})
	if err != nil {
		recordError(r, err)
		writeMatrixError(w, http.StatusInternalServerError, "M_UNKNOWN", "Could not record the transaction; retry later")
		return
	}
	if res.RoomsDirty > 0 && h.Wake != nil {
		h.Wake()
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// Ping is POST /_matrix/app/v1/ping: the homeserver checks that we answer.
func (h *Handler) Ping(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.checkHSToken(w, r); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// QueryNotFound answers user and room-alias queries: this appservice creates its users
// and aliases itself before use, so it never claims one on demand.
func (h *Handler) QueryNotFound(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.checkHSToken(w, r); !ok {
		return
	}
	writeMatrixError(w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
}
