package main

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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
	"matrixas/matrix"
	"matrixas/settings"
)

// stamps records when each event id was first seen passing a proxy.
type stamps struct {
	mu   sync.Mutex
	seen map[id.EventID]time.Time
}

func (s *stamps) note(ids []id.EventID, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range ids {
		if _, ok := s.seen[e]; !ok {
			s.seen[e] = at
		}
	}
}

func (s *stamps) get(e id.EventID) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.seen[e]
	return t, ok
}

// tap is a reverse proxy to target that stamps, for each request whose path contains
// pathPart, the event ids pick finds in its body, at the moment the request arrives.
func tap(t *testing.T, target string, pathPart string, pick func(body []byte) []id.EventID, st *stamps) *httptest.Server {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		if strings.Contains(r.URL.Path, pathPart) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			st.note(pick(body), at)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// transactionEvents are the ids of a homeserver transaction's events.
func transactionEvents(body []byte) []id.EventID {
	var txn struct {
		Events []struct {
			EventID id.EventID `json:"event_id"`
		} `json:"events"`
	}
	json.Unmarshal(body, &txn)
	out := make([]id.EventID, 0, len(txn.Events))
	for _, e := range txn.Events {
		out = append(out, e.EventID)
	}
	return out
}

// repliedTo is the command a sent message replies to.
func repliedTo(body []byte) []id.EventID {
	var c struct {
		RelatesTo struct {
			InReplyTo struct {
				EventID id.EventID `json:"event_id"`
			} `json:"m.in_reply_to"`
		} `json:"m.relates_to"`
	}
	json.Unmarshal(body, &c)
	if c.RelatesTo.InReplyTo.EventID == "" {
		return nil
	}
	return []id.EventID{c.RelatesTo.InReplyTo.EventID}
}

// TestBenchBot: scenario 9. The server is the appservice of a fresh Dendrite, with two
// taps: one between Dendrite and the webhook (when a command's transaction arrives), one
// between the server and Dendrite (when the reply's send leaves). A member sends !help
// commands one after the other, across rooms (the rate rule allows 10 per room and
// minute); each latency is from the transaction arriving to the reply's send leaving.
// Then the outbox's throughput: messages queued through the API into the rooms and
// posted by the sender, against a serial loop of plain sends of as many messages.
func TestBenchBot(t *testing.T) {
	out := os.Getenv("BENCH_BOT_RESULTS")
	if out == "" {
		t.Skip("benchmark scenario: run `go run ./bench -only 9` to run it")
	}
	dendritetest.Require(t)
	commands, rooms, messages := 200, 25, 400
	if os.Getenv("BENCH_QUICK") != "" {
		commands, rooms, messages = 30, 4, 60
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("/dev/shm", "matrixas-bench-")
	if err != nil {
		dir = t.TempDir()
	} else {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	s := testserver.New(t, testserver.Options{Env: map[string]string{"LOG_LEVEL": "warn"}})
	arrived, left := &stamps{seen: map[id.EventID]time.Time{}}, &stamps{seen: map[id.EventID]time.Time{}}
	webhookTap := tap(t, s.URL, "/transactions/", transactionEvents, arrived)
	st := s.Web.Settings()
	if err := st.Set(ctx, map[string]string{
		settings.HomeserverDomain.Key: "localhost", settings.ASToken.Key: auth.RandomHex(32), settings.HSToken.Key: auth.RandomHex(32),
		settings.SenderLocalpart.Key: "waldur-bot", settings.AppserviceURL.Key: webhookTap.URL,
	}); err != nil {
		t.Fatal(err)
	}
	ms, _ := st.Matrix(ctx)
	reg, _ := matrix.BuildRegistration(ms)
	y, _ := reg.YAML()
	regFile := filepath.Join(dir, "registration.yaml")
	os.WriteFile(regFile, []byte(y), 0o600)
	hs := dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{regFile}, DataDir: filepath.Join(dir, "hs")})
	sendTap := tap(t, hs.URL, "/send/m.room.message/", repliedTo, left)
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: sendTap.URL, settings.Enabled.Key: "true"}); err != nil {
		t.Fatal(err)
	}
	ms, _ = st.Matrix(ctx)

	// A member with a role in every project; one room per project.
	var u struct{ UUID string }
	if code := s.JSON(t, http.MethodPost, "/api/users/", s.StaffToken, map[string]any{"username": "ann", "is_active": true}, &u); code != http.StatusCreated {
		t.Fatalf("user: %d", code)
	}
	var roomUUIDs []string
	for i := range rooms {
		p := post(t, s, "/api/projects/", map[string]any{"name": fmt.Sprintf("Bot bench %02d", i)})
		if code := s.JSON(t, http.MethodPut, "/api/projects/"+p["uuid"].(string)+"/members/", s.StaffToken,
			[]map[string]string{{"user": u.UUID, "role": "admin"}}, nil); code != http.StatusOK {
			t.Fatalf("members: %d", code)
		}
		r := post(t, s, "/api/matrix-rooms/", map[string]string{"project": p["uuid"].(string)})
		roomUUIDs = append(roomUUIDs, r["uuid"].(string))
	}
	var roomIDs []id.RoomID
	deadline := time.Now().Add(5 * time.Minute)
	for len(roomIDs) < rooms {
		roomIDs = roomIDs[:0]
		for _, uuid := range roomUUIDs {
			r, err := s.Store.RoomByUUID(ctx, uuid)
			if err != nil {
				t.Fatal(err)
			}
			members, _ := s.Store.RoomMembers(ctx, r.ID)
			if r.State == db.RoomActive && len(members) == 1 && members[0].Membership == "join" {
				roomIDs = append(roomIDs, r.RoomID)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d rooms ready", len(roomIDs), rooms)
		}
		time.Sleep(50 * time.Millisecond)
	}
	hc := matrix.HTTPClient(3*time.Second, 30*time.Second)
	ann, err := matrix.Client(ms, hc, id.NewUserID("ann", "localhost"))
	if err != nil {
		t.Fatal(err)
	}
	ann.HomeserverURL, _ = url.Parse(hs.URL) // the member talks to Dendrite directly

	res := botResults{Commands: commands, Rooms: rooms, Messages: messages, InFlight: 4}
	for i := range commands {
		resp, err := ann.SendText(ctx, roomIDs[i%rooms], "!help")
		if err != nil {
			t.Fatal(err)
		}
		var in, outAt time.Time
		waitFor := time.Now().Add(30 * time.Second)
		for {
			var ok1, ok2 bool
			in, ok1 = arrived.get(resp.EventID)
			outAt, ok2 = left.get(resp.EventID)
			if ok1 && ok2 {
				break
			}
			if time.Now().After(waitFor) {
				t.Fatalf("command %d: arrived %v, reply sent %v", i, ok1, ok2)
			}
			time.Sleep(200 * time.Microsecond)
		}
		res.LatencyMS = append(res.LatencyMS, float64(outAt.Sub(in).Microseconds())/1000)
	}

	// Throughput: the outbox, fed through the API by 8 callers at once...
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < messages; i += 8 {
				if code := s.JSON(t, http.MethodPost, "/api/matrix-rooms/"+roomUUIDs[i%rooms]+"/messages/", s.StaffToken,
					map[string]string{"body": fmt.Sprintf("outbox %d", i)}, nil); code != http.StatusAccepted {
					t.Errorf("queue: %d", code)
				}
			}
		}()
	}
	wg.Wait()
	res.QueuedS = time.Since(t0).Seconds()
	for {
		st, err := s.Store.OutboxStats(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 {
			break
		}
		if time.Since(t0) > 10*time.Minute {
			t.Fatalf("%d still pending", st.Pending)
		}
		time.Sleep(time.Millisecond)
	}
	res.OutboxS = time.Since(t0).Seconds()
	// ...against a serial loop of plain sends through the same tap, as the bot.
	bot, err := matrix.Client(ms, hc, "")
	if err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	for i := range messages {
		content := &event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: fmt.Sprintf("serial %d", i)}}
		if _, err := bot.SendMessageEvent(ctx, roomIDs[i%rooms], event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: fmt.Sprintf("serial-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	res.SerialS = time.Since(t0).Seconds()
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
