package web_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"matrixas/db"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// TestConcurrentWebhookReprovisionAndReads runs at once: homeserver transactions (some
// delivered twice), reprovisions racing each other, API writes, and dashboard and API
// reads. Under the race detector no request may fail with a 5xx (SQLITE_BUSY must never
// reach a client), and every count must come out exact: each transaction recorded once,
// each active room and provisioned user reset by exactly one reprovision, each project
// created once.
func TestConcurrentWebhookReprovisionAndReads(t *testing.T) {
	ts := testserver.New(t)
	ctx := context.Background()
	// Enabled, with an hs_token, but no homeserver URL: the provisioning worker stays
	// idle, so only this test's requests move rooms between states.
	if err := ts.Web.Settings().Set(ctx, map[string]string{
		settings.HomeserverDomain.Key: "localhost", settings.SenderLocalpart.Key: "waldur-bot",
		settings.HSToken.Key: hsTestToken, settings.Enabled.Key: "true",
	}); err != nil {
		t.Fatal(err)
	}
	const rooms, users = 30, 20
	rules := db.ProfileRules{Domain: "localhost", BotLocalpart: "waldur-bot"}
	for i := range rooms {
		p, _, err := ts.Store.PutProject(ctx, db.DirectoryProject{Name: fmt.Sprintf("Busy %02d", i)}, false)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ts.Store.CreateRoom(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Fixture: the room exists on the homeserver and is in sync.
		err = ts.Store.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE matrix_rooms SET state = 'active', room_id = ?, members_dirty = 0 WHERE id = ?`, fmt.Sprintf("!busy%d:localhost", i), r.ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range users {
		u := &db.User{Username: fmt.Sprintf("busy%02d", i), FullName: fmt.Sprintf("Busy %02d", i), IsActive: true}
		if err := ts.Store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Store.EnsureProfile(ctx, u.ID, rules); err != nil {
			t.Fatal(err)
		}
		if ok, err := ts.Store.MarkProfileProvisioned(ctx, u.ID, u.FullName); err != nil || !ok {
			t.Fatalf("mark %s provisioned: %v, %v", u.Username, ok, err)
		}
	}
	browser := ts.Browser(t)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		requests atomic.Int64
	)
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, s)
		}
	}
	// send runs one request and checks its status; it returns the body.
	send := func(client *http.Client, method, path, token string, body string, want int) []byte {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, ts.URL+path, rd)
		if err != nil {
			fail(err.Error())
			return nil
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if path == "/reprovision/progress" {
			req.Header.Set("HX-Request", "true") // an htmx fragment
		}
		switch {
		case strings.HasPrefix(path, "/_matrix/"):
			req.Header.Set("Authorization", "Bearer "+token)
		case token != "":
			req.Header.Set("Authorization", "Token "+token)
		}
		resp, err := client.Do(req)
		requests.Add(1)
		if err != nil {
			fail(fmt.Sprintf("%s %s: %v", method, path, err))
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			fail(fmt.Sprintf("%s %s: %d, want %d: %.200s", method, path, resp.StatusCode, want, b))
		}
		return b
	}

	// Homeserver: 6 senders of 40 transactions; every fifth is delivered again.
	const senders, perSender = 6, 40
	unique := 0
	for s := range senders {
		unique += perSender
		wg.Go(func() {
			client := &http.Client{}
			for i := range perSender {
				id := fmt.Sprintf("load-%d-%03d", s, i)
				body := fmt.Sprintf(`{"events":[{"type":"m.room.message","event_id":"$%s","room_id":"!busy%d:localhost","sender":"@u:localhost","content":{}}]}`, id, i%rooms)
				send(client, http.MethodPut, "/_matrix/app/v1/transactions/"+id, hsTestToken, body, http.StatusOK)
				if i%5 == 0 {
					send(client, http.MethodPut, "/_matrix/app/v1/transactions/"+id, hsTestToken, body, http.StatusOK)
				}
			}
		})
	}
	// Staff: two goroutines reprovisioning three times each, racing each other.
	var roomsReset, usersReset atomic.Int64
	for range 2 {
		wg.Go(func() {
			client := &http.Client{}
			for range 3 {
				b := send(client, http.MethodPost, "/api/admin/matrix/reprovision/", ts.StaffToken, "", http.StatusAccepted)
				var c db.ReprovisionCounts
				if err := json.Unmarshal(b, &c); err != nil {
					fail("reprovision answer: " + err.Error())
					continue
				}
				roomsReset.Add(int64(c.Rooms))
				usersReset.Add(int64(c.Users))
			}
		})
	}
	// Platform sync: projects created through the API.
	const creators, perCreator = 3, 10
	for c := range creators {
		wg.Go(func() {
			client := &http.Client{}
			for i := range perCreator {
				send(client, http.MethodPost, "/api/projects/", ts.StaffToken, fmt.Sprintf(`{"name":"Created %d-%d"}`, c, i), http.StatusCreated)
			}
		})
	}
	// Readers: the dashboard and the API, over and over until the writers are done.
	writersDone := make(chan struct{})
	var readers sync.WaitGroup
	pages := []string{"/", "/rooms", "/transactions", "/reprovision", "/reprovision/progress", "/users", "/projects"}
	apis := []string{"/api/matrix-rooms/", "/api/admin/matrix-appservice/status/", "/api/admin/matrix/reprovision/", "/api/matrix-user-profiles/", "/readyz"}
	for r := range 3 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-writersDone:
					return
				default:
				}
				if r == 0 {
					send(browser, http.MethodGet, pages[i%len(pages)], "", "", http.StatusOK)
				} else {
					send(&http.Client{}, http.MethodGet, apis[i%len(apis)], ts.StaffToken, "", http.StatusOK)
				}
			}
		})
	}
	wg.Wait()
	close(writersDone)
	readers.Wait()

	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d requests", requests.Load())
	if strings.Contains(ts.Logs.String(), "database is locked") || strings.Contains(ts.Logs.String(), "SQLITE_BUSY") {
		t.Errorf("SQLITE_BUSY reached the log")
	}

	// Exact counts.
	_, counter := storedTxns(t, ts, nil)
	if counter != int64(unique) {
		t.Errorf("transactions counter %d, want %d (each once)", counter, unique)
	}
	rows, _, err := ts.Store.ListTransactions(ctx, db.TxnCursor{}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	loadRows := 0
	for _, r := range rows {
		if strings.HasPrefix(r.TxnID, "load-") {
			loadRows++
		}
	}
	if loadRows != unique {
		t.Errorf("%d transaction rows, want %d", loadRows, unique)
	}
	if got := roomsReset.Load(); got != rooms {
		t.Errorf("reprovisions reset %d rooms in all, want exactly %d", got, rooms)
	}
	if got := usersReset.Load(); got != users {
		t.Errorf("reprovisions reset %d users in all, want exactly %d", got, users)
	}
	counts, err := ts.Store.RoomStateCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[db.RoomCreating] != rooms || counts[db.RoomActive] != 0 {
		t.Errorf("room states after reprovision: %v, want all %d creating", counts, rooms)
	}
	resp, _ := ts.Request(t, http.MethodGet, "/api/projects/?page_size=1", ts.StaffToken, nil)
	if got := resp.Header.Get("X-Result-Count"); got != fmt.Sprint(rooms+creators*perCreator) {
		t.Errorf("%s projects, want %d", got, rooms+creators*perCreator)
	}
}
