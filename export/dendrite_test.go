package export_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/export"
	"matrixas/internal/dendritetest"
	"matrixas/matrix"
)

// homeserver is a real Dendrite with this server's appservice registered, its bot
// provisioned, and a fault-injecting proxy in front of it for the exporter.
type homeserver struct {
	hs    *dendritetest.Server
	ms    *db.MatrixSettings // pointing at Dendrite directly
	proxy *faultProxy
	hc    *http.Client
}

// faultProxy forwards to Dendrite, answering the first history requests with the
// errors queued in faults (to see the exporter retry against mautrix's real error
// parsing), and counts history pages.
type faultProxy struct {
	mu       sync.Mutex
	faults   []func(w http.ResponseWriter)
	pages    atomic.Int64
	url      string
	upstream http.Handler
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/messages") {
		p.mu.Lock()
		var fault func(w http.ResponseWriter)
		if len(p.faults) > 0 {
			fault, p.faults = p.faults[0], p.faults[1:]
		}
		p.mu.Unlock()
		if fault != nil {
			fault(w)
			return
		}
		p.pages.Add(1)
	}
	p.upstream.ServeHTTP(w, r)
}

func startHomeserver(t *testing.T) *homeserver {
	t.Helper()
	ctx := context.Background()
	// The appservice URL answers the homeserver's transaction pushes; nothing here
	// needs them.
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }))
	t.Cleanup(as.Close)
	ms := &db.MatrixSettings{
		HomeserverDomain: "localhost",
		ASToken:          auth.RandomHex(32),
		HSToken:          auth.RandomHex(32),
		SenderLocalpart:  "waldur-bot",
		AppserviceURL:    as.URL,
		Enabled:          true,
	}
	reg, err := matrix.BuildRegistration(ms)
	if err != nil {
		t.Fatal(err)
	}
	y, err := reg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	regFile := filepath.Join(t.TempDir(), "registration.yaml")
	if err := os.WriteFile(regFile, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := ""
	if d, err := os.MkdirTemp("/dev/shm", "matrixas-export-test-"); err == nil { // quicker commits
		t.Cleanup(func() { os.RemoveAll(d) })
		dataDir = d
	}
	hs := dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{regFile}, DataDir: dataDir})
	ms.HomeserverURL = hs.URL
	hc := matrix.HTTPClient(3*time.Second, 30*time.Second)
	if got := matrix.ProvisionBot(ctx, ms, hc); got != db.BotOK {
		t.Fatalf("provision bot: %s", got)
	}
	target, _ := url.Parse(hs.URL)
	p := &faultProxy{upstream: httputil.NewSingleHostReverseProxy(target)}
	ps := httptest.NewServer(p)
	t.Cleanup(ps.Close)
	p.url = ps.URL
	return &homeserver{hs: hs, ms: ms, proxy: p, hc: hc}
}

// as is a client acting as user ("" = the bot) directly on Dendrite.
func (h *homeserver) as(t *testing.T, user id.UserID) *mautrix.Client {
	t.Helper()
	c, err := matrix.Client(h.ms, h.hc, user)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// register creates a user in the appservice's namespace.
func (h *homeserver) register(t *testing.T, localpart string) *mautrix.Client {
	t.Helper()
	user := id.NewUserID(localpart, h.ms.HomeserverDomain)
	c := h.as(t, user)
	_, err := c.MakeRequest(context.Background(), http.MethodPost, c.BuildClientURL("v3", "register"), &mautrix.ReqRegister[any]{
		Username: localpart, Type: mautrix.AuthTypeAppservice, InhibitLogin: true,
	}, nil)
	if err != nil {
		t.Fatalf("register %s: %v", localpart, err)
	}
	return c
}

// roomIO is the bot's RoomIO reaching Dendrite through the fault proxy.
func (h *homeserver) roomIO() *matrix.BotRoomIO {
	ms := *h.ms
	ms.HomeserverURL = h.proxy.url
	return matrix.NewBotRoomIO(func(context.Context) (*db.MatrixSettings, error) { return &ms, nil }, h.hc)
}

// sent is what the test posted, oldest first.
type sent struct {
	id     id.EventID
	sender id.UserID
	body   string
}

// TestExportOnDendrite: 250 messages by two members, a reply, an edit and two
// attachments in a real room; the export has every message newest first with the
// relations, survives a 429 and a 502 on the way, archives the small attachment and
// lists the one over the limit with media_error; no file on disk holds message text or
// attachment content in the clear.
func TestExportOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	ctx := context.Background()
	h := startHomeserver(t)
	alice, bob := h.register(t, "alice"), h.register(t, "bob")
	bot := h.as(t, "")
	created, err := bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Name: "Export test", Invite: []id.UserID{alice.UserID, bob.UserID},
	})
	if err != nil {
		t.Fatal(err)
	}
	roomID := created.RoomID
	for _, c := range []*mautrix.Client{alice, bob} {
		if _, err := c.JoinRoomByID(ctx, roomID); err != nil {
			t.Fatal(err)
		}
	}

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
		c := alice
		if i%2 == 1 {
			c = bob
		}
		send(c, &event.MessageEventContent{MsgType: event.MsgText, Body: fmt.Sprintf("plaintext-marker %03d from %s", i, c.UserID.Localpart())})
	}
	t.Logf("250 messages sent in %v", time.Since(start))
	question := posted[10].id
	reply := send(bob, &event.MessageEventContent{MsgType: event.MsgText, Body: "plaintext-marker reply",
		RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: question}}})
	edited := posted[11].id // bob's
	edit := send(bob, &event.MessageEventContent{MsgType: event.MsgText, Body: "* plaintext-marker edited",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "plaintext-marker edited"},
		RelatesTo:  &event.RelatesTo{Type: event.RelReplace, EventID: edited}})

	small := bytes.Repeat([]byte("attachment-marker "), 100)    // 1.8 KB
	big := bytes.Repeat([]byte("big-attachment-marker "), 8000) // 176 KB
	upload := func(c *mautrix.Client, data []byte, name string) id.ContentURIString {
		t.Helper()
		up, err := c.UploadBytesWithName(ctx, data, "text/plain", name)
		if err != nil {
			t.Fatalf("upload %s: %v", name, err)
		}
		return up.ContentURI.CUString()
	}
	smallEvent := send(alice, &event.MessageEventContent{MsgType: event.MsgFile, Body: "../notes.txt", FileName: "../notes.txt",
		URL: upload(alice, small, "notes.txt"), Info: &event.FileInfo{MimeType: "text/plain", Size: len(small)}})
	bigEvent := send(bob, &event.MessageEventContent{MsgType: event.MsgFile, Body: "big.txt",
		URL: upload(bob, big, "big.txt"), Info: &event.FileInfo{MimeType: "text/plain", Size: len(big)}})

	key, _, err := export.LoadOrCreateKeyFile(filepath.Join(t.TempDir(), export.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "exports")
	var waits []time.Duration
	var mu sync.Mutex
	ex, err := export.New(h.roomIO(), export.Config{
		Dir: dir, Key: key, Media: true, MaxFileBytes: 100 << 10,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, d)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.proxy.faults = []func(w http.ResponseWriter){
		func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":1500}`)
		},
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) },
	}

	start = time.Now()
	uuid := db.NewUUID()
	res, err := ex.Run(ctx, export.Job{UUID: uuid, RoomID: roomID, RoomName: "Export test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exported %d messages, %d media in %d pages in %v", res.MessageCount, res.MediaCount, h.proxy.pages.Load(), time.Since(start))
	if fmt.Sprint(waits) != "[1.5s 2s]" {
		t.Errorf("waits %v, want [1.5s 2s] (the 429's retry_after_ms, then the doubled backoff)", waits)
	}
	if n := h.proxy.pages.Load(); n < 3 {
		t.Errorf("%d history pages for 250+ events, want at least 3", n)
	}

	// The document, decrypted and verified the way a download reads it.
	p, err := export.Open(dir, res.ExportFile, key, uuid, export.KindJSON)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		RoomID       id.RoomID        `json:"room_id"`
		RoomName     string           `json:"room_name"`
		ExportedAt   string           `json:"exported_at"`
		MessageCount int              `json:"message_count"`
		MediaCount   int              `json:"media_count"`
		Messages     []export.Message `json:"messages"`
	}
	if err := json.NewDecoder(p).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if doc.RoomID != roomID || doc.RoomName != "Export test" || doc.ExportedAt == "" {
		t.Errorf("head: %q %q %q", doc.RoomID, doc.RoomName, doc.ExportedAt)
	}
	if len(doc.Messages) != len(posted) || doc.MessageCount != len(posted) || res.MessageCount != len(posted) {
		t.Fatalf("%d messages (count %d), want %d: every message, no state event", len(doc.Messages), doc.MessageCount, len(posted))
	}
	for i, m := range doc.Messages {
		want := posted[len(posted)-1-i] // newest first
		if m.EventID != want.id || m.Sender != want.sender || m.Body != want.body || m.Type != "m.room.message" || m.Timestamp == "" {
			t.Fatalf("message %d: %s %s %q, want %s %s %q", i, m.EventID, m.Sender, m.Body, want.id, want.sender, want.body)
		}
	}
	byID := map[id.EventID]export.Message{}
	for _, m := range doc.Messages {
		byID[m.EventID] = m
	}
	if r := byID[reply].RelatesTo; r == nil || r.InReplyTo == nil || r.InReplyTo.EventID != question {
		t.Errorf("reply's relation %+v, want m.in_reply_to %s", r, question)
	}
	if e := byID[edit]; e.RelatesTo == nil || e.RelatesTo.RelType != "m.replace" || e.RelatesTo.EventID != edited ||
		e.NewContent == nil || e.NewContent.Body != "plaintext-marker edited" {
		t.Errorf("edit %+v, want m.replace of %s with its new content", e, edited)
	}

	// Media: the small file is in the ZIP under its safe name; the big one is listed.
	wantEntry := string(smallEvent) + "___notes.txt" // "../notes.txt" made safe
	if m := byID[smallEvent]; m.MediaFile != wantEntry || m.MediaError != "" {
		t.Errorf("small attachment: media_file %q, media_error %q; want %q", m.MediaFile, m.MediaError, wantEntry)
	}
	if m := byID[bigEvent]; m.MediaFile != "" || m.MediaError != "file over the per-file limit of 100 KiB" {
		t.Errorf("big attachment: media_file %q, media_error %q", m.MediaFile, m.MediaError)
	}
	if doc.MediaCount != 1 || res.MediaFile == "" {
		t.Fatalf("media count %d, file %q", doc.MediaCount, res.MediaFile)
	}
	mp, err := export.Open(dir, res.MediaFile, key, uuid, export.KindMedia)
	if err != nil {
		t.Fatal(err)
	}
	zb, _ := io.ReadAll(mp)
	mp.Close()
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != wantEntry {
		t.Fatalf("zip entries %v, want [%s]", zr.File, wantEntry)
	}
	rc, _ := zr.File[0].Open()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, small) {
		t.Errorf("archived attachment: %d bytes, %v; want the %d bytes uploaded", len(got), err, len(small))
	}

	// Nothing on disk in the clear: not a message, not a member, not the attachment.
	var onDisk int64
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("export folder: %v, want the JSON and the ZIP", entries)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		onDisk += int64(len(raw))
		for _, probe := range []string{"plaintext-marker", "attachment-marker", "@alice:localhost", string(roomID), "notes.txt"} {
			if bytes.Contains(raw, []byte(probe)) {
				t.Errorf("%s holds %q in the clear", e.Name(), probe)
			}
		}
	}
	t.Logf("plaintext %d + %d bytes, %d bytes on disk", res.ExportSize, res.MediaSize, onDisk)
}
