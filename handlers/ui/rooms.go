package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"matrixas/auth"
	"matrixas/bot"
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
// rule (db.MemberPowerLevel, db.BotPowerLevel).
func powerRule() string {
	return fmt.Sprintf("Project admins and the owners of the project's customer get power level %d, managers %d, members %d, staff who join through Join %d; the bot has %d.",
		db.MemberPowerLevel(db.RoleAdmin, false), db.MemberPowerLevel(db.RoleManager, false), db.MemberPowerLevel(db.RoleMember, false),
		db.MemberPowerLevel("", true), db.BotPowerLevel)
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

// RoomDetail is GET /rooms/{uuid}: the room, its members and their power levels, and
// every action its state allows.
func (h *Handler) RoomDetail(w http.ResponseWriter, r *http.Request) {
	room, ok := respond.FromPath(w, r, h.Store.RoomByUUID)
	if !ok {
		return
	}
	d, err := h.roomDetailData(r, room)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	d.Page = h.page(w, r, room.ProjectName+" · Rooms", "rooms")
	respond.Render(w, r, views.RoomDetailPage(d))
}

// roomDetailData is the room page's view model but for the layout.
func (h *Handler) roomDetailData(r *http.Request, room *db.Room) (views.RoomDetailData, error) {
	members, err := h.Store.RoomMembers(r.Context(), room.ID)
	if err != nil {
		return views.RoomDetailData{}, err
	}
	d := views.RoomDetailData{Room: roomRow(room), PowerRule: powerRule(), ProjectDeleting: room.ProjectDeleting}
	if d.Exports, err = h.roomExports(r.Context(), room); err != nil {
		return views.RoomDetailData{}, err
	}
	me := auth.StaffFrom(r.Context())
	for _, m := range members {
		d.Members = append(d.Members, views.MemberRow{UserUUID: m.UserUUID, Username: m.Username, MatrixUserID: m.MatrixUserID.String(),
			Role: m.Role, StaffJoined: m.StaffJoined, PowerLevel: m.PowerLevel, Membership: m.Membership, LastError: m.LastError, SyncedAt: m.SyncedAt})
		if me != nil && m.UserID == me.ID && m.StaffJoined {
			d.Joined = true
		}
	}
	recent, err := h.Store.RoomOutbox(r.Context(), room.ID, roomBotMessages)
	if err != nil {
		return views.RoomDetailData{}, err
	}
	for _, m := range recent {
		d.BotMessages = append(d.BotMessages, outboxRow(m))
	}
	return d, nil
}

// RoomRetry is POST /rooms/{uuid}/retry.
func (h *Handler) RoomRetry(w http.ResponseWriter, r *http.Request) {
	h.roomUIAction(w, r, db.ActionRetry, "Room of %s queued again.", h.Store.RetryRoom)
}

// RoomDisable is POST /rooms/{uuid}/disable (delete_history=true deletes the room's
// history exports instead of making one).
func (h *Handler) RoomDisable(w http.ResponseWriter, r *http.Request) {
	h.roomUIAction(w, r, db.ActionDisable, "Room of %s is being disabled: the notice is posted, then every member is removed and the room archived.",
		func(ctx context.Context, id string) (*db.Room, error) {
			return h.Store.DisableRoom(ctx, id, r.PostFormValue("delete_history") == "true", bot.RoomDeactivated(false))
		})
}

// RoomReactivate is POST /rooms/{uuid}/reactivate.
func (h *Handler) RoomReactivate(w http.ResponseWriter, r *http.Request) {
	h.roomUIAction(w, r, db.ActionReactivate, "Room of %s is active again, in the same Matrix room; its members are being invited back.",
		func(ctx context.Context, id string) (*db.Room, error) {
			return h.Store.ReactivateRoom(ctx, id, bot.RoomReactivated())
		})
}

// RoomSyncMembers is POST /rooms/{uuid}/sync-members.
func (h *Handler) RoomSyncMembers(w http.ResponseWriter, r *http.Request) {
	h.roomUIAction(w, r, db.ActionSyncMembers, "Members of the room of %s are being synced.", h.Store.SyncRoomMembers)
}

// RoomJoin is POST /rooms/{uuid}/join: the signed-in staff member joins the room as a
// moderator.
func (h *Handler) RoomJoin(w http.ResponseWriter, r *http.Request) {
	staff := auth.StaffFrom(r.Context())
	h.roomUIAction(w, r, db.ActionJoin, "You are joining the room of %s as a moderator; your Matrix account is "+
		"invited and joined in a moment.", func(ctx context.Context, id string) (*db.Room, error) {
		ms, err := h.Settings.Matrix(ctx)
		if err != nil {
			return nil, err
		}
		room, _, err := h.Store.StaffJoinRoom(ctx, id, staff, ms.ProfileRules(), bot.StaffJoined(db.DisplayName(staff.FullName, staff.Username)))
		return room, err
	})
}

// RoomLeave is POST /rooms/{uuid}/leave: the signed-in staff member leaves the room they
// joined.
func (h *Handler) RoomLeave(w http.ResponseWriter, r *http.Request) {
	staff := auth.StaffFrom(r.Context())
	h.roomUIAction(w, r, db.ActionLeave, "You are leaving the room of %s.", func(ctx context.Context, id string) (*db.Room, error) {
		return h.Store.StaffLeaveRoom(ctx, id, staff.ID, bot.StaffLeft(db.DisplayName(staff.FullName, staff.Username)))
	})
}

// RoomDelete is POST /rooms/{uuid}/delete: the room's record goes (the Matrix room
// stays); back to the rooms list.
func (h *Handler) RoomDelete(w http.ResponseWriter, r *http.Request) {
	id, next, ok := h.roomForm(w, r)
	if !ok {
		return
	}
	room, err := h.Store.RoomByUUID(r.Context(), id)
	if h.roomActionFailed(w, r, db.ActionDelete, next, err) {
		return
	}
	_, err = h.Store.DeleteRoom(r.Context(), id)
	if h.roomActionFailed(w, r, db.ActionDelete, next, err) {
		return
	}
	msg := fmt.Sprintf("The room record of %s was deleted; the Matrix room itself is left as it was.", room.ProjectName)
	if next == "/rooms/"+id { // the room's own page is gone
		next = "/rooms"
	}
	if !isHTMX(r) {
		h.redirectFlash(w, r, next, views.FlashSuccess, msg)
		return
	}
	// htmx: the page it was on may show the room no more; go where a form would.
	h.flash(w, r, views.FlashSuccess, msg)
	w.Header().Set("HX-Redirect", next)
	w.WriteHeader(http.StatusOK)
}

// roomActionFailed answers a refused or failed room action like the other room forms:
// a state that changed meanwhile is said in a flash (409 for htmx); it reports whether
// it answered.
func (h *Handler) roomActionFailed(w http.ResponseWriter, r *http.Request, a db.RoomAction, next string, err error) bool {
	var ae *db.ActionError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ae):
		msg := fmt.Sprintf("Cannot %s a room in state %s: it changed meanwhile. The page shows it as it is now.", strings.ReplaceAll(a.Name, "_", " "), ae.State)
		if isHTMX(r) {
			h.uiFail(w, r, http.StatusConflict, msg)
			return true
		}
		h.redirectFlash(w, r, next, views.FlashError, msg)
	case errors.Is(err, db.ErrNotJoined):
		h.redirectOrFail(w, r, next, "You have not joined this room through Join.")
	case errors.Is(err, db.ErrNoMatrixID):
		h.redirectOrFail(w, r, next, "Matrix is not set up: the homeserver domain is not configured, so you cannot get a Matrix account.")
	case errors.Is(err, db.ErrNotFound):
		h.uiFail(w, r, http.StatusNotFound, "There is no such room.")
	default:
		h.uiServerError(w, r, err)
	}
	return true
}

// redirectOrFail says msg as an error: a flash after a redirect to next, or for htmx in
// the flash area with 409.
func (h *Handler) redirectOrFail(w http.ResponseWriter, r *http.Request, next, msg string) {
	if isHTMX(r) {
		h.uiFail(w, r, http.StatusConflict, msg)
		return
	}
	h.redirectFlash(w, r, next, views.FlashError, msg)
}

// roomForm reads a room form's body and its room: the room's uuid from the path (a
// malformed one is 404) and next, the local page to go back to (the room's page by
// default). ok is false once the answer is written.
func (h *Handler) roomForm(w http.ResponseWriter, r *http.Request) (id, next string, ok bool) {
	if !h.readForm(w, r) {
		return "", "", false
	}
	if id, ok = db.NormalizeUUID(chi.URLParam(r, "uuid")); !ok {
		h.uiFail(w, r, http.StatusNotFound, "There is no such room.")
		return "", "", false
	}
	return id, redirect.Local(r.PostFormValue("next"), "/rooms/"+id), true
}

// roomUIAction applies a room action (do, one of the store's actions, which checks it
// against the room's state like the API) from a dashboard form. htmx gets what it swaps
// (the list's row, or the room page's body) and a flash; a plain form is redirected back
// to next with the flash done (a format taking the project's name).
func (h *Handler) roomUIAction(w http.ResponseWriter, r *http.Request, a db.RoomAction, done string,
	do func(ctx context.Context, uuid string) (*db.Room, error)) {
	id, next, ok := h.roomForm(w, r)
	if !ok {
		return
	}
	room, err := do(r.Context(), id)
	if h.roomActionFailed(w, r, a, next, err) {
		return
	}
	h.wake()
	h.wakeBot()
	msg := fmt.Sprintf(done, room.ProjectName)
	if !isHTMX(r) {
		h.redirectFlash(w, r, next, views.FlashSuccess, msg)
		return
	}
	flash := views.FlashesOOB([]views.Flash{{Kind: views.FlashSuccess, Message: msg}})
	if htmxTarget(r) == "room-detail" {
		d, err := h.roomDetailData(r, room)
		if err != nil {
			h.uiServerError(w, r, err)
			return
		}
		h.renderFragments(w, r, views.RoomDetailBody(d), flash)
		return
	}
	h.renderFragments(w, r, views.RoomTableRow(roomRow(room), next), flash)
}
