package export

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

const (
	alice = "@alice:example.org"
	bob   = "@bob:example.org"
	room  = id.RoomID("!room:example.org")
	ts0   = int64(1_760_000_000_000)
)

// document is an export's JSON as a reader sees it.
type document struct {
	RoomID       id.RoomID `json:"room_id"`
	RoomName     string    `json:"room_name"`
	ExportedAt   string    `json:"exported_at"`
	MessageCount int       `json:"message_count"`
	MediaCount   int       `json:"media_count"`
	Messages     []Message `json:"messages"`
}

func newExporter(t testing.TB, rio *fakeRoom, cfg Config) (*Exporter, *recordSleep) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "exports")
	}
	if cfg.Key == nil {
		cfg.Key = testKey(t)
	}
	rs := &recordSleep{}
	if cfg.Sleep == nil {
		cfg.Sleep = rs.sleep
	}
	cfg.ChunkSize = 512 // a document of a few KiB spans many chunks
	e, err := New(rio, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e, rs
}

// readDocument opens, verifies and parses an export's JSON file, checking its keys.
func readDocument(t testing.TB, e *Exporter, uuid string, res *Result) document {
	t.Helper()
	p, err := Open(e.cfg.Dir, res.ExportFile, e.cfg.Key, uuid, KindJSON)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != p.Size || p.Size != res.ExportSize {
		t.Errorf("read %d bytes, Open said %d, the result %d", len(b), p.Size, res.ExportSize)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatalf("export is not one JSON object: %v\n%s", err, b)
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	if fmt.Sprint(names) != "[exported_at media_count message_count messages room_id room_name]" {
		t.Errorf("document keys %v", names)
	}
	var d document
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

func text(t testing.TB, n int, sender string, body string) *event.Event {
	return evt(t, "m.room.message", fmt.Sprintf("$m%d", n), sender, ts0+int64(n)*1000, map[string]any{"msgtype": "m.text", "body": body}, nil)
}

// TestExportDocument: every kind of event in, the messages out, newest first, across
// pages, with relations, flags and counts.
func TestExportDocument(t *testing.T) {
	stateKey := ""
	f := &fakeRoom{events: []*event.Event{
		evt(t, "m.room.create", "$create", bob, ts0, map[string]any{"creator": bob}, map[string]any{"state_key": stateKey}),
		evt(t, "m.room.member", "$join", alice, ts0, map[string]any{"membership": "join"}, map[string]any{"state_key": alice}),
		text(t, 1, alice, "first"),
		evt(t, "m.room.message", "$m2", bob, ts0+2000, map[string]any{"msgtype": "m.text", "body": "**bold**",
			"format": "org.matrix.custom.html", "formatted_body": "<strong>bold</strong>"}, nil),
		evt(t, "m.room.message", "$m3", alice, ts0+3000, map[string]any{"msgtype": "m.text", "body": "> first\n\nan answer",
			"m.relates_to": map[string]any{"m.in_reply_to": map[string]any{"event_id": "$m1"}}}, nil),
		evt(t, "m.room.message", "$m4", bob, ts0+4000, map[string]any{"msgtype": "m.text", "body": "* fixed",
			"m.new_content": map[string]any{"msgtype": "m.text", "body": "fixed"},
			"m.relates_to":  map[string]any{"rel_type": "m.replace", "event_id": "$m2"}}, nil),
		evt(t, "m.reaction", "$r1", alice, ts0+5000, map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": "$m1", "key": "👍"}}, nil),
		evt(t, "m.room.message", "$m6", bob, ts0+6000, map[string]any{}, map[string]any{"unsigned": map[string]any{
			"redacted_because": map[string]any{"type": "m.room.redaction", "sender": bob, "event_id": "$red", "content": map[string]any{}}}}),
		evt(t, "m.room.redaction", "$red", bob, ts0+7000, map[string]any{}, map[string]any{"redacts": "$m6"}),
		evt(t, "m.sticker", "$m8", alice, ts0+8000, map[string]any{"body": "a cat", "url": "mxc://example.org/cat", "info": map[string]any{"mimetype": "image/png", "size": 123}}, nil),
		evt(t, "m.room.encrypted", "$m9", bob, ts0+9000, map[string]any{"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "xyz"}, nil),
		evt(t, "m.room.message", "$m10", alice, ts0+10000, map[string]any{"msgtype": "m.notice", "body": "a notice"}, nil),
		evt(t, "m.room.topic", "$topic", bob, ts0+11000, map[string]any{"topic": "t"}, map[string]any{"state_key": stateKey}),
		evt(t, "m.room.message", "$m12", bob, ts0+12000, map[string]any{"msgtype": "m.emote", "body": "waves"}, nil),
	}}
	at := time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)
	e, _ := newExporter(t, f, Config{PageSize: 3, Now: func() time.Time { return at }})
	res, err := e.Run(context.Background(), Job{UUID: "u1", RoomID: room, RoomName: `Project "X" <y>`})
	if err != nil {
		t.Fatal(err)
	}
	if f.pages != 5 {
		t.Errorf("%d pages of 3 read for 14 events, want 5", f.pages)
	}
	d := readDocument(t, e, "u1", res)
	if d.RoomID != room || d.RoomName != `Project "X" <y>` || d.ExportedAt != "2026-05-01T02:00:00.000Z" {
		t.Errorf("head %q %q %q", d.RoomID, d.RoomName, d.ExportedAt)
	}
	var ids []string
	for _, m := range d.Messages {
		ids = append(ids, string(m.EventID))
	}
	want := "[$m12 $m10 $m9 $m8 $m6 $m4 $m3 $m2 $m1]"
	if fmt.Sprint(ids) != want {
		t.Fatalf("messages %v, want %s (newest first; no state, reaction or redaction events)", ids, want)
	}
	if d.MessageCount != 9 || res.MessageCount != 9 || d.MediaCount != 0 || res.MediaFile != "" {
		t.Errorf("counts %d/%d media %d file %q", d.MessageCount, res.MessageCount, d.MediaCount, res.MediaFile)
	}
	by := map[string]Message{}
	for _, m := range d.Messages {
		by[string(m.EventID)] = m
	}
	for _, tc := range []struct {
		id   string
		want Message
	}{
		{"$m1", Message{EventID: "$m1", Sender: alice, Timestamp: "2025-10-09T08:53:21.000Z", Type: "m.room.message", MsgType: "m.text", Body: "first"}},
		{"$m2", Message{EventID: "$m2", Sender: bob, Timestamp: "2025-10-09T08:53:22.000Z", Type: "m.room.message", MsgType: "m.text", Body: "**bold**",
			Format: "org.matrix.custom.html", FormattedBody: "<strong>bold</strong>"}},
		{"$m3", Message{EventID: "$m3", Sender: alice, Timestamp: "2025-10-09T08:53:23.000Z", Type: "m.room.message", MsgType: "m.text", Body: "> first\n\nan answer",
			RelatesTo: &Relation{InReplyTo: &InReplyTo{EventID: "$m1"}}}},
		{"$m4", Message{EventID: "$m4", Sender: bob, Timestamp: "2025-10-09T08:53:24.000Z", Type: "m.room.message", MsgType: "m.text", Body: "* fixed",
			RelatesTo: &Relation{RelType: "m.replace", EventID: "$m2"}, NewContent: &NewContent{MsgType: "m.text", Body: "fixed"}}},
		{"$m6", Message{EventID: "$m6", Sender: bob, Timestamp: "2025-10-09T08:53:26.000Z", Type: "m.room.message", Redacted: true}},
		{"$m8", Message{EventID: "$m8", Sender: alice, Timestamp: "2025-10-09T08:53:28.000Z", Type: "m.sticker", Body: "a cat",
			URL: "mxc://example.org/cat", FileName: "a cat", MimeType: "image/png", Size: 123}},
		{"$m9", Message{EventID: "$m9", Sender: bob, Timestamp: "2025-10-09T08:53:29.000Z", Type: "m.room.encrypted", Encrypted: true}},
		{"$m10", Message{EventID: "$m10", Sender: alice, Timestamp: "2025-10-09T08:53:30.000Z", Type: "m.room.message", MsgType: "m.notice", Body: "a notice"}},
		{"$m12", Message{EventID: "$m12", Sender: bob, Timestamp: "2025-10-09T08:53:32.000Z", Type: "m.room.message", MsgType: "m.emote", Body: "waves"}},
	} {
		got, _ := json.Marshal(by[tc.id])
		want, _ := json.Marshal(tc.want)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.id, got, want)
		}
	}
}

func TestExportEmptyRoom(t *testing.T) {
	e, _ := newExporter(t, &fakeRoom{}, Config{Media: true})
	res, err := e.Run(context.Background(), Job{UUID: "empty", RoomID: room})
	if err != nil {
		t.Fatal(err)
	}
	d := readDocument(t, e, "empty", res)
	if d.Messages == nil || len(d.Messages) != 0 || d.MessageCount != 0 || res.MediaFile != "" {
		t.Errorf("empty room: %+v, media file %q", d, res.MediaFile)
	}
}

// TestExportRetries: 429 and 5xx answers and an unreachable homeserver are retried with
// a growing wait (longer when the homeserver asks); other errors and spent attempts end
// the export with nothing left on disk.
func TestExportRetries(t *testing.T) {
	events := []*event.Event{text(t, 1, alice, "a"), text(t, 2, bob, "b"), text(t, 3, alice, "c")}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

	f := &fakeRoom{events: events, faults: []error{httpErr(429, "M_LIMIT_EXCEEDED", 2500), httpErr(502, "", 0), refused, httpErr(503, "", 0)}}
	e, rs := newExporter(t, f, Config{PageSize: 2, Backoff: time.Second, MaxBackoff: 5 * time.Second})
	res, err := e.Run(context.Background(), Job{UUID: "retry", RoomID: room})
	if err != nil {
		t.Fatalf("export with transient failures: %v", err)
	}
	if d := readDocument(t, e, "retry", res); d.MessageCount != 3 {
		t.Errorf("%d messages", d.MessageCount)
	}
	// 2.5 s asked by the 429, then 2 s, 4 s, then the cap of 5 s.
	if fmt.Sprint(rs.waits) != "[2.5s 2s 4s 5s]" {
		t.Errorf("waits %v, want [2.5s 2s 4s 5s]", rs.waits)
	}

	for _, tc := range []struct {
		name   string
		faults []error
		waits  int
	}{
		{"forbidden: not retried", []error{httpErr(403, "M_FORBIDDEN", 0)}, 0},
		{"not found: not retried", []error{httpErr(404, "M_NOT_FOUND", 0)}, 0},
		{"attempts spent", []error{httpErr(500, "", 0), httpErr(500, "", 0), httpErr(500, "", 0)}, 2},
	} {
		f := &fakeRoom{events: events, faults: tc.faults}
		e, rs := newExporter(t, f, Config{Attempts: 3})
		if _, err := e.Run(context.Background(), Job{UUID: "fail", RoomID: room}); err == nil {
			t.Errorf("%s: export succeeded", tc.name)
		}
		if len(rs.waits) != tc.waits {
			t.Errorf("%s: %d waits, want %d", tc.name, len(rs.waits), tc.waits)
		}
		if entries, _ := os.ReadDir(e.cfg.Dir); len(entries) != 0 {
			t.Errorf("%s: a failed export left %d files", tc.name, len(entries))
		}
	}
}

// TestExportFailureKeepsEarlierFile: an export that fails half-way (after pages were
// written) leaves neither a partial file nor damage to a complete file of an earlier
// attempt under the same name.
func TestExportFailureKeepsEarlierFile(t *testing.T) {
	var events []*event.Event
	for i := range 50 {
		events = append(events, text(t, i, alice, fmt.Sprintf("message %d", i)))
	}
	f := &fakeRoom{events: events}
	e, _ := newExporter(t, f, Config{PageSize: 10})
	res, err := e.Run(context.Background(), Job{UUID: "again", RoomID: room})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(e.cfg.Dir, res.ExportFile))

	f.pages, f.failAfter = 0, 3
	if _, err := e.Run(context.Background(), Job{UUID: "again", RoomID: room}); err == nil {
		t.Fatal("export succeeded past a failing page")
	}
	entries, _ := os.ReadDir(e.cfg.Dir)
	if len(entries) != 1 || entries[0].Name() != res.ExportFile {
		t.Errorf("files after a failed run: %v, want only %s", entries, res.ExportFile)
	}
	after, _ := os.ReadFile(filepath.Join(e.cfg.Dir, res.ExportFile))
	if !bytes.Equal(before, after) {
		t.Error("a failed run changed the earlier complete file")
	}
	if d := readDocument(t, e, "again", res); d.MessageCount != 50 {
		t.Errorf("earlier file: %d messages", d.MessageCount)
	}
}

// TestExportCanceled: a server stop mid-export ends it at once, nothing left behind.
func TestExportCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeRoom{events: []*event.Event{text(t, 1, alice, "a")}, faults: []error{httpErr(503, "", 0)}}
	e, _ := newExporter(t, f, Config{Sleep: func(context.Context, time.Duration) error { cancel(); return context.Canceled }})
	if _, err := e.Run(ctx, Job{UUID: "stop", RoomID: room}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled export: %v", err)
	}
	if entries, _ := os.ReadDir(e.cfg.Dir); len(entries) != 0 {
		t.Errorf("canceled export left %d files", len(entries))
	}
}

func attachment(t testing.TB, n int, msgtype, name, uri string, size int) *event.Event {
	content := map[string]any{"msgtype": msgtype, "body": name, "url": uri}
	if size > 0 {
		content["info"] = map[string]any{"size": size, "mimetype": "application/octet-stream"}
	}
	return evt(t, "m.room.message", fmt.Sprintf("$a%d", n), alice, ts0+int64(n)*1000, content, nil)
}

// TestExportMedia: attachments go into the ZIP under "{event_id}_{file name}" (made
// safe); one over the per-file or per-export limit, encrypted, or failing to download is
// listed with media_error instead, and the export goes on.
func TestExportMedia(t *testing.T) {
	blob := func(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
	mxc := func(s string) id.ContentURI { return id.ContentURI{Homeserver: "example.org", FileID: s} }
	f := &fakeRoom{
		media: map[id.ContentURI][]byte{
			mxc("img"): blob(900, 'i'), mxc("doc"): blob(900, 'd'), mxc("big"): blob(1500, 'b'),
			mxc("sneaky"): blob(1500, 's'), mxc("vid"): blob(900, 'v'), mxc("aud"): blob(500, 'a'),
		},
		noLength: map[id.ContentURI]bool{mxc("sneaky"): true},
		dlErr:    map[id.ContentURI]error{mxc("flaky"): httpErr(502, "", 0)},
	}
	// Oldest first; the exporter meets them newest first, so the per-export budget of
	// 2400 bytes goes to $a8 (900) and $a7 (900); $a6 (900) no longer fits, $a5 (only
	// 500 bytes) still does.
	f.events = []*event.Event{
		attachment(t, 0, "m.file", "late.txt", "mxc://example.org/never", 200),         // 2300 + 200 > 2400: not even fetched
		attachment(t, 1, "m.image", "../../etc/passwd", "mxc://example.org/big", 1500), // over 1000 per file, known from info
		attachment(t, 2, "m.file", "sneaky.bin", "mxc://example.org/sneaky", 0),        // over, found while reading
		attachment(t, 3, "m.file", "gone.txt", "mxc://example.org/missing", 0),         // 404
		attachment(t, 4, "m.file", "flaky.txt", "mxc://example.org/flaky", 0),          // 502 every time
		attachment(t, 5, "m.audio", "voice.ogg", "mxc://example.org/aud", 500),
		attachment(t, 6, "m.video", "clip.mp4", "mxc://example.org/vid", 0), // no size given: found after the download
		attachment(t, 7, "m.file", `C:\Users\x\report..pdf`, "mxc://example.org/doc", 900),
		attachment(t, 8, "m.image", "photo.png", "mxc://example.org/img", 0),
		evt(t, "m.room.message", "$a9", bob, ts0+9000, map[string]any{"msgtype": "m.image", "body": "secret.png",
			"file": map[string]any{"url": "mxc://example.org/enc", "v": "v2"}}, nil),
		evt(t, "m.room.message", "$a10", bob, ts0+10000, map[string]any{"msgtype": "m.text", "body": "mxc://example.org/img is not an attachment"}, nil),
	}
	e, _ := newExporter(t, f, Config{Media: true, MaxFileBytes: 1000, MaxMediaBytes: 2400, Attempts: 2})
	res, err := e.Run(context.Background(), Job{UUID: "media", RoomID: room})
	if err != nil {
		t.Fatal(err)
	}
	d := readDocument(t, e, "media", res)
	got := map[string][2]string{}
	for _, m := range d.Messages {
		got[string(m.EventID)] = [2]string{m.MediaFile, m.MediaError}
	}
	want := map[string][2]string{
		"$a10": {"", ""},
		"$a9":  {"", "encrypted attachment: not archived"},
		"$a8":  {"$a8_photo.png", ""},
		"$a7":  {"$a7_C__Users_x_report_pdf", ""},
		"$a6":  {"", "over the per-export media limit of 2400 bytes"},
		"$a5":  {"$a5_voice.ogg", ""},
		"$a4":  {"", "download failed: HTTP 502 Bad Gateway"},
		"$a3":  {"", "download failed: M_NOT_FOUND"},
		"$a2":  {"", "file over the per-file limit of 1000 bytes"},
		"$a1":  {"", "file over the per-file limit of 1000 bytes"},
		"$a0":  {"", "over the per-export media limit of 2400 bytes"},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: media %q, error %q; want %q, %q", k, got[k][0], got[k][1], w[0], w[1])
		}
	}
	if d.MediaCount != 3 || res.MediaCount != 3 || res.MediaFile != "media-media.zip.enc" {
		t.Fatalf("media count %d/%d, file %q", d.MediaCount, res.MediaCount, res.MediaFile)
	}

	p, err := Open(e.cfg.Dir, res.MediaFile, e.cfg.Key, "media", KindMedia)
	if err != nil {
		t.Fatal(err)
	}
	zb, _ := io.ReadAll(p)
	p.Close()
	if int64(len(zb)) != res.MediaSize {
		t.Errorf("zip %d bytes, result says %d", len(zb), res.MediaSize)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	contents := map[string]string{}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc) // checks the CRC too
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", zf.Name, err)
		}
		contents[zf.Name] = fmt.Sprintf("%c x %d", b[0], len(b))
	}
	wantZip := map[string]string{"$a8_photo.png": "i x 900", "$a7_C__Users_x_report_pdf": "d x 900", "$a5_voice.ogg": "a x 500"}
	if fmt.Sprint(contents) != fmt.Sprint(wantZip) {
		t.Errorf("zip entries %v, want %v", contents, wantZip)
	}
	// Only the two final files remain: the spool files are gone.
	entries, _ := os.ReadDir(e.cfg.Dir)
	if len(entries) != 2 {
		t.Errorf("export folder holds %v", entries)
	}
}

func TestEntryName(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	for _, tc := range []struct {
		event id.EventID
		name  string
		want  string
	}{
		{"$abc", "photo.png", "$abc_photo.png"},
		{"$abc", "../../etc/passwd", "$abc_____etc_passwd"},
		{"$abc", "..", "$abc__"},
		{"$abc", "...", "$abc__."},
		{"$abc", `a\b/c:d*e?f"g<h>i|j`, "$abc_a_b_c_d_e_f_g_h_i_j"},
		{"$abc", "line\nbreak\x00", "$abc_line_break_"},
		{"$abc", "", "$abc_file"},
		{"$abc:example.org", "x", "$abc_example.org_x"},
		{"$abc", "bad\xffutf8", "$abc_bad_utf8"},
		{"$abc", long, "$abc_" + strings.Repeat("é", 100)},
	} {
		got := EntryName(tc.event, tc.name)
		if got != tc.want {
			t.Errorf("EntryName(%q, %q) = %q, want %q", tc.event, tc.name, got, tc.want)
		}
		if strings.ContainsAny(got, `/\`) || strings.Contains(got, "..") {
			t.Errorf("EntryName(%q, %q) = %q is not safe", tc.event, tc.name, got)
		}
	}
}

// TestOpenRefusesTamperedFiles: Open (the download's first step) fails with
// ErrIntegrity on a modified file and on another export's file put in its place, and
// RemoveUnfinished deletes only what a crash left half-written.
func TestOpenRefusesTamperedFiles(t *testing.T) {
	f := &fakeRoom{events: []*event.Event{text(t, 1, alice, "a secret plan"), text(t, 2, bob, "agreed")}}
	e, _ := newExporter(t, f, Config{})
	a, err := e.Run(context.Background(), Job{UUID: "aaaa", RoomID: room})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Run(context.Background(), Job{UUID: "bbbb", RoomID: room})
	if err != nil {
		t.Fatal(err)
	}
	pathA := filepath.Join(e.cfg.Dir, a.ExportFile)
	raw, _ := os.ReadFile(pathA)
	if bytes.Contains(raw, []byte("secret plan")) || bytes.Contains(raw, []byte(alice)) {
		t.Error("the export file holds message text in the clear")
	}
	if fi, _ := os.Stat(pathA); fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode %v, want 0600", fi.Mode().Perm())
	}

	flipped := bytes.Clone(raw)
	flipped[len(flipped)-20] ^= 1
	os.WriteFile(pathA, flipped, 0o600)
	if _, err := Open(e.cfg.Dir, a.ExportFile, e.cfg.Key, "aaaa", KindJSON); !errors.Is(err, ErrIntegrity) {
		t.Errorf("flipped byte: %v, want ErrIntegrity", err)
	}
	other, _ := os.ReadFile(filepath.Join(e.cfg.Dir, b.ExportFile))
	os.WriteFile(pathA, other, 0o600)
	if _, err := Open(e.cfg.Dir, a.ExportFile, e.cfg.Key, "aaaa", KindJSON); !errors.Is(err, ErrIntegrity) {
		t.Errorf("another export's file: %v, want ErrIntegrity", err)
	}
	if _, err := Open(e.cfg.Dir, b.ExportFile, testKey(t), "bbbb", KindJSON); !errors.Is(err, ErrIntegrity) {
		t.Errorf("another master key: %v, want ErrIntegrity", err)
	}
	if _, err := Open(e.cfg.Dir, "../"+b.ExportFile, e.cfg.Key, "bbbb", KindJSON); err == nil {
		t.Error("a path outside the export folder was opened")
	}
	if _, err := Open(e.cfg.Dir, "cccc.json.enc", e.cfg.Key, "cccc", KindJSON); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}

	for _, name := range []string{".x.json.enc.partial-123", ".spool.partial-9"} {
		os.WriteFile(filepath.Join(e.cfg.Dir, name), []byte("half"), 0o600)
	}
	if n, err := RemoveUnfinished(e.cfg.Dir); err != nil || n != 2 {
		t.Errorf("RemoveUnfinished: %d, %v; want 2", n, err)
	}
	entries, _ := os.ReadDir(e.cfg.Dir)
	if len(entries) != 2 {
		t.Errorf("after RemoveUnfinished: %v, want the two export files", entries)
	}
	if err := RemoveFiles(e.cfg.Dir, "bbbb"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(e.cfg.Dir); len(entries) != 1 || entries[0].Name() != a.ExportFile {
		t.Errorf("after RemoveFiles(bbbb): %v, want only %s", entries, a.ExportFile)
	}
	if err := RemoveFiles(e.cfg.Dir, "bbbb"); err != nil {
		t.Errorf("removing files already gone: %v", err)
	}
	if err := RemoveFiles(e.cfg.Dir, "../x"); err == nil {
		t.Error("RemoveFiles accepted a path")
	}
	if n, err := RemoveUnfinished(filepath.Join(e.cfg.Dir, "none")); err != nil || n != 0 {
		t.Errorf("RemoveUnfinished on a missing folder: %d, %v", n, err)
	}
}

// TestExportProgress: the job's Progress hears the counts after every page, ending with
// the totals.
func TestExportProgress(t *testing.T) {
	f := &fakeRoom{media: map[id.ContentURI][]byte{{Homeserver: "example.org", FileID: "img"}: bytes.Repeat([]byte{'i'}, 10)}}
	for i := range 5 {
		f.events = append(f.events, text(t, i, alice, "x"))
	}
	f.events = append(f.events, attachment(t, 5, "m.image", "a.png", "mxc://example.org/img", 10))
	e, _ := newExporter(t, f, Config{PageSize: 2, Media: true})
	var seen []string
	res, err := e.Run(context.Background(), Job{UUID: "progress", RoomID: room, Progress: func(messages, media int) {
		seen = append(seen, fmt.Sprintf("%d/%d", messages, media))
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Pages of 2, newest first: the attachment and a text, two texts, two texts.
	if want := "[2/1 4/1 6/1]"; fmt.Sprint(seen) != want || res.MessageCount != 6 || res.MediaCount != 1 {
		t.Errorf("progress %v, want %s; result %d messages, %d media", seen, want, res.MessageCount, res.MediaCount)
	}
}
