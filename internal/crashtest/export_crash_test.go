package crashtest

import (
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
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/export"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testbin"
	"matrixas/matrix"
	"matrixas/settings"
)

// slowHistory forwards to the homeserver and holds every history page for delay, so
// that an export takes long enough to be killed in the middle.
type slowHistory struct {
	next  http.Handler
	delay time.Duration
}

func (s *slowHistory) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/messages") {
		time.Sleep(s.delay)
	}
	s.next.ServeHTTP(w, r)
}

// client calls the server's API with a token.
type client struct {
	t     *testing.T
	url   string
	token string
}

func (c *client) do(method, path string, body any) (int, []byte, http.Header) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Token "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (c *client) json(method, path string, body any, want int, out any) {
	c.t.Helper()
	code, b, _ := c.do(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

type exportRecord struct {
	UUID         string  `json:"uuid"`
	State        string  `json:"state"`
	MessageCount int     `json:"message_count"`
	Attempts     int     `json:"attempts"`
	ErrorMessage string  `json:"error_message"`
	ExportFile   *string `json:"export_file"`
}

// startServer runs the binary with extra environment and waits until it is ready.
func startServer(t *testing.T, bin, dbPath, addr string, extra ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, "serve"), url: "http://" + addr, logs: &bytes.Buffer{}}
	p.cmd.Env = append(env(dbPath, addr), extra...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not get ready:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCrashDuringExport SIGKILLs the server while it exports a room from a real
// Dendrite: the half-written file is never served, and after the restart the export is
// tried again from the start and completes with every message.
func TestCrashDuringExport(t *testing.T) {
	dendritetest.Require(t)
	ctx := context.Background()
	bin := testbin.Build(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "export-crash.db")
	os.WriteFile(filepath.Join(dir, "pw"), []byte("crash-test-password\n"), 0o600)
	run(t, bin, dbPath, "", "createstaff", "--password-file", filepath.Join(dir, "pw"), "ops")
	token := run(t, bin, dbPath, "", "createtoken", "ops")
	addr := freeAddr(t)

	// The appservice's settings, then Dendrite with its registration, behind a proxy
	// that slows history pages down.
	store, err := db.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	st := db.NewSettings(store, nil)
	if err := st.Set(ctx, map[string]string{
		settings.HomeserverDomain.Key: "localhost", settings.ASToken.Key: auth.RandomHex(32), settings.HSToken.Key: auth.RandomHex(32),
		settings.SenderLocalpart.Key: "waldur-bot", settings.AppserviceURL.Key: "http://" + addr,
	}); err != nil {
		t.Fatal(err)
	}
	ms, err := st.Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := matrix.BuildRegistration(ms)
	y, _ := reg.YAML()
	regFile := filepath.Join(dir, "registration.yaml")
	if err := os.WriteFile(regFile, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	hs := dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{regFile}})
	target, _ := url.Parse(hs.URL)
	proxy := httptest.NewServer(&slowHistory{next: httputil.NewSingleHostReverseProxy(target), delay: 400 * time.Millisecond})
	t.Cleanup(proxy.Close)
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: proxy.URL, settings.Enabled.Key: "true"}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	extra := []string{"PROVISION_INTERVAL=1s", "PROVISION_BACKOFF=1s"}
	p := startServer(t, bin, dbPath, addr, extra...)
	c := &client{t: t, url: p.url, token: token}

	// A room with one member, made by the worker; 450 messages in it (five pages).
	var u, pr, room struct{ UUID string }
	c.json(http.MethodPost, "/api/users/", map[string]any{"username": "ann", "email": "ann@example.org", "is_active": true}, 201, &u)
	c.json(http.MethodPost, "/api/projects/", map[string]any{"name": "Crash"}, 201, &pr)
	c.json(http.MethodPut, "/api/projects/"+pr.UUID+"/members/", []map[string]string{{"user": u.UUID, "role": "admin"}}, 200, nil)
	c.json(http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": pr.UUID}, 201, &room)
	var roomID id.RoomID
	deadline := time.Now().Add(90 * time.Second)
	for {
		var r struct {
			State   string    `json:"state"`
			RoomID  id.RoomID `json:"room_id"`
			Members []struct {
				Membership string `json:"membership"`
			} `json:"members"`
		}
		c.json(http.MethodGet, "/api/matrix-rooms/"+room.UUID+"/", nil, 200, &r)
		if r.State == "active" && len(r.Members) == 1 && r.Members[0].Membership == "join" {
			roomID = r.RoomID
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("room not active with its member: %+v\n%s", r, p.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	ms.HomeserverURL = hs.URL
	ann, err := matrix.Client(ms, matrix.HTTPClient(3*time.Second, 30*time.Second), id.NewUserID("ann", "localhost"))
	if err != nil {
		t.Fatal(err)
	}
	const messages = 450
	var last id.EventID
	for i := range messages {
		resp, err := ann.SendMessageEvent(ctx, roomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: fmt.Sprintf("crash-marker %03d", i)})
		if err != nil {
			t.Fatal(err)
		}
		last = resp.EventID
	}
	dendritetest.WaitVisible(t, ann, roomID, last)

	// Export; kill the server once the first page is on record.
	var e exportRecord
	c.json(http.MethodPost, "/api/matrix-rooms/"+room.UUID+"/export_history/", nil, 202, &e)
	deadline = time.Now().Add(30 * time.Second)
	for {
		c.json(http.MethodGet, "/api/matrix-exports/"+e.UUID+"/", nil, 200, &e)
		if e.State == "exporting" && e.MessageCount > 0 {
			break
		}
		if e.State == "completed" || e.State == "failed" || time.Now().After(deadline) {
			t.Fatalf("export %+v before the kill: it was meant to be running", e)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, b, _ := c.do(http.MethodGet, "/api/matrix-exports/"+e.UUID+"/download/export/", nil); code != http.StatusNotFound {
		t.Errorf("download of a running export: %d %s, want 404", code, b)
	}
	p.kill()
	t.Logf("killed at %d of %d messages (attempt %d)", e.MessageCount, messages, e.Attempts)

	exportDir := export.DefaultDir(dbPath)
	entries, _ := os.ReadDir(exportDir)
	var partial []string
	for _, ent := range entries {
		if ent.Name() == export.FileName(e.UUID, export.KindJSON) {
			t.Fatalf("a file with the export's final name exists after the kill: %v", entries)
		}
		if strings.Contains(ent.Name(), ".partial-") {
			partial = append(partial, ent.Name())
		}
	}
	if len(partial) == 0 {
		t.Errorf("no half-written file after a kill mid-export (%v): the test did not kill it mid-write", entries)
	}

	// Restart: the export runs again; until it completes it is never downloadable.
	p = startServer(t, bin, dbPath, addr, extra...)
	deadline = time.Now().Add(60 * time.Second)
	for {
		c.json(http.MethodGet, "/api/matrix-exports/"+e.UUID+"/", nil, 200, &e)
		code, b, _ := c.do(http.MethodGet, "/api/matrix-exports/"+e.UUID+"/download/export/", nil)
		if e.State != "completed" && code != http.StatusNotFound {
			t.Fatalf("export %s: download answered %d (%d bytes)", e.State, code, len(b))
		}
		if e.State == "completed" || e.State == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export %+v after the restart\n%s", e, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if e.State != "completed" || e.Attempts != 2 {
		t.Fatalf("after the restart: %+v, want completed on the second attempt", e)
	}
	code, body, hdr := c.do(http.MethodGet, "/api/matrix-exports/"+e.UUID+"/download/export/", nil)
	if code != http.StatusOK || hdr.Get("Content-Length") != fmt.Sprint(len(body)) {
		t.Fatalf("download: %d, Content-Length %s for %d bytes", code, hdr.Get("Content-Length"), len(body))
	}
	var doc struct {
		MessageCount int `json:"message_count"`
		Messages     []struct {
			Body string `json:"body"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("the download is not one JSON document: %v", err)
	}
	ours := 0
	for i, m := range doc.Messages {
		if strings.HasPrefix(m.Body, "crash-marker ") {
			if want := fmt.Sprintf("crash-marker %03d", messages-1-ours); m.Body != want {
				t.Fatalf("message %d is %q, want %q", i, m.Body, want)
			}
			ours++
		}
	}
	if ours != messages || doc.MessageCount != len(doc.Messages) || e.MessageCount != doc.MessageCount {
		t.Errorf("%d of %d messages; count %d, %d listed, record %d", ours, messages, doc.MessageCount, len(doc.Messages), e.MessageCount)
	}
	entries, _ = os.ReadDir(exportDir)
	for _, ent := range entries {
		if strings.Contains(ent.Name(), ".partial-") {
			t.Errorf("half-written file %s still there after the restart", ent.Name())
		}
	}
}
