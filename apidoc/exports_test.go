package apidoc_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/export"
	"matrixas/matrix"
	"matrixas/web"
)

// gatedRoom is the room history the conformance test's exports read (the test runs
// without a homeserver): three messages and an attachment. While the gate is closed,
// reading blocks, so that an export can be held running.
type gatedRoom struct {
	mu   sync.Mutex
	gate chan struct{} // nil = open
}

var _ matrix.RoomIO = (*gatedRoom)(nil)

func (g *gatedRoom) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gatedRoom) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gatedRoom) Send(context.Context, id.RoomID, string, *event.MessageEventContent) (id.EventID, error) {
	return "", fmt.Errorf("gatedRoom: not sending")
}

func (g *gatedRoom) History(ctx context.Context, _ id.RoomID, _ string, _ int) (*matrix.HistoryPage, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	msg := func(n int, c *event.MessageEventContent) *event.Event {
		return &event.Event{Type: event.EventMessage, ID: id.EventID(fmt.Sprintf("$e%d", n)), Sender: "@alice:localhost",
			Timestamp: 1_760_000_000_000 + int64(n), Content: event.Content{Parsed: c}}
	}
	return &matrix.HistoryPage{Events: []*event.Event{
		msg(4, &event.MessageEventContent{MsgType: event.MsgFile, Body: "notes.txt", URL: "mxc://localhost/notes", Info: &event.FileInfo{Size: 5}}),
		msg(3, &event.MessageEventContent{MsgType: event.MsgText, Body: "* fixed", NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "fixed"},
			RelatesTo: &event.RelatesTo{Type: event.RelReplace, EventID: "$e1"}}),
		msg(2, &event.MessageEventContent{MsgType: event.MsgText, Body: "an answer", RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: "$e1"}}}),
		msg(1, &event.MessageEventContent{MsgType: event.MsgText, Body: "hello"}),
	}}, nil
}

func (g *gatedRoom) Download(context.Context, id.ContentURI, int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader([]byte("notes"))), nil
}

// withRoomIO makes the server's exports read rio instead of a homeserver.
func withRoomIO(rio matrix.RoomIO) func(*web.Config) {
	return func(c *web.Config) { c.Export.RoomIO = rio }
}

// exercise the exports operations: c's server is set up, and room (active, with a
// Matrix room id) and bare (no Matrix room) exist. rio is the server's gatedRoom.
func (c *conformance) exercise(t *testing.T, rio *gatedRoom, room, bare string) {
	t.Helper()
	ctx := context.Background()
	staff, user := c.ts.StaffToken, c.ts.UserToken
	const action = "/api/matrix-rooms/{uuid}/export_history/"
	post := func(roomUUID string, want int) string {
		t.Helper()
		b := c.do(call{method: http.MethodPost, pattern: action, path: "/api/matrix-rooms/" + roomUUID + "/export_history/", token: staff, want: want})
		if want >= 300 {
			return ""
		}
		return field(t, b, "uuid")
	}
	waitState := func(uuid string, want db.ExportState) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			e, err := c.ts.Store.ExportByUUID(ctx, uuid)
			if err != nil {
				t.Fatal(err)
			}
			if e.State == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("export %s is %s, want %s", uuid, e.State, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// One held running, a second waiting behind it, a third request answered with the
	// waiting one.
	rio.close()
	first := post(room, 202)
	waitState(first, db.ExportExporting)
	second := post(room, 202)
	if again := post(room, 200); again != second {
		t.Errorf("a request while %s waits answered %s", second, again)
	}
	c.do(call{method: http.MethodPost, pattern: action, path: "/api/matrix-rooms/" + bare + "/export_history/", token: staff, want: 409})
	c.do(call{method: http.MethodPost, pattern: action, path: "/api/matrix-rooms/" + db.NewUUID() + "/export_history/", token: staff, want: 404})
	c.do(call{method: http.MethodPost, pattern: action, path: "/api/matrix-rooms/" + room + "/export_history/", token: user, want: 403})

	const one, list = "/api/matrix-exports/{uuid}/", "/api/matrix-exports/"
	const dlJSON, dlMedia = "/api/matrix-exports/{uuid}/download/export/", "/api/matrix-exports/{uuid}/download/media/"
	c.do(call{method: http.MethodGet, pattern: dlJSON, path: "/api/matrix-exports/" + second + "/download/export/", token: staff, want: 404})
	rio.open()
	waitState(first, db.ExportCompleted)
	waitState(second, db.ExportCompleted)

	c.do(call{method: http.MethodGet, pattern: list, path: list, token: staff, want: 200})
	c.do(call{method: http.MethodGet, pattern: list, path: list + "?room_uuid=" + room + "&state=completed&export_type=manual&page_size=1", token: staff, want: 200})
	c.do(call{method: http.MethodGet, pattern: list, path: list + "?state=done", token: staff, want: 400, badInput: true})
	c.do(call{method: http.MethodGet, pattern: list, path: list, token: user, want: 404})
	c.do(call{method: http.MethodGet, pattern: list, path: list, want: 401})
	c.do(call{method: http.MethodGet, pattern: one, path: list + first + "/", token: staff, want: 200})
	c.do(call{method: http.MethodGet, pattern: one, path: list + first + "/", token: user, want: 404})
	c.do(call{method: http.MethodGet, pattern: one, path: list + db.NewUUID() + "/", token: staff, want: 404})
	c.do(call{method: http.MethodGet, pattern: dlJSON, path: list + first + "/download/export/", token: staff, want: 200})
	c.do(call{method: http.MethodGet, pattern: dlMedia, path: list + first + "/download/media/", token: staff, want: 200})
	c.do(call{method: http.MethodGet, pattern: dlMedia, path: list + first + "/download/media/", token: user, want: 404})

	// A file changed on disk is refused before its first byte.
	e, err := c.ts.Store.ExportByUUID(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(export.DefaultDir(c.ts.Config.DatabasePath), e.ExportFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-3] ^= 1
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	c.do(call{method: http.MethodGet, pattern: dlJSON, path: list + second + "/download/export/", token: staff, want: 409})

	// Ten manual exports of a room in a day, then 429.
	for n := 2; n < 10; n++ {
		waitState(post(room, 202), db.ExportCompleted)
	}
	c.do(call{method: http.MethodPost, pattern: action, path: "/api/matrix-rooms/" + room + "/export_history/", token: staff, want: 429})
}
