package ui

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/redirect"
	"matrixas/views"
)

// uiPageSize is how many rows one page of a dashboard list shows.
const uiPageSize = 25

func roomRow(r *db.Room) views.RoomRow {
	return views.RoomRow{
		UUID: r.UUID, ProjectUUID: r.ProjectUUID, ProjectName: r.ProjectName, RoomID: r.RoomID.String(), RoomAlias: r.RoomAlias.String(),
		RoomName: r.RoomName, State: string(r.State), ErrorMessage: r.ErrorMessage, Notice: r.Notice, Attempts: r.Attempts,
		NextAttemptAt: r.NextAttemptAt, CreatedAt: r.CreatedAt, ModifiedAt: r.ModifiedAt,
	}
}

// powerRule says in words who gets which power level in a project's room, from the one
// rule (db.RolePowerLevel, db.BotPowerLevel).
func powerRule() string {
	return fmt.Sprintf("Project admins and the owners of the project's customer get power level %d, managers %d, members %d; the bot has %d.",
		db.RolePowerLevel(db.RoleAdmin), db.RolePowerLevel(db.RoleManager), db.RolePowerLevel(db.RoleMember), db.BotPowerLevel)
}

// stateCounts keys room counts by the state's name, as the views show them.
func stateCounts(c map[db.RoomState]int) map[string]int {
	out := make(map[string]int, len(c))
	for st, n := range c {
		out[string(st)] = n
	}
	return out
}

// htmxTarget is the id of the element an htmx request will swap ("" when not htmx).
func htmxTarget(r *http.Request) string {
	if !isHTMX(r) {
		return ""
	}
	return r.Header.Get("HX-Target")
}

// pushCleanURL makes htmx put url (the list's filters without empty ones) in the address
// bar when the filter form asked, instead of the form's raw query ("?state=&search=").
func pushCleanURL(w http.ResponseWriter, r *http.Request, url string) {
	if strings.HasSuffix(r.Header.Get("HX-Trigger"), "-filter") {
		w.Header().Set("HX-Push-Url", url)
	}
}

// RoomsPage is GET /rooms: filter by state, search, paginate. htmx requests aimed at the
// table (filters, pages, polling) get only the table.
func (h *Handler) RoomsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, errs := respond.RoomFilter(r)
	d := views.RoomsData{Page: h.page(w, r, "Rooms", "rooms"), Search: f.Search}
	if len(errs) > 0 {
		// A hand-edited URL: say so and show every room rather than failing.
		d.FilterError = "Ignored a filter that is not valid: " + errs.First("state") + errs.First("project")
		f.State, f.ProjectUUID = "", ""
	}
	d.State = string(f.State)
	page := pageNumber(r.URL.Query())
	f.Page = db.Page{Number: page, Size: uiPageSize}
	rooms, total, err := h.Store.ListRooms(ctx, f)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	counts, err := h.Store.RoomStateCounts(ctx)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	d.Counts = stateCounts(counts)
	for _, room := range rooms {
		d.Rows = append(d.Rows, roomRow(room))
	}
	d.Self = views.RoomsLink(d.State, d.Search, page)
	d.Pager = views.Pager{Page: page, PageSize: uiPageSize, Total: total, Target: "#rooms-table",
		Link: func(n int) string { return views.RoomsLink(d.State, d.Search, n) }}
	w.Header().Set("Vary", "HX-Request")
	if htmxTarget(r) == "rooms-table" {
		pushCleanURL(w, r, d.Self)
		respond.Render(w, r, views.RoomsTable(d))
		return
	}
	respond.Render(w, r, views.RoomsPage(d))
}

// RoomDetail is GET /rooms/{uuid}: the room, its members and their power levels.
func (h *Handler) RoomDetail(w http.ResponseWriter, r *http.Request) {
	room, ok := respond.FromPath(w, r, h.Store.RoomByUUID)
	if !ok {
		return
	}
	members, err := h.Store.RoomMembers(r.Context(), room.ID)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	d := views.RoomDetailData{Page: h.page(w, r, room.ProjectName+" · Rooms", "rooms"), Room: roomRow(room), PowerRule: powerRule()}
	if d.Exports, err = h.roomExports(r.Context(), room); err != nil {
		respond.ServerError(w, r, err)
		return
	}
	for _, m := range members {
		d.Members = append(d.Members, views.MemberRow{UserUUID: m.UserUUID, Username: m.Username, MatrixUserID: m.MatrixUserID.String(),
			Role: m.Role, PowerLevel: m.PowerLevel, Membership: m.Membership, LastError: m.LastError, SyncedAt: m.SyncedAt})
	}
	recent, err := h.Store.RoomOutbox(r.Context(), room.ID, roomBotMessages)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	for _, m := range recent {
		d.BotMessages = append(d.BotMessages, outboxRow(m))
	}
	respond.Render(w, r, views.RoomDetailPage(d))
}

// RoomRetry is POST /rooms/{uuid}/retry.
func (h *Handler) RoomRetry(w http.ResponseWriter, r *http.Request) {
	h.roomUIAction(w, r, db.ActionRetry)
}

// RoomDisable is POST /rooms/{uuid}/disable.
func (h *Handler) RoomDisable(w http.ResponseWriter, r *http.Request) {
	h.roomUIAction(w, r, db.ActionDisable)
}

// RoomReactivate is POST /rooms/{uuid}/reactivate.
func (h *Handler) RoomReactivate(w http.ResponseWriter, r *http.Request) {
	h.roomUIAction(w, r, db.ActionReactivate)
}

// roomActionDone is the flash after a successful action.
var roomActionDone = map[string]string{
	db.ActionRetry.Name:      "Room of %s queued for creation again.",
	db.ActionDisable.Name:    "Room of %s is being disabled: the bot removes every member, then leaves.",
	db.ActionReactivate.Name: "Room of %s is active again; its members are being synced.",
}

// roomUIAction applies a staff action through the same state machine as the API. htmx
// gets the updated table row and a flash; a plain form is redirected back to next.
func (h *Handler) roomUIAction(w http.ResponseWriter, r *http.Request, a db.RoomAction) {
	if !h.readForm(w, r) {
		return
	}
	id, ok := db.NormalizeUUID(chi.URLParam(r, "uuid"))
	if !ok {
		h.uiFail(w, r, http.StatusNotFound, "There is no such room.")
		return
	}
	next := redirect.Local(r.PostFormValue("next"), "/rooms/"+id)
	room, err := h.Store.ApplyRoomAction(r.Context(), id, a)
	var te *db.TransitionError
	switch {
	case errors.As(err, &te):
		msg := fmt.Sprintf("Cannot %s a room in state %s: it changed meanwhile. The page shows it as it is now.", a.Name, te.From)
		if isHTMX(r) {
			h.uiFail(w, r, http.StatusConflict, msg)
			return
		}
		h.redirectFlash(w, r, next, views.FlashError, msg)
		return
	case errors.Is(err, db.ErrNotFound):
		h.uiFail(w, r, http.StatusNotFound, "There is no such room.")
		return
	case err != nil:
		h.uiServerError(w, r, err)
		return
	}
	h.wake()
	msg := fmt.Sprintf(roomActionDone[a.Name], room.ProjectName)
	if !isHTMX(r) {
		h.redirectFlash(w, r, next, views.FlashSuccess, msg)
		return
	}
	h.renderFragments(w, r, views.RoomTableRow(roomRow(room), next), views.FlashesOOB([]views.Flash{{Kind: views.FlashSuccess, Message: msg}}))
}
