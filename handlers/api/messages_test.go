package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/testserver"
)

// activeRoom creates a project with a room and makes it active, as the worker does.
func activeRoom(t *testing.T, s *testserver.Server, name string) *db.Room {
	t.Helper()
	ctx := context.Background()
	var p, r struct{ UUID string }
	if code := s.JSON(t, http.MethodPost, "/api/projects/", s.StaffToken, map[string]any{"name": name}, &p); code != http.StatusCreated {
		t.Fatalf("project: %d", code)
	}
	if code := s.JSON(t, http.MethodPost, "/api/matrix-rooms/", s.StaffToken, map[string]any{"project": p.UUID}, &r); code != http.StatusCreated {
		t.Fatalf("room: %d", code)
	}
	room, err := s.Store.RoomByUUID(ctx, r.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.SetRoomHomeserverID(ctx, room.ID, id.RoomID("!"+name+":example.org"), "", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.FinishRoomSync(ctx, room.ID, name); err != nil {
		t.Fatal(err)
	}
	return room
}

// TestAPISendMessage: POST /api/matrix-rooms/{uuid}/messages/ queues the message (202,
// pending, the outbox row's fields), staff only, into an active room only, and refuses
// an empty or oversized body without queueing anything.
func TestAPISendMessage(t *testing.T) {
	s := apiServer(t)
	room := activeRoom(t, s, "Apollo")
	path := "/api/matrix-rooms/" + room.UUID + "/messages/"

	var got map[string]any
	code := s.JSON(t, http.MethodPost, path, s.StaffToken, map[string]any{"body": "Maintenance **tonight** <at 22:00>"}, &got)
	if code != http.StatusAccepted {
		t.Fatalf("status %d: %v", code, got)
	}
	m, err := s.Store.OutboxByUUID(context.Background(), got["uuid"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if got["state"] != "pending" || got["kind"] != "notification" || got["room"] != room.UUID || got["room_id"] != "!Apollo:example.org" ||
		got["body"] != "Maintenance **tonight** <at 22:00>" || got["event_id"] != "" || got["created"] == nil || got["next_attempt_at"] == nil {
		t.Errorf("answer %v", got)
	}
	if m.Body != "Maintenance **tonight** <at 22:00>" || m.Kind != db.OutboxNotification || m.RoomPK != room.ID {
		t.Errorf("queued row %+v", m)
	}
	if _, ok := got["command_body"]; ok {
		t.Error("the answer shows a command's text")
	}

	// A form body works too (the API reads both).
	resp, body := s.Request(t, http.MethodPost, path, s.StaffToken, url.Values{"body": {"from a form"}})
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"from a form"`) {
		t.Errorf("form: %d %s", resp.StatusCode, body)
	}

	for _, tc := range []struct {
		name  string
		token string
		body  any
		path  string
		want  int
		field string // the field error expected, for 400s
	}{
		{"anonymous", "", map[string]any{"body": "x"}, path, http.StatusUnauthorized, ""},
		{"not staff", s.UserToken, map[string]any{"body": "x"}, path, http.StatusForbidden, ""},
		{"no body field", s.StaffToken, map[string]any{"text": "x"}, path, http.StatusBadRequest, "This field is required."},
		{"blank", s.StaffToken, map[string]any{"body": " \n\t"}, path, http.StatusBadRequest, "This field may not be blank."},
		{"too long", s.StaffToken, map[string]any{"body": strings.Repeat("é", db.MaxOutboxBody/2+1)}, path, http.StatusBadRequest, "Ensure this field has no more than 16384 bytes (it has 16386)."},
		{"not JSON", s.StaffToken, `{"body":`, path, http.StatusBadRequest, ""},
		{"unknown room", s.StaffToken, map[string]any{"body": "x"}, "/api/matrix-rooms/" + db.NewUUID() + "/messages/", http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := s.Request(t, http.MethodPost, tc.path, tc.token, tc.body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, b)
			}
			if tc.field != "" {
				if errs := apiErrs(t, b); len(errs["body"]) != 1 || errs["body"][0] != tc.field {
					t.Errorf("errors %v, want body: %q", errs, tc.field)
				}
			}
		})
	}

	// A room that is not active: 409 with its state, nothing queued.
	if _, err := s.Store.DisableRoom(context.Background(), room.UUID, false, "Chat room was deactivated"); err != nil {
		t.Fatal(err)
	}
	resp, b := s.Request(t, http.MethodPost, path, s.StaffToken, map[string]any{"body": "too late"})
	var conflict map[string]string
	json.Unmarshal(b, &conflict)
	if resp.StatusCode != http.StatusConflict || conflict["state"] != "disabling" || !strings.Contains(conflict["detail"], "only an active room") {
		t.Errorf("disabling room: %d %s", resp.StatusCode, b)
	}
	rows, _, err := s.Store.ListOutbox(context.Background(), db.OutboxFilter{Page: db.Page{Size: db.MaxPageSize}})
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, m := range rows {
		switch m.Body {
		case "too late":
			t.Error("a message for a room that is not active was queued")
		case "Maintenance **tonight** <at 22:00>", "from a form":
			accepted++
		}
	}
	if accepted != 2 {
		t.Errorf("%d of the accepted messages are queued, want 2 (refused ones must not be)", accepted)
	}
}
