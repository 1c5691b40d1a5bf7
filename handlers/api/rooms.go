package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/auth"
	"matrixas/bot"
	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/matrix"
	"matrixas/settings"
)

// RoomJSON is a managed room in the rooms API.
type RoomJSON struct {
	UUID         string       `json:"uuid"`
	Project      string       `json:"project"`
	ProjectName  string       `json:"project_name"`
	RoomID       id.RoomID    `json:"room_id"`
	RoomAlias    id.RoomAlias `json:"room_alias"`
	RoomName     string       `json:"room_name"`
	State        string       `json:"state"`
	ErrorMessage string       `json:"error_message"`
	Notice       string       `json:"notice"`
	Attempts     int          `json:"attempts"`
	NextAttempt  *string      `json:"next_attempt_at"`
	// DeleteHistory: the disable under way deletes the room's history exports instead of
	// exporting its history.
	DeleteHistory bool    `json:"delete_history"`
	Created       *string `json:"created"`
	Modified      *string `json:"modified"`
}

// RoomDetailJSON is a room with its members (GET /api/matrix-rooms/{uuid}/).
type RoomDetailJSON struct {
	RoomJSON
	Members []RoomMemberJSON `json:"members"`
}

// RoomMemberJSON is one member of a room (the room detail, the members list).
type RoomMemberJSON struct {
	User         string    `json:"user"`
	Username     string    `json:"username"`
	FullName     string    `json:"full_name"`
	MatrixUserID id.UserID `json:"matrix_user_id"`
	Role         string    `json:"role"` // "" for a former member about to be removed, or staff who joined
	StaffJoined  bool      `json:"staff_joined"`
	PowerLevel   int       `json:"power_level"`
	Membership   string    `json:"membership"` // join, invite, leave, ban, or pending (not synced yet)
	LastError    string    `json:"last_error"`
	SyncedAt     *string   `json:"synced_at"`
}

// RoomToJSON is the API view of a room; the dashboard may use it too.
func RoomToJSON(r *db.Room) RoomJSON {
	out := RoomJSON{UUID: r.UUID, Project: r.ProjectUUID, ProjectName: r.ProjectName, RoomID: r.RoomID, RoomAlias: r.RoomAlias,
		RoomName: r.RoomName, State: string(r.State), ErrorMessage: r.ErrorMessage, Notice: r.Notice, Attempts: r.Attempts, DeleteHistory: r.DeleteHistory,
		Created: apiTime(r.CreatedAt), Modified: apiTime(r.ModifiedAt)}
	if r.State == db.RoomCreating || r.State == db.RoomDisabling || r.MembersDirty {
		out.NextAttempt = apiTime(r.NextAttemptAt)
	}
	return out
}

// roomMembersJSON is the API view of a room's members.
func roomMembersJSON(ms []*db.RoomMember) []RoomMemberJSON {
	out := make([]RoomMemberJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, roomMemberJSON(m))
	}
	return out
}

// roomMemberJSON is the API view of one member of a room.
func roomMemberJSON(m *db.RoomMember) RoomMemberJSON {
	membership := m.Membership
	if membership == "" {
		membership = "pending"
	}
	return RoomMemberJSON{User: m.UserUUID, Username: m.Username, FullName: m.FullName, MatrixUserID: m.MatrixUserID, Role: m.Role,
		StaffJoined: m.StaffJoined, PowerLevel: m.PowerLevel, Membership: membership, LastError: m.LastError, SyncedAt: apiTime(m.SyncedAt)}
}

// ListRooms is GET /api/matrix-rooms/: paginated; ?state=, ?project= and ?search=
// (room name, room id, alias, project name) filter, and ?member=true keeps the caller's
// own rooms (those they are in or invited to).
func (h *Handler) ListRooms(w http.ResponseWriter, r *http.Request) {
	f, errs := respond.RoomFilter(r)
	if s := r.URL.Query().Get("member"); s != "" {
		member, ok := settings.ParseBool(s)
		if !ok {
			errs.Add("member", "Must be a valid boolean.")
		} else if member {
			f.MemberUserID = auth.UserFrom(r.Context()).ID
		}
	}
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	serveList(h, w, r, func(p db.Page) ([]*db.Room, int, error) {
		f.Page = p
		return h.Store.ListRooms(r.Context(), f)
	}, RoomToJSON)
}

// CreateRoom is POST /api/matrix-rooms/ {"project": "<uuid>"}: queues the project's
// room (201, state creating); a project has one room, so a second is 400.
func (h *Handler) CreateRoom(w http.ResponseWriter, r *http.Request) {
	f, err := respond.ReadFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	raw := strings.TrimSpace(f["project"])
	if raw == "" {
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"project": {msgFieldRequired}})
		return
	}
	id, ok := db.NormalizeUUID(raw)
	if !ok {
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"project": {"Must be a valid UUID."}})
		return
	}
	p, err := h.Store.ProjectByUUID(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"project": {fmt.Sprintf("No project with uuid %s.", id)}})
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	room, err := h.Store.CreateRoom(r.Context(), p.ID)
	if errors.Is(err, db.ErrConflict) {
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"project": {"This project already has a Matrix room."}})
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	h.wake()
	respond.JSON(w, http.StatusCreated, RoomToJSON(room))
}

// roomFromPath loads the room named by {uuid}; it answers 404 itself.
func (h *Handler) roomFromPath(w http.ResponseWriter, r *http.Request) (*db.Room, bool) {
	return respond.FromPath(w, r, h.Store.RoomByUUID)
}

// GetRoom is GET /api/matrix-rooms/{uuid}/, with the members.
func (h *Handler) GetRoom(w http.ResponseWriter, r *http.Request) {
	room, ok := h.roomFromPath(w, r)
	if !ok {
		return
	}
	members, err := h.Store.RoomMembers(r.Context(), room.ID)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.JSON(w, http.StatusOK, RoomDetailJSON{RoomJSON: RoomToJSON(room), Members: roomMembersJSON(members)})
}

// actionFailed answers an error of a room action: 409 {"detail", "state"} when the
// room's state does not allow it (the state machine's answer), 404 for a room that is
// gone; it reports whether it answered.
func actionFailed(w http.ResponseWriter, r *http.Request, a db.RoomAction, err error) bool {
	var ae *db.ActionError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ae):
		stateConflict(w, a, ae.State)
	case errors.Is(err, db.ErrNotFound):
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
	default:
		respond.ServerError(w, r, err)
	}
	return true
}

// stateConflict is the 409 of an action the room's state does not allow.
func stateConflict(w http.ResponseWriter, a db.RoomAction, state db.RoomState) {
	respond.JSON(w, http.StatusConflict, map[string]string{
		"detail": fmt.Sprintf("Cannot %s a room in state %s (allowed from: %s).", strings.ReplaceAll(a.Name, "_", " "), state, joinStates(a.From)),
		"state":  string(state),
	})
}

func joinStates(states []db.RoomState) string {
	s := make([]string, len(states))
	for i, st := range states {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// accepted answers an action the worker carries out: 202 with the room as it now is.
func (h *Handler) accepted(w http.ResponseWriter, room *db.Room) {
	h.wake()
	h.wakeBot()
	respond.JSON(w, http.StatusAccepted, RoomToJSON(room))
}

// pathUUID is the {uuid} of the path, or "" when it is not a UUID (no such room).
func pathUUID(r *http.Request) string {
	id, _ := db.NormalizeUUID(chi.URLParam(r, "uuid"))
	return id
}

// RetryRoom is POST /api/matrix-rooms/{uuid}/retry/: error -> creating; a room in
// creating or disabling is worked on again at once. 202 with the room.
func (h *Handler) RetryRoom(w http.ResponseWriter, r *http.Request) {
	room, err := h.Store.RetryRoom(r.Context(), pathUUID(r))
	if !actionFailed(w, r, db.ActionRetry, err) {
		h.accepted(w, room)
	}
}

// DisableRoom is POST /api/matrix-rooms/{uuid}/disable/ {"delete_history": false}:
// active|error -> disabling, with "Chat room was deactivated" posted before anyone is
// removed; then the history is exported (or, with delete_history, the room's exports
// are deleted) and the room archived, keeping its Matrix room. 202 with the room.
func (h *Handler) DisableRoom(w http.ResponseWriter, r *http.Request) {
	f, err := respond.ReadOptionalFields(r)
	if err != nil {
		respond.BadBody(w, r, err)
		return
	}
	deleteHistory := false
	if s, ok := f["delete_history"]; ok {
		if deleteHistory, ok = settings.ParseBool(s); !ok {
			respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"delete_history": {"Must be a valid boolean."}})
			return
		}
	}
	room, err := h.Store.DisableRoom(r.Context(), pathUUID(r), deleteHistory, bot.RoomDeactivated(false))
	if !actionFailed(w, r, db.ActionDisable, err) {
		h.accepted(w, room)
	}
}

// ReactivateRoom is POST /api/matrix-rooms/{uuid}/reactivate/: archived -> active in
// the same Matrix room; the members are invited back, their power levels restored, and
// "Chat room was reactivated" posted. 202 with the room.
func (h *Handler) ReactivateRoom(w http.ResponseWriter, r *http.Request) {
	room, err := h.Store.ReactivateRoom(r.Context(), pathUUID(r), bot.RoomReactivated())
	if !actionFailed(w, r, db.ActionReactivate, err) {
		h.accepted(w, room)
	}
}

// SyncRoomMembers is POST /api/matrix-rooms/{uuid}/sync_members/: the room's members
// are synced with the project now. 202, no body.
func (h *Handler) SyncRoomMembers(w http.ResponseWriter, r *http.Request) {
	_, err := h.Store.SyncRoomMembers(r.Context(), pathUUID(r))
	if actionFailed(w, r, db.ActionSyncMembers, err) {
		return
	}
	h.wake()
	w.WriteHeader(http.StatusAccepted)
}

// JoinRoom is POST /api/matrix-rooms/{uuid}/join/ (staff): the caller joins the room's
// conversation as a moderator (power level 50) with a Matrix account of their own, and
// "NAME joined the room." is posted. 202 with the room; joining again changes nothing.
func (h *Handler) JoinRoom(w http.ResponseWriter, r *http.Request) {
	staff := auth.StaffFrom(r.Context())
	rules, err := h.profileRules(r)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	name := db.DisplayName(staff.FullName, staff.Username)
	room, _, err := h.Store.StaffJoinRoom(r.Context(), pathUUID(r), staff, rules, bot.StaffJoined(name))
	if errors.Is(err, db.ErrNoMatrixID) {
		respond.DetailError(w, http.StatusBadRequest, "Matrix is not set up: the homeserver domain is not configured, so you cannot get a Matrix account.")
		return
	}
	if !actionFailed(w, r, db.ActionJoin, err) {
		h.accepted(w, room)
	}
}

// LeaveRoom is POST /api/matrix-rooms/{uuid}/leave/ (staff): "NAME left the room." is
// posted and the caller, who joined through the join action, leaves the room. 202 with
// the room; 409 when they had not joined that way.
func (h *Handler) LeaveRoom(w http.ResponseWriter, r *http.Request) {
	staff := auth.StaffFrom(r.Context())
	name := db.DisplayName(staff.FullName, staff.Username)
	room, err := h.Store.StaffLeaveRoom(r.Context(), pathUUID(r), staff.ID, bot.StaffLeft(name))
	if errors.Is(err, db.ErrNotJoined) {
		respond.JSON(w, http.StatusConflict, map[string]string{
			"detail": "You have not joined this room through the join action.",
			"state":  string(db.RoomActive),
		})
		return
	}
	if !actionFailed(w, r, db.ActionLeave, err) {
		h.accepted(w, room)
	}
}

// OpenRoomJSON is the open action's answer.
type OpenRoomJSON struct {
	RoomID id.RoomID `json:"room_id"`
}

// OpenRoom is POST /api/matrix-rooms/{uuid}/open/ (any authenticated user): for a member
// of the room (an active user with a role in the project, or staff who joined), 200
// {"room_id"}, after accepting their pending invite by joining as them through the
// appservice (best effort: a client that syncs can accept it too). 403 for anyone else;
// 409 when the room is not active.
func (h *Handler) OpenRoom(w http.ResponseWriter, r *http.Request) {
	user := auth.UserFrom(r.Context())
	id := pathUUID(r)
	if id == "" {
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
		return
	}
	acc, err := h.Store.RoomAccessOf(r.Context(), id, user.ID)
	switch {
	case errors.Is(err, db.ErrNotFound):
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
		return
	case err != nil:
		respond.ServerError(w, r, err)
		return
	case !acc.Member:
		respond.DetailError(w, http.StatusForbidden, "You are not a member of this room.")
		return
	case !db.ActionOpen.Allowed(acc.Room.State) || acc.Room.RoomID == "":
		stateConflict(w, db.ActionOpen, acc.Room.State)
		return
	}
	if acc.Membership != string(event.MembershipJoin) && acc.MatrixUserID != "" {
		h.acceptInvite(r, acc)
	}
	respond.JSON(w, http.StatusOK, OpenRoomJSON{RoomID: acc.Room.RoomID})
}

// acceptInvite joins the member to the room as themselves; a failure (no invite yet, say)
// is logged and leaves it to the member sync, which it queues.
func (h *Handler) acceptInvite(r *http.Request, acc *db.RoomAccess) {
	ctx := r.Context()
	ms, err := h.Settings.Matrix(ctx)
	if err == nil {
		err = matrix.JoinAs(ctx, ms, h.HTTPClient, acc.MatrixUserID, acc.Room.RoomID)
	}
	if err == nil {
		err = h.Store.MarkMemberJoined(ctx, acc.Room.ID, auth.UserFrom(ctx).ID)
		if err == nil {
			return
		}
	}
	h.Log.Info("open: could not accept the invite; the member sync will", "room", acc.Room.UUID, "user", acc.MatrixUserID, "error", matrix.Reason(err))
	if _, err := h.Store.SyncRoomMembers(ctx, acc.Room.UUID); err == nil {
		h.wake()
	}
}

// DeleteRoom is DELETE /api/matrix-rooms/{uuid}/ (staff): the room's record goes, only in
// state error, creating or archived: 204; otherwise 409. The Matrix room itself stays.
func (h *Handler) DeleteRoom(w http.ResponseWriter, r *http.Request) {
	_, err := h.Store.DeleteRoom(r.Context(), pathUUID(r))
	if !actionFailed(w, r, db.ActionDelete, err) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// ListRoomMembers is GET /api/matrix-rooms/{uuid}/members/: the room's members,
// paginated like the other lists.
func (h *Handler) ListRoomMembers(w http.ResponseWriter, r *http.Request) {
	room, ok := h.roomFromPath(w, r)
	if !ok {
		return
	}
	serveList(h, w, r, func(p db.Page) ([]*db.RoomMember, int, error) {
		return h.Store.RoomMembersPage(r.Context(), room.ID, p)
	}, roomMemberJSON)
}

// EligibleProjectJSON is a project a room may be created for.
type EligibleProjectJSON struct {
	UUID string `json:"uuid"`
	Name string `json:"name"`
}

// EligibleProjects is GET /api/matrix-rooms/eligible_projects/: the projects the caller
// may create a room for that have none (and are not being deleted), paginated. Rooms are
// created by staff, so for anyone else the list is empty.
func (h *Handler) EligibleProjects(w http.ResponseWriter, r *http.Request) {
	staff := auth.StaffFrom(r.Context()) != nil
	serveList(h, w, r, func(p db.Page) ([]*db.Project, int, error) {
		if !staff {
			return nil, 0, nil
		}
		return h.Store.EligibleProjects(r.Context(), p)
	}, func(p *db.Project) EligibleProjectJSON { return EligibleProjectJSON{UUID: p.UUID, Name: p.Name} })
}

// ProfileJSON is a user's Matrix account in the profiles API.
type ProfileJSON struct {
	User          string    `json:"user"`
	Username      string    `json:"username"`
	MatrixUserID  id.UserID `json:"matrix_user_id"`
	IsActive      bool      `json:"is_active"`
	Provisioned   bool      `json:"provisioned"`
	ProvisionedAt *string   `json:"provisioned_at"`
	LastSyncedAt  *string   `json:"last_synced_at"`
	LastError     string    `json:"last_error"`
	// Registration says who made the account: "" (not asked for yet), sent (asked, no
	// answer yet), created, linked (an existing account linked on purpose) or refused (it
	// existed before and is not used: last_error says how to link it).
	Registration db.Registration `json:"registration"`
	// SignedOut: the user is deactivated and their devices were signed out; Locked: their
	// account was locked on the homeserver too (where the bot may).
	SignedOut bool `json:"signed_out"`
	Locked    bool `json:"locked"`
}

// ListProfiles is GET /api/matrix-user-profiles/: paginated; ?search= and
// ?provisioned= filter.
func (h *Handler) ListProfiles(w http.ResponseWriter, r *http.Request) {
	f := db.ProfileFilter{Search: strings.TrimSpace(r.URL.Query().Get("search"))}
	if s := r.URL.Query().Get("provisioned"); s != "" {
		b, ok := settings.ParseBool(s)
		if !ok {
			respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"provisioned": {"Must be a valid boolean."}})
			return
		}
		f.Provisioned = &b
	}
	serveList(h, w, r, func(p db.Page) ([]*db.Profile, int, error) {
		f.Page = p
		return h.Store.ListProfiles(r.Context(), f)
	}, profileJSON)
}

// profileJSON is a profile as the API shows it.
func profileJSON(pr *db.Profile) ProfileJSON {
	return ProfileJSON{User: pr.UserUUID, Username: pr.Username, MatrixUserID: pr.MatrixUserID, IsActive: pr.IsActive,
		Provisioned: pr.Provisioned, ProvisionedAt: apiTime(pr.ProvisionedAt), LastSyncedAt: apiTime(pr.LastSyncedAt), LastError: pr.LastError,
		Registration: pr.Registration, SignedOut: pr.SignedOut, Locked: pr.Locked}
}
