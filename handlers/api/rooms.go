package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/settings"

	"maunium.net/go/mautrix/id"
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
	Created      *string      `json:"created"`
	Modified     *string      `json:"modified"`
}

// RoomDetailJSON is a room with its members (GET /api/matrix-rooms/{uuid}/).
type RoomDetailJSON struct {
	RoomJSON
	Members []RoomMemberJSON `json:"members"`
}

// RoomMemberJSON is one member of a room in the room detail.
type RoomMemberJSON struct {
	User         string    `json:"user"`
	Username     string    `json:"username"`
	MatrixUserID id.UserID `json:"matrix_user_id"`
	Role         string    `json:"role"` // "" for a former member about to be removed
	PowerLevel   int       `json:"power_level"`
	Membership   string    `json:"membership"` // join, invite, leave, ban, or pending (not synced yet)
	LastError    string    `json:"last_error"`
	SyncedAt     *string   `json:"synced_at"`
}

// RoomToJSON is the API view of a room; the dashboard may use it too.
func RoomToJSON(r *db.Room) RoomJSON {
	out := RoomJSON{UUID: r.UUID, Project: r.ProjectUUID, ProjectName: r.ProjectName, RoomID: r.RoomID, RoomAlias: r.RoomAlias,
		RoomName: r.RoomName, State: string(r.State), ErrorMessage: r.ErrorMessage, Notice: r.Notice, Attempts: r.Attempts,
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
		membership := m.Membership
		if membership == "" {
			membership = "pending"
		}
		out = append(out, RoomMemberJSON{User: m.UserUUID, Username: m.Username, MatrixUserID: m.MatrixUserID, Role: m.Role,
			PowerLevel: m.PowerLevel, Membership: membership, LastError: m.LastError, SyncedAt: apiTime(m.SyncedAt)})
	}
	return out
}

// ListRooms is GET /api/matrix-rooms/: paginated; ?state=, ?project= and ?search=
// (room name, room id, alias, project name) filter.
func (h *Handler) ListRooms(w http.ResponseWriter, r *http.Request) {
	f, errs := respond.RoomFilter(r)
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

// roomAction answers POST /api/matrix-rooms/{uuid}/<action>/: 200 with the room, or 409
// {"detail", "state"} when the room's state does not allow it.
func (h *Handler) roomAction(w http.ResponseWriter, r *http.Request, a db.RoomAction) {
	room, ok := h.roomFromPath(w, r)
	if !ok {
		return
	}
	room, err := h.Store.ApplyRoomAction(r.Context(), room.UUID, a)
	var te *db.TransitionError
	switch {
	case errors.As(err, &te):
		respond.JSON(w, http.StatusConflict, map[string]string{
			"detail": fmt.Sprintf("Cannot %s a room in state %s (allowed from: %s).", a.Name, te.From, joinStates(a.From)),
			"state":  string(te.From),
		})
		return
	case errors.Is(err, db.ErrNotFound):
		respond.Fail(w, r, http.StatusNotFound, "Not found.")
		return
	case err != nil:
		respond.ServerError(w, r, err)
		return
	}
	h.wake()
	respond.JSON(w, http.StatusOK, RoomToJSON(room))
}

func joinStates(states []db.RoomState) string {
	s := make([]string, len(states))
	for i, st := range states {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// RetryRoom is POST /api/matrix-rooms/{uuid}/retry/: error -> creating.
func (h *Handler) RetryRoom(w http.ResponseWriter, r *http.Request) {
	h.roomAction(w, r, db.ActionRetry)
}

// DisableRoom is POST /api/matrix-rooms/{uuid}/disable/: active|error -> disabling.
func (h *Handler) DisableRoom(w http.ResponseWriter, r *http.Request) {
	h.roomAction(w, r, db.ActionDisable)
}

// ReactivateRoom is POST /api/matrix-rooms/{uuid}/reactivate/: archived -> active.
func (h *Handler) ReactivateRoom(w http.ResponseWriter, r *http.Request) {
	h.roomAction(w, r, db.ActionReactivate)
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
