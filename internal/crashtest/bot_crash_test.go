package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testbin"
)

// apiCall sends a JSON request with the API token and decodes the answer into out.
func apiCall(t *testing.T, p *proc, token, method, path string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// TestCrashDuringOutboxBurst SIGKILLs the server twice while its outbox is posting a
// burst of messages into two rooms of a real Dendrite, restarts it each time, and checks
// that every message the API accepted (202) ends up in its room exactly once, each row
// sent with the event that carries its transaction id.
func TestCrashDuringOutboxBurst(t *testing.T) {
	dendritetest.Require(t)
	ctx := context.Background()
	bin := testbin.Build(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "crash.db")
	os.WriteFile(filepath.Join(dir, "pw"), []byte("crash-test-password\n"), 0o600)
	run(t, bin, dbPath, "", "createstaff", "--password-file", filepath.Join(dir, "pw"), "ops")
	token := run(t, bin, dbPath, "", "createtoken", "ops")

	hs := dendritetest.Start(t, dendritetest.Options{})
	addr := freeAddr(t)
	p := start(t, bin, dbPath, addr)
	var setup struct {
		ASToken          string `json:"as_token"`
		RegistrationYAML string `json:"registration_yaml"`
	}
	if code := apiCall(t, p, token, http.MethodPost, "/api/admin/matrix-appservice/setup/", map[string]string{
		"url": p.url, "homeserver_url": hs.URL, "homeserver_domain": hs.ServerName,
		"user_registration_secret": hs.SharedSecret, "sender_localpart": "waldur-bot",
	}, &setup); code != http.StatusOK {
		t.Fatalf("setup: %d", code)
	}
	regFile := filepath.Join(dir, "registration.yaml")
	if err := os.WriteFile(regFile, []byte(setup.RegistrationYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	hs.SetRegistrationFiles(regFile)
	if err := hs.Restart(); err != nil {
		t.Fatal(err)
	}
	var pb map[string]string
	if code := apiCall(t, p, token, http.MethodPost, "/api/admin/matrix-appservice/provision-bot/", map[string]string{}, &pb); code != http.StatusOK || pb["bot_provision_status"] != "ok" {
		t.Fatalf("provision-bot: %d %v", code, pb)
	}

	// Two projects, each with a member and a room the worker creates.
	var user struct{ UUID string }
	if code := apiCall(t, p, token, http.MethodPost, "/api/users/", map[string]any{"username": "ann", "is_active": true}, &user); code != http.StatusCreated {
		t.Fatalf("user: %d", code)
	}
	var rooms []string
	for _, name := range []string{"Apollo", "Gemini"} {
		var pr, room struct{ UUID string }
		if code := apiCall(t, p, token, http.MethodPost, "/api/projects/", map[string]any{"name": name}, &pr); code != http.StatusCreated {
			t.Fatalf("project: %d", code)
		}
		if code := apiCall(t, p, token, http.MethodPut, "/api/projects/"+pr.UUID+"/members/", []map[string]string{{"user": user.UUID, "role": "admin"}}, nil); code != http.StatusOK {
			t.Fatalf("members: %d", code)
		}
		if code := apiCall(t, p, token, http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": pr.UUID}, &room); code != http.StatusCreated {
			t.Fatalf("room: %d", code)
		}
		rooms = append(rooms, room.UUID)
	}
	roomIDs := map[string]id.RoomID{}
	deadline := time.Now().Add(60 * time.Second)
	for len(roomIDs) < len(rooms) {
		for _, r := range rooms {
			var got struct {
				State  string    `json:"state"`
				RoomID id.RoomID `json:"room_id"`
			}
			apiCall(t, p, token, http.MethodGet, "/api/matrix-rooms/"+r+"/", nil, &got)
			if got.State == "active" {
				roomIDs[r] = got.RoomID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rooms not active: %v", roomIDs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The burst: messages queued through the API from several callers at once.
	const perRoom = 150
	var mu sync.Mutex
	accepted := map[string]string{} // body -> room uuid
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 2*perRoom; i += 8 {
				room := rooms[i%2]
				body := fmt.Sprintf("burst %03d", i)
				var out struct{ State string }
				if code := apiCall(t, p, token, http.MethodPost, "/api/matrix-rooms/"+room+"/messages/", map[string]string{"body": body}, &out); code == http.StatusAccepted {
					mu.Lock()
					accepted[body] = room
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(accepted) != 2*perRoom {
		t.Fatalf("%d of %d messages accepted", len(accepted), 2*perRoom)
	}

	store, err := db.OpenNoMigrate(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sent := func() int {
		c, err := store.OutboxStateCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c[db.OutboxSent]
	}
	// Kill it in the middle of the burst, twice.
	for _, fraction := range []int{3, 2} {
		target := 2 * perRoom / fraction
		for n := sent(); n < target; n = sent() {
			if time.Now().After(deadline.Add(2 * time.Minute)) {
				t.Fatalf("only %d sent", n)
			}
			time.Sleep(2 * time.Millisecond)
		}
		n := sent()
		p.kill()
		if n >= 2*perRoom {
			t.Fatalf("the whole burst was sent before the kill: it proves nothing")
		}
		// Rows claimed but not settled: the send may or may not have reached the room.
		pending, _, err := store.ListOutbox(ctx, db.OutboxFilter{State: db.OutboxPending, Page: db.Page{Size: db.MaxPageSize}})
		if err != nil {
			t.Fatal(err)
		}
		inDoubt := 0
		for _, m := range pending {
			if m.MaybeSent() {
				inDoubt++
			}
		}
		t.Logf("killed with %d of %d messages recorded as sent, %d in doubt (claimed, outcome not recorded)", n, 2*perRoom, inDoubt)
		p = start(t, bin, dbPath, addr)
	}
	waitFor := time.Now().Add(2 * time.Minute)
	for {
		st, err := store.OutboxStats(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 {
			break
		}
		if time.Now().After(waitFor) {
			t.Fatalf("%d messages still pending", st.Pending)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// What the rooms hold, read as the bot.
	botClient, err := mautrix.NewClient(hs.URL, id.NewUserID("waldur-bot", hs.ServerName), setup.ASToken)
	if err != nil {
		t.Fatal(err)
	}
	// Dendrite's /messages catches up with the last sends a moment later: read until
	// every accepted message is there (or the deadline says some are missing).
	var seen map[string]int
	var events map[string]id.EventID
	readDeadline := time.Now().Add(30 * time.Second)
	for {
		seen, events = map[string]int{}, map[string]id.EventID{}
		readRooms(t, ctx, botClient, roomIDs, accepted, seen, events)
		if len(seen) >= len(accepted) || time.Now().After(readDeadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	twice := 0
	for body := range accepted {
		switch n := seen[body]; {
		case n == 0:
			t.Errorf("%q was accepted but is not in its room", body)
		case n > 1:
			twice++
			t.Errorf("%q is in its room %d times", body, n)
		}
	}
	rows, _, err := store.ListOutbox(ctx, db.OutboxFilter{Page: db.Page{Size: db.MaxPageSize}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rows {
		if strings.HasPrefix(m.Body, "burst ") && (m.State != db.OutboxSent || m.EventID != events[m.Body]) {
			t.Errorf("row %q: %s, event %s; the room has it as %s", m.Body, m.State, m.EventID, events[m.Body])
		}
	}
	t.Logf("%d messages, each in its room once (%d twice)", len(accepted), twice)
}

// readRooms reads the bot's messages of each room (room uuid -> Matrix room), counting
// each body and noting its event; a message in a room it was not queued for is an error.
func readRooms(t *testing.T, ctx context.Context, botClient *mautrix.Client, roomIDs map[string]id.RoomID, accepted map[string]string,
	seen map[string]int, events map[string]id.EventID) {
	t.Helper()
	for r, roomID := range roomIDs {
		from := ""
		for {
			resp, err := botClient.Messages(ctx, roomID, from, "", mautrix.DirectionBackward, nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, evt := range resp.Chunk {
				if evt.Type != event.EventMessage || evt.Sender != botClient.UserID {
					continue
				}
				evt.Content.ParseRaw(evt.Type)
				body := evt.Content.AsMessage().Body
				if accepted[body] != r {
					t.Errorf("%q is in the wrong room or was never queued", body)
				}
				seen[body]++
				events[body] = evt.ID
			}
			if len(resp.Chunk) == 0 || resp.End == "" || resp.End == from {
				break
			}
			from = resp.End
		}
	}
}
