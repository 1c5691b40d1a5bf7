package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"matrixas/db"
)

// RoomJSON is a managed room in the rooms API.
type RoomJSON struct {
	UUID         string  `json:"uuid"`
	Project      string  `json:"project"`
	ProjectName  string  `json:"project_name"`
	RoomID       string  `json:"room_id"`
	RoomAlias    string  `json:"room_alias"`
	RoomName     string  `json:"room_name"`
	State        string  `json:"state"`
	ErrorMessage string  `json:"error_message"`
	Notice       string  `json:"notice"`
	Attempts     int     `json:"attempts"`
	NextAttempt  *string `json:"next_attempt_at"`
	Created      *string `json:"created"`
	Modified     *string `json:"modified"`
}

// RoomDetailJSON is a room with its members (GET /api/matrix-rooms/{uuid}/).
type RoomDetailJSON struct {
	RoomJSON
	Members []RoomMemberJSON `json:"members"`
}

// RoomMemberJSON is one member of a room in the room detail.
type RoomMemberJSON struct {
	User         string  `json:"user"`
	Username     string  `json:"username"`
	MatrixUserID string  `json:"matrix_user_id"`
	Role         string  `json:"role"` // "" for a former member about to be removed
	PowerLevel   int     `json:"power_level"`
	Membership   string  `json:"membership"` // join, invite, leave, ban, or pending (not synced yet)
	LastError    string  `json:"last_error"`
	SyncedAt     *string `json:"synced_at"`
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

// RoomFilterFrom reads the rooms list's ?state=, ?project= and ?search= (for the API and
// the dashboard); errs names a bad value.
func RoomFilterFrom(r *http.Request) (db.RoomFilter, FieldErrors) {
	q := r.URL.Query()
	errs := FieldErrors{}
	f := db.RoomFilter{Search: strings.TrimSpace(q.Get("search"))}
	if s := q.Get("state"); s != "" {
		f.State = db.RoomState(s)
		if !f.State.Valid() {
			errs.Add("state", fmt.Sprintf("Select a valid choice. %s is not one of the available choices.", s))
		}
	}
	if s := q.Get("project"); s != "" {
		u, ok := db.NormalizeUUID(s)
		if !ok {
			errs.Add("project", "Enter a valid UUID.")
		}
		f.ProjectUUID = u
	}
	return f, errs
}

// APIListRooms is GET /api/matrix-rooms/: paginated; ?state=, ?project= and ?search=
// (room name, room id, alias, project name) filter.
func (h *Handler) APIListRooms(w http.ResponseWriter, r *http.Request) {
	f, errs := RoomFilterFrom(r)
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, errs)
		return
	}
	serveList(h, w, r, func(p db.Page) ([]*db.Room, int, error) {
		f.Page = p
		return h.Store.ListRooms(r.Context(), f)
	}, RoomToJSON)
}

// APICreateRoom is POST /api/matrix-rooms/ {"project": "<uuid>"}: queues the project's
// room (201, state creating); a project has one room, so a second is 400.
func (h *Handler) APICreateRoom(w http.ResponseWriter, r *http.Request) {
	f, err := readFields(r)
	if err != nil {
		h.badBody(w, r, err)
		return
	}
	raw := strings.TrimSpace(f["project"])
	if raw == "" {
		writeJSON(w, http.StatusBadRequest, FieldErrors{"project": {msgFieldRequired}})
		return
	}
	id, ok := db.NormalizeUUID(raw)
	if !ok {
		writeJSON(w, http.StatusBadRequest, FieldErrors{"project": {"Must be a valid UUID."}})
		return
	}
	p, err := h.Store.ProjectByUUID(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		writeJSON(w, http.StatusBadRequest, FieldErrors{"project": {fmt.Sprintf("No project with uuid %s.", id)}})
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	room, err := h.Store.CreateRoom(r.Context(), p.ID)
	if errors.Is(err, db.ErrConflict) {
		writeJSON(w, http.StatusBadRequest, FieldErrors{"project": {"This project already has a Matrix room."}})
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.wake()
	writeJSON(w, http.StatusCreated, RoomToJSON(room))
}

// roomFromPath loads the room named by {uuid}; it answers 404 itself.
func (h *Handler) roomFromPath(w http.ResponseWriter, r *http.Request) (*db.Room, bool) {
	return fromPath(h, w, r, h.Store.RoomByUUID)
}

// APIGetRoom is GET /api/matrix-rooms/{uuid}/, with the members.
func (h *Handler) APIGetRoom(w http.ResponseWriter, r *http.Request) {
	room, ok := h.roomFromPath(w, r)
	if !ok {
		return
	}
	members, err := h.Store.RoomMembers(r.Context(), room.ID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, RoomDetailJSON{RoomJSON: RoomToJSON(room), Members: roomMembersJSON(members)})
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
		writeJSON(w, http.StatusConflict, map[string]string{
			"detail": fmt.Sprintf("Cannot %s a room in state %s (allowed from: %s).", a.Name, te.From, joinStates(a.From)),
			"state":  string(te.From),
		})
		return
	case errors.Is(err, db.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, "Not found.")
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	h.wake()
	writeJSON(w, http.StatusOK, RoomToJSON(room))
}

func joinStates(states []db.RoomState) string {
	s := make([]string, len(states))
	for i, st := range states {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// APIRetryRoom is POST /api/matrix-rooms/{uuid}/retry/: error -> creating.
func (h *Handler) APIRetryRoom(w http.ResponseWriter, r *http.Request) {
	h.roomAction(w, r, db.ActionRetry)
}

// APIDisableRoom is POST /api/matrix-rooms/{uuid}/disable/: active|error -> disabling.
func (h *Handler) APIDisableRoom(w http.ResponseWriter, r *http.Request) {
	h.roomAction(w, r, db.ActionDisable)
}

// APIReactivateRoom is POST /api/matrix-rooms/{uuid}/reactivate/: archived -> active.
func (h *Handler) APIReactivateRoom(w http.ResponseWriter, r *http.Request) {
	h.roomAction(w, r, db.ActionReactivate)
}

// ProfileJSON is a user's Matrix account in the profiles API.
type ProfileJSON struct {
	User          string  `json:"user"`
	Username      string  `json:"username"`
	MatrixUserID  string  `json:"matrix_user_id"`
	IsActive      bool    `json:"is_active"`
	Provisioned   bool    `json:"provisioned"`
	ProvisionedAt *string `json:"provisioned_at"`
	LastSyncedAt  *string `json:"last_synced_at"`
	LastError     string  `json:"last_error"`
}

// APIListProfiles is GET /api/matrix-user-profiles/: paginated; ?search= and
// ?provisioned= filter.
func (h *Handler) APIListProfiles(w http.ResponseWriter, r *http.Request) {
	f := db.ProfileFilter{Search: strings.TrimSpace(r.URL.Query().Get("search"))}
	if s := r.URL.Query().Get("provisioned"); s != "" {
		b, ok := boolParam(s)
		if !ok {
			writeJSON(w, http.StatusBadRequest, FieldErrors{"provisioned": {"Must be a valid boolean."}})
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
		Provisioned: pr.Provisioned, ProvisionedAt: apiTime(pr.ProvisionedAt), LastSyncedAt: apiTime(pr.LastSyncedAt), LastError: pr.LastError}
}
