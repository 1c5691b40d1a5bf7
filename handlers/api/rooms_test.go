package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/testserver"
)

// activeRoomWith makes a project with members (username -> role) and its room, active the
// way the worker leaves it, and returns the room's uuid and row.
func activeRoomWith(t *testing.T, s *testserver.Server, name string, members map[string]string) (apiProject, *db.Room) {
	t.Helper()
	ctx := context.Background()
	p := mkProject(t, s, name)
	var list []map[string]string
	for u, role := range members {
		usr, err := s.Store.UserByUsername(ctx, u)
		if err != nil {
			usr = &db.User{UUID: mkUser(t, s, u).UUID}
		}
		list = append(list, map[string]string{"user": usr.UUID, "role": role})
	}
	if code := s.JSON(t, http.MethodPut, "/api/projects/"+p.UUID+"/members/", s.StaffToken, list, nil); code != http.StatusOK {
		t.Fatalf("members of %s: %d", name, code)
	}
	var r apiRoom
	if code := s.JSON(t, http.MethodPost, "/api/matrix-rooms/", s.StaffToken, map[string]string{"project": p.UUID}, &r); code != http.StatusCreated {
		t.Fatalf("room of %s: %d", name, code)
	}
	room, err := s.Store.RoomByUUID(ctx, r.UUID)
	if err != nil {
		t.Fatal(err)
	}
	s.Store.ClaimRoom(ctx, room.ID)
	s.Store.SetRoomHomeserverID(ctx, room.ID, id.RoomID("!"+strings.ToLower(strings.ReplaceAll(name, " ", ""))+":example.org"), "", "")
	if err := s.Store.FinishRoomSync(ctx, room.ID, name); err != nil {
		t.Fatal(err)
	}
	room, _ = s.Store.RoomByID(ctx, room.ID)
	return p, room
}

// notices are a room's outbox messages, oldest first.
func notices(t *testing.T, s *testserver.Server, roomPK int64) []string {
	t.Helper()
	ms, err := s.Store.RoomOutbox(context.Background(), roomPK, 50)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(ms) - 1; i >= 0; i-- {
		out = append(out, ms[i].Body)
	}
	return out
}

func roomState(t *testing.T, s *testserver.Server, uuid string) string {
	t.Helper()
	var r apiRoom
	if code := s.JSON(t, http.MethodGet, "/api/matrix-rooms/"+uuid+"/", s.StaffToken, nil, &r); code != http.StatusOK {
		return fmt.Sprint(code)
	}
	return r.State
}

// TestAPIDisableAndReactivateQueueTheirNotices: disable answers 202 with the room in
// disabling and the notice queued; its body is optional (JSON or form, delete_history
// a boolean); reactivate answers 202 and queues its own.
func TestAPIDisableAndReactivateQueueTheirNotices(t *testing.T) {
	s := apiServer(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		body          any
		deleteHistory bool
	}{
		{"no body", nil, false},
		{"empty JSON object", map[string]any{}, false},
		{"JSON true", map[string]any{"delete_history": true}, true},
		{"form", url.Values{"delete_history": {"true"}}, true},
		{"JSON false", `{"delete_history": false}`, false},
	} {
		_, room := activeRoomWith(t, s, "Disable "+tc.name, nil)
		var out map[string]any
		resp, b := s.Request(t, http.MethodPost, "/api/matrix-rooms/"+room.UUID+"/disable/", s.StaffToken, tc.body)
		json.Unmarshal(b, &out)
		if resp.StatusCode != http.StatusAccepted || out["state"] != "disabling" || out["delete_history"] != tc.deleteHistory {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, b)
		}
		got, _ := s.Store.RoomByID(ctx, room.ID)
		if got.DeleteHistory != tc.deleteHistory {
			t.Errorf("%s: stored delete_history %v", tc.name, got.DeleteHistory)
		}
		if n := notices(t, s, room.ID); !slices.Equal(n, []string{"Chat room was deactivated"}) {
			t.Errorf("%s: notices %q", tc.name, n)
		}
	}
	_, room := activeRoomWith(t, s, "Bad body", nil)
	for _, body := range []any{map[string]any{"delete_history": "perhaps"}, `{"delete_history": 3}`} {
		resp, b := s.Request(t, http.MethodPost, "/api/matrix-rooms/"+room.UUID+"/disable/", s.StaffToken, body)
		if resp.StatusCode != http.StatusBadRequest || len(apiErrs(t, b)["delete_history"]) == 0 {
			t.Errorf("bad delete_history %v: %d %s", body, resp.StatusCode, b)
		}
	}
	if resp, b := s.Request(t, http.MethodPost, "/api/matrix-rooms/"+room.UUID+"/disable/", s.StaffToken, `{"delete_history": `); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("broken JSON: %d %s", resp.StatusCode, b)
	}
	if st := roomState(t, s, room.UUID); st != "active" {
		t.Errorf("refused disables changed the room: %s", st)
	}

	// Archive it as the worker would, then reactivate: same Matrix room, notice queued.
	s.JSON(t, http.MethodPost, "/api/matrix-rooms/"+room.UUID+"/disable/", s.StaffToken, nil, nil)
	if _, err := s.Store.FinishRoomDisable(ctx, room.ID); err != nil {
		t.Fatal(err)
	}
	var out apiRoom
	if code := s.JSON(t, http.MethodPost, "/api/matrix-rooms/"+room.UUID+"/reactivate/", s.StaffToken, nil, &out); code != http.StatusAccepted ||
		out.State != "active" || out.RoomID != room.RoomID.String() {
		t.Errorf("reactivate: %d %+v", code, out)
	}
	if n := notices(t, s, room.ID); !slices.Equal(n, []string{"Chat room was deactivated", "Chat room was reactivated"}) {
		t.Errorf("notices: %q", n)
	}
}

// TestAPIStaffJoinLeave: staff join and leave an active room, each announced once, with
// power level 50 in between; non-staff cannot; a room that is not active is 409.
func TestAPIStaffJoinLeave(t *testing.T) {
	s := apiServer(t)
	ctx := context.Background()
	_, room := activeRoomWith(t, s, "Helpdesk", map[string]string{"ann": "member"})
	base := "/api/matrix-rooms/" + room.UUID
	if code := s.JSON(t, http.MethodPost, base+"/join/", s.UserToken, nil, nil); code != http.StatusForbidden {
		t.Errorf("join as non-staff: %d", code)
	}
	var out apiRoom
	if code := s.JSON(t, http.MethodPost, base+"/join/", s.StaffToken, nil, &out); code != http.StatusAccepted || out.UUID != room.UUID {
		t.Fatalf("join: %d %+v", code, out)
	}
	if code := s.JSON(t, http.MethodPost, base+"/join/", s.StaffToken, nil, nil); code != http.StatusAccepted {
		t.Fatalf("join again: %d", code)
	}
	var members []map[string]any
	resp, b := s.Request(t, http.MethodGet, base+"/members/", s.UserToken, nil)
	json.Unmarshal(b, &members)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Result-Count") != "2" || len(members) != 2 {
		t.Fatalf("members: %d %s", resp.StatusCode, b)
	}
	staff := members[1] // ann, staff: by username
	if staff["username"] != "staff" || staff["staff_joined"] != true || staff["power_level"] != 50.0 || staff["role"] != "" ||
		staff["matrix_user_id"] != "@staff:example.org" || staff["full_name"] != "Staff" {
		t.Errorf("staff member: %v", staff)
	}
	if code := s.JSON(t, http.MethodPost, base+"/leave/", s.StaffToken, nil, &out); code != http.StatusAccepted {
		t.Fatalf("leave: %d", code)
	}
	var conflict map[string]string
	if code := s.JSON(t, http.MethodPost, base+"/leave/", s.StaffToken, nil, &conflict); code != http.StatusConflict || conflict["state"] != "active" || conflict["detail"] == "" {
		t.Errorf("leave without having joined: %d %v", code, conflict)
	}
	if n := notices(t, s, room.ID); !slices.Equal(n, []string{"Staff joined the room.", "Staff left the room."}) {
		t.Errorf("notices: %q", n)
	}
	_, archived := activeRoomWith(t, s, "Archived", nil)
	s.Store.DisableRoom(ctx, archived.UUID, false, "x")
	s.Store.FinishRoomDisable(ctx, archived.ID)
	for _, a := range []string{"join", "leave"} {
		if code := s.JSON(t, http.MethodPost, "/api/matrix-rooms/"+archived.UUID+"/"+a+"/", s.StaffToken, nil, &conflict); code != http.StatusConflict || conflict["state"] != "archived" {
			t.Errorf("%s an archived room: %d %v", a, code, conflict)
		}
	}
}

// TestAPIOpen: a member gets the room id (the invite accepted as far as the homeserver
// lets: here there is none, and that is not the member's problem); anyone else 403; a
// room that is not active 409; anonymous 401.
func TestAPIOpen(t *testing.T) {
	s := apiServer(t)
	ctx := context.Background()
	_, room := activeRoomWith(t, s, "Open", map[string]string{"alice": "member"}) // alice is the test server's non-staff user
	s.Store.SaveMembers(ctx, room.ID, []db.MemberSync{{UserID: s.User.ID, Membership: "invite"}}, nil)
	path := "/api/matrix-rooms/" + room.UUID + "/open/"
	var out map[string]string
	if code := s.JSON(t, http.MethodPost, path, s.UserToken, nil, &out); code != http.StatusOK || out["room_id"] != room.RoomID.String() || len(out) != 1 {
		t.Fatalf("open as a member: %d %v", code, out)
	}
	if !strings.Contains(s.Logs.String(), "could not accept the invite") {
		t.Errorf("the failed join (no homeserver) was not logged")
	}
	var detail map[string]string
	if code := s.JSON(t, http.MethodPost, path, s.StaffToken, nil, &detail); code != http.StatusForbidden || detail["detail"] == "" {
		t.Errorf("open as a non-member (staff): %d %v", code, detail)
	}
	if code := s.JSON(t, http.MethodPost, path, "", nil, &detail); code != http.StatusUnauthorized {
		t.Errorf("open anonymously: %d", code)
	}
	if code := s.JSON(t, http.MethodPost, "/api/matrix-rooms/"+db.NewUUID()+"/open/", s.UserToken, nil, nil); code != http.StatusNotFound {
		t.Errorf("open a missing room: %d", code)
	}
	// Staff who joined are members too.
	s.JSON(t, http.MethodPost, "/api/matrix-rooms/"+room.UUID+"/join/", s.StaffToken, nil, nil)
	if code := s.JSON(t, http.MethodPost, path, s.StaffToken, nil, &out); code != http.StatusOK || out["room_id"] != room.RoomID.String() {
		t.Errorf("open as staff who joined: %d %v", code, out)
	}
	s.Store.DisableRoom(ctx, room.UUID, false, "x")
	var conflict map[string]string
	if code := s.JSON(t, http.MethodPost, path, s.UserToken, nil, &conflict); code != http.StatusConflict || conflict["state"] != "disabling" {
		t.Errorf("open a disabling room: %d %v", code, conflict)
	}
}

// TestAPIMyRoomsEligibleProjectsSyncAndDelete covers ?member=true, eligible_projects,
// sync_members and DELETE of a room.
func TestAPIMyRoomsEligibleProjectsSyncAndDelete(t *testing.T) {
	s := apiServer(t)
	ctx := context.Background()
	_, mine := activeRoomWith(t, s, "Mine", map[string]string{"alice": "member"})
	s.Store.SaveMembers(ctx, mine.ID, []db.MemberSync{{UserID: s.User.ID, Membership: "join"}}, nil)
	_, other := activeRoomWith(t, s, "Other", nil)
	free := mkProject(t, s, "Free")

	var rooms []apiRoom
	if code := s.JSON(t, http.MethodGet, "/api/matrix-rooms/?member=true", s.UserToken, nil, &rooms); code != http.StatusOK || len(rooms) != 1 || rooms[0].UUID != mine.UUID {
		t.Errorf("my rooms: %d %+v", code, rooms)
	}
	if code := s.JSON(t, http.MethodGet, "/api/matrix-rooms/?member=false", s.UserToken, nil, &rooms); code != http.StatusOK || len(rooms) != 2 {
		t.Errorf("member=false: %d %d rooms", code, len(rooms))
	}
	if resp, b := s.Request(t, http.MethodGet, "/api/matrix-rooms/?member=perhaps", s.UserToken, nil); resp.StatusCode != http.StatusBadRequest || len(apiErrs(t, b)["member"]) == 0 {
		t.Errorf("member=perhaps: %d %s", resp.StatusCode, b)
	}

	var eligible []map[string]string
	resp, b := s.Request(t, http.MethodGet, "/api/matrix-rooms/eligible_projects/", s.StaffToken, nil)
	json.Unmarshal(b, &eligible)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Result-Count") != "1" || len(eligible) != 1 || eligible[0]["uuid"] != free.UUID || eligible[0]["name"] != "Free" {
		t.Errorf("eligible for staff: %d %s", resp.StatusCode, b)
	}
	resp, b = s.Request(t, http.MethodGet, "/api/matrix-rooms/eligible_projects/", s.UserToken, nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("eligible for a user who cannot create rooms: %d %s", resp.StatusCode, b)
	}

	resp, b = s.Request(t, http.MethodPost, "/api/matrix-rooms/"+other.UUID+"/sync_members/", s.StaffToken, nil)
	if resp.StatusCode != http.StatusAccepted || len(b) != 0 {
		t.Errorf("sync_members: %d %q", resp.StatusCode, b)
	}
	if got, _ := s.Store.RoomByID(ctx, other.ID); !got.MembersDirty {
		t.Errorf("sync_members queued nothing")
	}
	if code := s.JSON(t, http.MethodPost, "/api/matrix-rooms/"+other.UUID+"/sync_members/", s.UserToken, nil, nil); code != http.StatusForbidden {
		t.Errorf("sync_members as non-staff: %d", code)
	}

	var conflict map[string]string
	if code := s.JSON(t, http.MethodDelete, "/api/matrix-rooms/"+other.UUID+"/", s.StaffToken, nil, &conflict); code != http.StatusConflict || conflict["state"] != "active" {
		t.Errorf("delete an active room: %d %v", code, conflict)
	}
	s.Store.DisableRoom(ctx, other.UUID, false, "x")
	s.Store.FinishRoomDisable(ctx, other.ID)
	if code := s.JSON(t, http.MethodDelete, "/api/matrix-rooms/"+other.UUID+"/", s.UserToken, nil, nil); code != http.StatusForbidden {
		t.Errorf("delete as non-staff: %d", code)
	}
	if resp, b := s.Request(t, http.MethodDelete, "/api/matrix-rooms/"+other.UUID+"/", s.StaffToken, nil); resp.StatusCode != http.StatusNoContent || len(b) != 0 {
		t.Errorf("delete an archived room: %d %s", resp.StatusCode, b)
	}
	if st := roomState(t, s, other.UUID); st != "404" {
		t.Errorf("deleted room: %s", st)
	}
}

// TestAPIDeleteProjectWithALiveRoom: 202, the project marked deleting and its room
// disabling with the termination notice; asking again answers the same; once the
// worker archived the room, both are gone.
func TestAPIDeleteProjectWithALiveRoom(t *testing.T) {
	s := apiServer(t)
	ctx := context.Background()
	p, room := activeRoomWith(t, s, "Terminated", map[string]string{"ann": "admin"})
	for range 2 {
		var out map[string]any
		resp, b := s.Request(t, http.MethodDelete, "/api/projects/"+p.UUID+"/", s.StaffToken, nil)
		json.Unmarshal(b, &out)
		if resp.StatusCode != http.StatusAccepted || out["deleting"] != true || out["room_state"] != "disabling" || out["uuid"] != p.UUID {
			t.Fatalf("delete: %d %s", resp.StatusCode, b)
		}
	}
	if n := notices(t, s, room.ID); !slices.Equal(n, []string{"Chat room was deactivated due to project termination"}) {
		t.Errorf("notices: %q", n)
	}
	if _, err := s.Store.FinishRoomDisable(ctx, room.ID); err != nil {
		t.Fatal(err)
	}
	if resp, _ := s.Request(t, http.MethodGet, "/api/projects/"+p.UUID+"/", s.StaffToken, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("project after its room was archived: %d", resp.StatusCode)
	}
	if st := roomState(t, s, room.UUID); st != "404" {
		t.Errorf("room after its project went: %s", st)
	}
}
