package appservice_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/handlers/appservice"
	"matrixas/metrics"
	"matrixas/settings"
)

// observed records what the handler reports.
type observed struct {
	mu                sync.Mutex
	queued, dropped   int
	calls, wakes, bot int
}

func (o *observed) TransactionDone(metrics.TxnOutcome, int) {}
func (o *observed) WebhookAuthFailed(metrics.AuthFailure)   {}
func (o *observed) CommandsRecorded(queued, dropped int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	o.queued += queued
	o.dropped += dropped
}

// commandHandler is the webhook over a real store with one active managed room
// (!apollo:example.org), its sender's wake counted.
func commandHandler(t *testing.T) (http.Handler, *db.Store, *observed, *db.Settings) {
	t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	st := db.NewSettings(store, nil)
	if err := st.Set(ctx, map[string]string{settings.HSToken.Key: "hs", settings.Enabled.Key: "true",
		settings.HomeserverDomain.Key: "example.org", settings.SenderLocalpart.Key: "waldur-bot"}); err != nil {
		t.Fatal(err)
	}
	p, _, err := store.PutProject(ctx, db.DirectoryProject{Name: "Apollo"}, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetRoomHomeserverID(ctx, r.ID, "!apollo:example.org", "", ""); err != nil {
		t.Fatal(err)
	}
	if err := store.FinishRoomSync(ctx, r.ID, "Apollo"); err != nil {
		t.Fatal(err)
	}
	rec := store.NewRecorder(16)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { rec.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	obs := &observed{}
	h := &appservice.Handler{Settings: st, Recorder: rec, Observer: obs,
		Wake:    func() { obs.mu.Lock(); obs.wakes++; obs.mu.Unlock() },
		WakeBot: func() { obs.mu.Lock(); obs.bot++; obs.mu.Unlock() }}
	router := chi.NewRouter()
	router.Put("/_matrix/app/v1/transactions/{txnId}", h.Transaction)
	return router, store, obs, st
}

func message(eventID, room, sender, msgtype, body string) string {
	return fmt.Sprintf(`{"type":"m.room.message","event_id":%q,"room_id":%q,"sender":%q,"content":{"msgtype":%q,"body":%q}}`,
		eventID, room, sender, msgtype, body)
}

func put(t *testing.T, h http.Handler, txnID string, events ...string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPut, "/_matrix/app/v1/transactions/"+txnID, strings.NewReader(`{"events":[`+strings.Join(events, ",")+`]}`))
	req.Header.Set("Authorization", "Bearer hs")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code
}

// replyRows maps the command each queued reply answers to its text.
func replyRows(t *testing.T, store *db.Store) map[id.EventID]string {
	t.Helper()
	rows, _, err := store.ListOutbox(context.Background(), db.OutboxFilter{Page: db.Page{Size: db.MaxPageSize}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[id.EventID]string{}
	for _, m := range rows {
		out[m.CommandEventID] = m.CommandBody
	}
	return out
}

// TestWebhookQueuesCommands: the commands of a transaction are queued with it, only in
// managed active rooms, only m.text and never the bot's own; the sender is woken when
// replies were queued (not for a replay), and the commands are reported, rate-limited
// ones apart.
func TestWebhookQueuesCommands(t *testing.T) {
	h, store, obs, st := commandHandler(t)
	const room, ann, botID = "!apollo:example.org", "@ann:example.org", "@waldur-bot:example.org"
	if code := put(t, h, "t1",
		message("$help", room, ann, "m.text", "!help"),
		message("$status", room, ann, "m.text", "  !status now"),
		message("$chat", room, ann, "m.text", "hello!"),
		message("$notice", room, ann, "m.notice", "!help"),
		message("$own", room, botID, "m.text", "!help"),
		message("$elsewhere", "!other:example.org", ann, "m.text", "!help"),
	); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	want := map[id.EventID]string{"$help": "!help", "$status": "  !status now"}
	if got := replyRows(t, store); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replies queued for %v, want %v", got, want)
	}
	if obs.bot != 1 || obs.queued != 2 || obs.dropped != 0 || obs.wakes != 0 {
		t.Errorf("woken %d (worker %d), reported %d queued %d dropped", obs.bot, obs.wakes, obs.queued, obs.dropped)
	}

	// The same transaction again, and its command in another one: nothing new, no wake.
	put(t, h, "t1", message("$help", room, ann, "m.text", "!help"))
	put(t, h, "t2", message("$help", room, ann, "m.text", "!help"))
	if n := len(replyRows(t, store)); n != 2 || obs.bot != 1 {
		t.Errorf("after redelivery: %d replies, woken %d times", n, obs.bot)
	}

	// A disabled appservice acknowledges and keeps nothing.
	if err := st.Set(context.Background(), map[string]string{settings.Enabled.Key: "false"}); err != nil {
		t.Fatal(err)
	}
	if code := put(t, h, "t4", message("$late", room, ann, "m.text", "!help")); code != http.StatusOK {
		t.Fatalf("disabled: %d", code)
	}
	if _, ok := replyRows(t, store)["$late"]; ok || obs.bot != 1 {
		t.Error("a disabled appservice queued a reply")
	}
	if err := st.Set(context.Background(), map[string]string{settings.Enabled.Key: "true"}); err != nil {
		t.Fatal(err)
	}

	// Eleven commands in the minute: the room already has 2 replies, so 8 more are
	// queued and the rest reported as dropped.
	var burst []string
	for i := range 11 {
		burst = append(burst, message(fmt.Sprintf("$burst%d", i), room, ann, "m.text", "!help"))
	}
	put(t, h, "t3", burst...)
	if n := len(replyRows(t, store)); n != db.ReplyRateLimit || obs.queued != db.ReplyRateLimit || obs.dropped != 3 || obs.bot != 2 {
		t.Errorf("after the burst: %d replies, reported %d queued %d dropped, woken %d times", n, obs.queued, obs.dropped, obs.bot)
	}

}
