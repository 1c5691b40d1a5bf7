package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/handlers/respond"
)

// OutboxMessageJSON is a message of the bot's outbox: what was queued, and what became
// of it. The command a reply answers is not shown (it is a user's message).
type OutboxMessageJSON struct {
	UUID        string     `json:"uuid"`
	Kind        string     `json:"kind"`
	State       string     `json:"state"`
	Room        string     `json:"room"`
	RoomID      id.RoomID  `json:"room_id"`
	Body        string     `json:"body"`
	Attempts    int        `json:"attempts"`
	NextAttempt *string    `json:"next_attempt_at"`
	LastError   string     `json:"last_error"`
	EventID     id.EventID `json:"event_id"`
	Created     *string    `json:"created"`
	SentAt      *string    `json:"sent_at"`
	FailedAt    *string    `json:"failed_at"`
}

// OutboxMessageToJSON is the API view of an outbox message.
func OutboxMessageToJSON(m *db.OutboxMessage) OutboxMessageJSON {
	out := OutboxMessageJSON{UUID: m.UUID, Kind: string(m.Kind), State: string(m.State), Room: m.RoomUUID, RoomID: m.RoomID,
		Body: m.Body, Attempts: m.Attempts, LastError: m.LastError, EventID: m.EventID,
		Created: apiTime(m.CreatedAt), SentAt: apiTime(m.SentAt), FailedAt: apiTime(m.FailedAt)}
	if m.State == db.OutboxPending {
		out.NextAttempt = apiTime(m.NextAttemptAt)
		if out.NextAttempt == nil {
			out.NextAttempt = out.Created // due at once
		}
	}
	return out
}

// SendMessage is POST /api/matrix-rooms/{uuid}/messages/ {"body": "<markdown>"}: queues
// a notification from the bot into the room (202 with the queued message; the sender
// posts it with its HTML). A room that is not active is 409; an empty or too long body
// 400.
func (h *Handler) SendMessage(w http.ResponseWriter, r *http.Request) {
	room, ok := h.roomFromPath(w, r)
	if !ok {
		return
	}
	f, err := respond.ReadFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	body, present := f["body"]
	switch {
	case !present:
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"body": {msgFieldRequired}})
		return
	case strings.TrimSpace(body) == "":
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"body": {"This field may not be blank."}})
		return
	case len(body) > db.MaxOutboxBody:
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"body": {
			fmt.Sprintf("Ensure this field has no more than %d bytes (it has %d).", db.MaxOutboxBody, len(body))}})
		return
	}
	m, err := h.Store.QueueActiveRoomNotification(r.Context(), room.ID, body)
	var na *db.RoomNotActiveError
	switch {
	case errors.As(err, &na):
		respond.JSON(w, http.StatusConflict, map[string]string{
			"detail": fmt.Sprintf("Cannot post into a room in state %s: only an active room takes messages.", na.State),
			"state":  string(na.State),
		})
		return
	case errors.Is(err, db.ErrNotFound):
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
		return
	case err != nil:
		respond.ServerError(w, r, err)
		return
	}
	h.wakeBot()
	respond.JSON(w, http.StatusAccepted, OutboxMessageToJSON(m))
}
