package ui

import (
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/redirect"
	"matrixas/views"
)

// outboxBodyShown bounds how much of a message's Markdown a list shows (a message may
// be 16 KiB).
const outboxBodyShown = 400

// roomBotMessages is how many recent bot messages a room's page shows.
const roomBotMessages = 10

func outboxRow(m *db.OutboxMessage) views.OutboxRow {
	body, short := m.Body, false
	if len(body) > outboxBodyShown {
		n := outboxBodyShown
		for n > 0 && !utf8.RuneStart(body[n]) {
			n--
		}
		body, short = body[:n], true
	}
	cmd := m.CommandBody
	if len(cmd) > 64 {
		n := 64
		for n > 0 && !utf8.RuneStart(cmd[n]) {
			n--
		}
		cmd = cmd[:n] + "…"
	}
	return views.OutboxRow{
		UUID: m.UUID, Kind: string(m.Kind), State: string(m.State), RoomUUID: m.RoomUUID, ProjectName: m.ProjectName,
		Body: body, Shortened: short, Command: cmd, CommandSender: m.CommandSender.String(),
		Attempts: m.Attempts, LastError: m.LastError, EventID: m.EventID.String(),
		NextAttemptAt: m.NextAttemptAt, CreatedAt: m.CreatedAt, SentAt: m.SentAt, FailedAt: m.FailedAt,
	}
}

// OutboxPage is GET /outbox: the bot's messages, newest first; ?state= and ?room= (a
// room's uuid) filter, ?page= pages. htmx requests aimed at the table (the filter, the
// pages, polling while messages are pending) get only the table.
func (h *Handler) OutboxPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	d := views.OutboxData{Page: h.page(w, r, "Outbox", "outbox")}
	f := db.OutboxFilter{}
	if s := db.OutboxState(q.Get("state")); s != "" {
		if s.Valid() {
			f.State = s
		} else {
			d.FilterError = fmt.Sprintf("Ignored the state filter %q: it is pending, sent or failed.", s)
		}
	}
	if raw := q.Get("room"); raw != "" {
		id, ok := db.NormalizeUUID(raw)
		var room *db.Room
		var err error
		if ok {
			room, err = h.Store.RoomByUUID(ctx, id)
		}
		switch {
		case !ok || errors.Is(err, db.ErrNotFound):
			d.FilterError = "Ignored the room filter: there is no such room."
		case err != nil:
			h.uiServerError(w, r, err)
			return
		default:
			f.RoomUUID, d.RoomUUID, d.RoomName = room.UUID, room.UUID, room.ProjectName
		}
	}
	d.State = string(f.State)
	page := pageNumber(q)
	f.Page = db.Page{Number: page, Size: uiPageSize}
	msgs, total, err := h.Store.ListOutbox(ctx, f)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	counts, err := h.Store.OutboxStateCounts(ctx)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	d.Counts = map[string]int{}
	for st, n := range counts {
		d.Counts[string(st)] = n
	}
	for _, m := range msgs {
		d.Rows = append(d.Rows, outboxRow(m))
	}
	d.Self = views.OutboxLink(d.State, d.RoomUUID, page)
	d.Pager = views.Pager{Page: page, PageSize: uiPageSize, Total: total, Target: "#outbox-table",
		Link: func(n int) string { return views.OutboxLink(d.State, d.RoomUUID, n) }}
	w.Header().Set("Vary", "HX-Request")
	if htmxTarget(r) == "outbox-table" {
		pushCleanURL(w, r, d.Self)
		respond.Render(w, r, views.OutboxTable(d))
		return
	}
	respond.Render(w, r, views.OutboxPage(d))
}

// OutboxRetry is POST /outbox/{uuid}/retry: a failed message goes back in the queue (a
// new round of attempts; the sender first looks in the room for an earlier send that
// did arrive). htmx gets the updated row and a flash; a plain form is redirected back
// to next.
func (h *Handler) OutboxRetry(w http.ResponseWriter, r *http.Request) {
	if !h.readForm(w, r) {
		return
	}
	id, ok := db.NormalizeUUID(chi.URLParam(r, "uuid"))
	if !ok {
		h.uiFail(w, r, http.StatusNotFound, "There is no such message.")
		return
	}
	next := redirect.Local(r.PostFormValue("next"), "/outbox")
	m, err := h.Store.RetryOutbox(r.Context(), id)
	switch {
	case errors.Is(err, db.ErrConflict):
		msg := "This message is not failed any more (it was retried meanwhile): the page shows it as it is now."
		if isHTMX(r) {
			h.uiFail(w, r, http.StatusConflict, msg)
			return
		}
		h.redirectFlash(w, r, next, views.FlashError, msg)
		return
	case errors.Is(err, db.ErrNotFound):
		h.uiFail(w, r, http.StatusNotFound, "There is no such message (failed messages are pruned after 7 days).")
		return
	case err != nil:
		h.uiServerError(w, r, err)
		return
	}
	h.wakeBot()
	msg := fmt.Sprintf("The message to %s is queued again; the bot sends it now.", m.ProjectName)
	if !isHTMX(r) {
		h.redirectFlash(w, r, next, views.FlashSuccess, msg)
		return
	}
	h.renderFragments(w, r, views.OutboxTableRow(outboxRow(m), next), views.FlashesOOB([]views.Flash{{Kind: views.FlashSuccess, Message: msg}}))
}
