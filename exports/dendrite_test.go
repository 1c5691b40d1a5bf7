package exports_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/export"
	"matrixas/exports"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
	"matrixas/matrix"
	"matrixas/web"
)

// exportJSON is the part of an export's API record the tests read.
type exportJSON struct {
	UUID           string  `json:"uuid"`
	Room           *string `json:"room"`
	State          string  `json:"state"`
	ExportType     string  `json:"export_type"`
	MessageCount   int     `json:"message_count"`
	MediaCount     int     `json:"media_count"`
	ErrorMessage   string  `json:"error_message"`
	ExportFile     *string `json:"export_file"`
	ExportFileSize int64   `json:"export_file_size"`
	MediaFile      *string `json:"media_file"`
	MediaFileSize  int64   `json:"media_file_size"`
}

// document is a downloaded export.
type document struct {
	RoomID       id.RoomID        `json:"room_id"`
	RoomName     string           `json:"room_name"`
	ExportedAt   string           `json:"exported_at"`
	MessageCount int              `json:"message_count"`
	MediaCount   int              `json:"media_count"`
	Messages     []export.Message `json:"messages"`
}

// api calls the JSON API as staff and fails the test on another status.
func api(t *testing.T, ts *testserver.Server, method, path string, body any, want int, out any) {
	t.Helper()
	if code := ts.JSON(t, method, path, ts.StaffToken, body, out); code != want {
		t.Fatalf("%s %s: %d, want %d", method, path, code, want)
	}
}

// waitExport polls the export's record until it is finished.
func waitExport(t *testing.T, ts *testserver.Server, uuid string) exportJSON {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var e exportJSON
		api(t, ts, http.MethodGet, "/api/matrix-exports/"+uuid+"/", nil, http.StatusOK, &e)
		if e.State == "completed" || e.State == "failed" {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("export %s still %s after 2 minutes", uuid, e.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// download GETs a file of an export as staff and returns the answer and its body.
func download(t *testing.T, ts *testserver.Server, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Token "+ts.StaffToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// activeRoom pushes two users, a project with both as members and its room through the
// API, and waits for the worker to make it active on the homeserver.
func activeRoom(t *testing.T, ts *testserver.Server, name string, users ...string) (roomUUID string, roomID id.RoomID) {
	t.Helper()
	var roles []map[string]string
	for _, u := range users {
		var out struct{ UUID string }
		api(t, ts, http.MethodPost, "/api/users/", map[string]any{"username": u, "email": u + "@example.org", "full_name": strings.ToUpper(u[:1]) + u[1:], "is_active": true}, http.StatusCreated, &out)
		roles = append(roles, map[string]string{"user": out.UUID, "role": "member"})
	}
	var p, r struct{ UUID string }
	api(t, ts, http.MethodPost, "/api/projects/", map[string]any{"name": name}, http.StatusCreated, &p)
	api(t, ts, http.MethodPut, "/api/projects/"+p.UUID+"/members/", roles, http.StatusOK, nil)
	api(t, ts, http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": p.UUID}, http.StatusCreated, &r)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		room, err := ts.Store.RoomByUUID(context.Background(), r.UUID)
		if err != nil {
			t.Fatal(err)
		}
		members, err := ts.Store.RoomMembers(context.Background(), room.ID)
		if err != nil {
			t.Fatal(err)
		}
		joined := 0
		for _, m := range members {
			if m.Membership == "join" {
				joined++
			}
		}
		if room.State == db.RoomActive && joined == len(users) {
			return r.UUID, room.RoomID
		}
		if room.State == db.RoomError || time.Now().After(deadline) {
			t.Fatalf("room %s: %s (%s), %d of %d members joined", name, room.State, room.ErrorMessage, joined, len(users))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type sent struct {
	id     id.EventID
	sender id.UserID
	body   string
}

// TestExportThroughTheAPIOnDendrite: 250 messages by two members (three pages), a reply,
// an edit and two attachments in a room the worker made on a real Dendrite; an export
// asked for through the API and downloaded through it has every message newest first
// with the relations, the small attachment in the ZIP and the large one listed with
// media_error; no file on disk holds message text in the clear; a changed file is 409;
// the 11th manual export in a day is 429; retention keeps the newest.
func TestExportThroughTheAPIOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	ctx := context.Background()
	ts := testserver.New(t, testserver.Options{
		Env:       map[string]string{"MATRIX_EXPORT_MEDIA": "true", "PROVISION_INTERVAL": "1s", "PROVISION_BACKOFF": "1s"},
		Configure: func(c *web.Config) { c.Export.MaxFileBytes = 100 << 10 },
	})
	ts.ConnectDendrite(t)
	roomUUID, roomID := activeRoom(t, ts, "Apollo export", "ann", "ben") // "alice" is the test server's own user
	ms, err := ts.Web.Settings().Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hc := matrix.HTTPClient(3*time.Second, 30*time.Second)
	as := func(user string) *mautrix.Client {
		c, err := matrix.Client(ms, hc, id.NewUserID(user, ms.HomeserverDomain))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ann, ben := as("ann"), as("ben")

	var posted []sent
	send := func(c *mautrix.Client, content *event.MessageEventContent) id.EventID {
		t.Helper()
		resp, err := c.SendMessageEvent(ctx, roomID, event.EventMessage, content)
		if err != nil {
			t.Fatal(err)
		}
		posted = append(posted, sent{resp.EventID, c.UserID, content.Body})
		return resp.EventID
	}
	start := time.Now()
	for i := range 250 {
		c := ann
		if i%2 == 1 {
			c = ben
		}
		send(c, &event.MessageEventContent{MsgType: event.MsgText, Body: fmt.Sprintf("plaintext-marker %03d from %s", i, c.UserID.Localpart())})
	}
	t.Logf("250 messages sent in %v", time.Since(start))
	question := posted[10].id
	reply := send(ben, &event.MessageEventContent{MsgType: event.MsgText, Body: "plaintext-marker reply",
		RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: question}}})
	edited := posted[11].id // ben's
	edit := send(ben, &event.MessageEventContent{MsgType: event.MsgText, Body: "* plaintext-marker edited",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "plaintext-marker edited"},
		RelatesTo:  &event.RelatesTo{Type: event.RelReplace, EventID: edited}})
	upload := func(c *mautrix.Client, data []byte, name string) id.ContentURIString {
		t.Helper()
		up, err := c.UploadBytesWithName(ctx, data, "text/plain", name)
		if err != nil {
			t.Fatalf("upload %s: %v", name, err)
		}
		return up.ContentURI.CUString()
	}
	small := bytes.Repeat([]byte("attachment-marker "), 100)    // 1.8 KB
	big := bytes.Repeat([]byte("big-attachment-marker "), 8000) // 176 KB, over the 100 KiB limit
	smallEvent := send(ann, &event.MessageEventContent{MsgType: event.MsgFile, Body: "notes.txt",
		URL: upload(ann, small, "notes.txt"), Info: &event.FileInfo{MimeType: "text/plain", Size: len(small)}})
	bigEvent := send(ben, &event.MessageEventContent{MsgType: event.MsgFile, Body: "big.txt",
		URL: upload(ben, big, "big.txt")}) // no size given: found over the limit while downloading
	dendritetest.WaitVisible(t, ann, roomID, bigEvent)

	// Asked for through the API: 202, then 200 with the same one while it waits (or
	// 202 with a new one if the first already runs).
	var first exportJSON
	api(t, ts, http.MethodPost, "/api/matrix-rooms/"+roomUUID+"/export_history/", nil, http.StatusAccepted, &first)
	if first.State != "pending" || first.ExportType != "manual" || first.Room == nil || *first.Room != roomUUID || first.ExportFile != nil {
		t.Errorf("new export %+v", first)
	}
	start = time.Now()
	done := waitExport(t, ts, first.UUID)
	t.Logf("exported in %v: %+v", time.Since(start), done)
	if done.State != "completed" || done.ExportFile == nil || done.MediaFile == nil || done.MediaCount != 1 {
		t.Fatalf("export %+v", done)
	}

	resp, body := download(t, ts, *done.ExportFile)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %s", resp.StatusCode, body)
	}
	if cd := resp.Header.Get("Content-Disposition"); !regexp.MustCompile(`^attachment; filename="matrix-history-apollo-export-\d{4}-\d\d-\d\d-[0-9a-f]{8}\.json"$`).MatchString(cd) {
		t.Errorf("Content-Disposition %q", cd)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" ||
		resp.ContentLength != int64(len(body)) || int64(len(body)) != done.ExportFileSize {
		t.Errorf("headers %v; %d bytes, record says %d", resp.Header, len(body), done.ExportFileSize)
	}
	var doc document
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not one JSON document: %v", err)
	}
	if doc.RoomID != roomID || doc.RoomName != "Apollo export" || doc.ExportedAt == "" || doc.MessageCount != len(doc.Messages) ||
		doc.MessageCount != done.MessageCount || doc.MediaCount != 1 {
		t.Errorf("head: %s %q %q, %d messages (count %d, record %d)", doc.RoomID, doc.RoomName, doc.ExportedAt, len(doc.Messages), doc.MessageCount, done.MessageCount)
	}
	// The members' messages, newest first, exactly as posted (anything the bot posted
	// into the room is in the export too, and skipped here).
	var ours []export.Message
	for _, m := range doc.Messages {
		if m.Sender == ann.UserID || m.Sender == ben.UserID {
			ours = append(ours, m)
		}
	}
	if len(ours) != len(posted) {
		t.Fatalf("%d messages of ann and ben, want %d", len(ours), len(posted))
	}
	for i, m := range ours {
		want := posted[len(posted)-1-i]
		if m.EventID != want.id || m.Sender != want.sender || m.Body != want.body || m.Timestamp == "" {
			t.Fatalf("message %d: %s %s %q, want %s %s %q", i, m.EventID, m.Sender, m.Body, want.id, want.sender, want.body)
		}
	}
	byID := map[id.EventID]export.Message{}
	for _, m := range ours {
		byID[m.EventID] = m
	}
	if r := byID[reply].RelatesTo; r == nil || r.InReplyTo == nil || r.InReplyTo.EventID != question {
		t.Errorf("reply's relation %+v, want m.in_reply_to %s", r, question)
	}
	if e := byID[edit]; e.RelatesTo == nil || e.RelatesTo.RelType != "m.replace" || e.RelatesTo.EventID != edited ||
		e.NewContent == nil || e.NewContent.Body != "plaintext-marker edited" {
		t.Errorf("edit %+v, want m.replace of %s with its new content", e, edited)
	}
	wantEntry := export.EntryName(smallEvent, "notes.txt")
	if m := byID[smallEvent]; m.MediaFile != wantEntry || m.MediaError != "" {
		t.Errorf("small attachment: media_file %q, media_error %q; want %q", m.MediaFile, m.MediaError, wantEntry)
	}
	if m := byID[bigEvent]; m.MediaFile != "" || m.MediaError != "file over the per-file limit of 100 KiB" {
		t.Errorf("big attachment: media_file %q, media_error %q", m.MediaFile, m.MediaError)
	}

	resp, zb := download(t, ts, *done.MediaFile)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zip" || int64(len(zb)) != done.MediaFileSize {
		t.Fatalf("media download: %d %s, %d bytes (record %d)", resp.StatusCode, resp.Header.Get("Content-Type"), len(zb), done.MediaFileSize)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != wantEntry {
		t.Fatalf("zip entries %v, want [%s]", zr.File, wantEntry)
	}
	rc, _ := zr.File[0].Open()
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, small) {
		t.Errorf("archived attachment: %d bytes, %v; want the %d bytes uploaded", len(got), err, len(small))
	}

	// On disk: only the two encrypted files, with nothing readable in them.
	dir := export.DefaultDir(ts.Config.DatabasePath)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("export folder: %v, want the JSON and the ZIP", entries)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, probe := range []string{"plaintext-marker", "attachment-marker", "@ann:localhost", string(roomID), "notes.txt", "Apollo"} {
			if bytes.Contains(raw, []byte(probe)) {
				t.Errorf("%s holds %q in the clear", e.Name(), probe)
			}
		}
	}

	// A changed byte: 409 before anything is sent.
	jsonPath := filepath.Join(dir, export.FileName(first.UUID, export.KindJSON))
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(raw)
	tampered[len(tampered)/2] ^= 0x40
	if err := os.WriteFile(jsonPath, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	resp, body = download(t, ts, *done.ExportFile)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "integrity check") {
		t.Errorf("tampered file: %d %s, want 409", resp.StatusCode, body)
	}
	if err := os.WriteFile(jsonPath, raw, 0o600); err != nil { // put back: the retention check below reads it
		t.Fatal(err)
	}

	// Nine more manual exports make ten today; the eleventh is refused.
	var last exportJSON
	for range 9 {
		var e exportJSON
		api(t, ts, http.MethodPost, "/api/matrix-rooms/"+roomUUID+"/export_history/", nil, http.StatusAccepted, &e)
		last = waitExport(t, ts, e.UUID)
		if last.State != "completed" {
			t.Fatalf("export %+v", last)
		}
	}
	resp, body = ts.Request(t, http.MethodPost, "/api/matrix-rooms/"+roomUUID+"/export_history/", ts.StaffToken, nil)
	if retry, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests ||
		!strings.Contains(string(body), `"detail"`) || retry < 86000 || retry > 86400 {
		t.Errorf("the 11th manual export in a day: %d, Retry-After %q, %s; want 429, about a day, a detail", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	// Retention, run as the server's daily job would 100 days from now: the room's
	// newest completed export stays, downloadable; the nine others go, files and all.
	key, _, err := export.LoadOrCreateKeyFile(export.DefaultKeyPath(ts.Config.DatabasePath))
	if err != nil {
		t.Fatal(err)
	}
	job, err := exports.New(ts.Store, ts.Web.Settings(), matrix.NewBotRoomIO(ts.Web.Settings().Matrix, hc), exports.Options{
		Export: export.Config{Dir: dir, Key: key}, RetentionDays: 90, Now: func() time.Time { return time.Now().Add(100 * 24 * time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := job.ApplyRetention(ctx); err != nil || n != 9 {
		t.Fatalf("retention deleted %d, %v; want 9", n, err)
	}
	var left []exportJSON
	api(t, ts, http.MethodGet, "/api/matrix-exports/?room_uuid="+roomUUID, nil, http.StatusOK, &left)
	if len(left) != 1 || left[0].UUID != last.UUID {
		t.Fatalf("after retention: %+v, want only %s", left, last.UUID)
	}
	if resp, _ := download(t, ts, *last.ExportFile); resp.StatusCode != http.StatusOK {
		t.Errorf("the kept export: %d", resp.StatusCode)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("after retention the folder holds %v, want the kept export's two files", entries)
	}
}
