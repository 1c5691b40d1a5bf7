package bot_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/auth"
	"matrixas/bot"
	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/matrix"
)

// onDendrite is a real Dendrite with this appservice registered, its bot provisioned, a
// user (alice) and a room the bot created and alice joined, mirrored in a real store.
type onDendrite struct {
	hs     *dendritetest.Server
	ms     *db.MatrixSettings
	hc     *http.Client
	store  *db.Store
	rec    *db.Recorder
	bot    *mautrix.Client // the bot, with the as_token
	alice  *mautrix.Client // alice, with her own access token
	room   *db.Room
	roomID id.RoomID
}

func setUpDendrite(t testing.TB) *onDendrite {
	t.Helper()
	ctx := context.Background()
	// The homeserver pushes transactions to the appservice: answer them, nothing more.
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	}))
	t.Cleanup(as.Close)
	ms := &db.MatrixSettings{
		HomeserverDomain: "localhost", ASToken: auth.RandomHex(32), HSToken: auth.RandomHex(32),
		SenderLocalpart: "waldur-bot", AppserviceURL: as.URL, Enabled: true,
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
	d := &onDendrite{ms: ms, hc: matrix.HTTPClient(3*time.Second, 10*time.Second)}
	d.hs = dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{regFile}, DataDir: memDir(t)})
	ms.HomeserverURL = d.hs.URL
	if got := matrix.ProvisionBot(ctx, ms, d.hc); got != db.BotOK {
		t.Fatalf("bot provisioning: %s", got)
	}
	if d.bot, err = matrix.Client(ms, d.hc, ""); err != nil {
		t.Fatal(err)
	}
	aliceID, token, err := d.hs.RegisterUser(ctx, "alice", "alice-password-1")
	if err != nil {
		t.Fatal(err)
	}
	if d.alice, err = mautrix.NewClient(d.hs.URL, id.UserID(aliceID), token); err != nil {
		t.Fatal(err)
	}
	created, err := d.bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Apollo", Invite: []id.UserID{id.UserID(aliceID)}})
	if err != nil {
		t.Fatal(err)
	}
	d.roomID = created.RoomID
	if _, err := d.alice.JoinRoomByID(ctx, d.roomID); err != nil {
		t.Fatal(err)
	}

	// The same in the store: alice, admin of the project whose active room it is.
	if d.store, err = db.Open(ctx, filepath.Join(t.TempDir(), "t.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.store.Close() })
	rules := db.ProfileRules{Domain: "localhost", BotLocalpart: "waldur-bot"}
	u, _, err := d.store.PutUser(ctx, db.DirectoryUser{Username: "alice", FullName: "Alice <Admin>", IsActive: true}, rules)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := d.store.PutProject(ctx, db.DirectoryProject{Name: "Apollo"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.store.PutRole(ctx, p.ID, db.RoleInput{UserUUID: u.UUID, Role: db.RoleAdmin}, rules); err != nil {
		t.Fatal(err)
	}
	r, err := d.store.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.store.SetRoomHomeserverID(ctx, r.ID, d.roomID, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := d.store.FinishRoomSync(ctx, r.ID, "Apollo"); err != nil {
		t.Fatal(err)
	}
	// As the provisioning worker records a sync: alice joined, at power level 50.
	if err := d.store.SaveMembers(ctx, r.ID, []db.MemberSync{{UserID: u.ID, Membership: "join", PowerLevel: 50}}, nil); err != nil {
		t.Fatal(err)
	}
	if d.room, err = d.store.RoomByID(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	d.rec = d.store.NewRecorder(16)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.rec.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// addRoom creates another room of the bot with alice in it, mirrored in the store.
func (d *onDendrite) addRoom(t testing.TB, name string) *db.Room {
	t.Helper()
	ctx := context.Background()
	created, err := d.bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: name, Invite: []id.UserID{d.alice.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.alice.JoinRoomByID(ctx, created.RoomID); err != nil {
		t.Fatal(err)
	}
	p, _, err := d.store.PutProject(ctx, db.DirectoryProject{Name: name}, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.store.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.store.SetRoomHomeserverID(ctx, r.ID, created.RoomID, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := d.store.FinishRoomSync(ctx, r.ID, name); err != nil {
		t.Fatal(err)
	}
	if r, err = d.store.RoomByID(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	return r
}

// memDir is a folder in memory when there is one (Dendrite's SQLite is quicker there).
func memDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "matrixas-bot-test-")
	if err != nil {
		return ""
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (d *onDendrite) roomIO() *matrix.BotRoomIO {
	return matrix.NewBotRoomIO(func(context.Context) (*db.MatrixSettings, error) { return d.ms, nil }, d.hc)
}

// sender runs a Sender with the real RoomIO and Bot until the test ends.
func (d *onDendrite) sender(t testing.TB, opts bot.SenderOptions) *bot.Sender {
	t.Helper()
	return d.senderWith(t, d.roomIO(), opts)
}

// senderWith runs a Sender with the real Bot over io until the test ends.
func (d *onDendrite) senderWith(t testing.TB, io matrix.RoomIO, opts bot.SenderOptions) *bot.Sender {
	t.Helper()
	b := bot.New(bot.Config{Directory: d.store, Self: func(context.Context) (id.UserID, string) {
		return id.UserID(d.ms.BotUserID()), matrix.BotName(d.ms)
	}})
	opts.BotUserID = func(context.Context) id.UserID { return id.UserID(d.ms.BotUserID()) }
	s := bot.NewSender(d.store, io, b, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// timeline reads the room's m.room.message events as alice sees them, oldest first.
func (d *onDendrite) timeline(t testing.TB, roomID id.RoomID) []*event.Event {
	t.Helper()
	var out []*event.Event
	from := ""
	for {
		resp, err := d.alice.Messages(context.Background(), roomID, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, evt := range resp.Chunk {
			if evt.Type == event.EventMessage {
				evt.Content.ParseRaw(evt.Type)
				out = append(out, evt)
			}
		}
		if len(resp.Chunk) == 0 || resp.End == "" || resp.End == from {
			break
		}
		from = resp.End
	}
	slices.Reverse(out)
	return out
}

func (d *onDendrite) fromBot(t testing.TB, roomID id.RoomID) []*event.Event {
	t.Helper()
	var out []*event.Event
	for _, evt := range d.timeline(t, roomID) {
		if evt.Sender == id.UserID(d.ms.BotUserID()) {
			out = append(out, evt)
		}
	}
	return out
}

// fromBotWhen reads the bot's messages once ready says the timeline shows what the test
// waits for: Dendrite's /messages catches up with a send a moment after it returned.
func (d *onDendrite) fromBotWhen(t testing.TB, roomID id.RoomID, ready func([]*event.Event) bool) []*event.Event {
	t.Helper()
	var got []*event.Event
	waitUntil(t, "the room's timeline to show the messages", func() bool {
		got = d.fromBot(t, roomID)
		return ready(got)
	})
	return got
}

// holds is a fromBotWhen condition: the timeline has the event.
func holds(eventID id.EventID) func([]*event.Event) bool {
	return func(evts []*event.Event) bool {
		return slices.ContainsFunc(evts, func(e *event.Event) bool { return e.ID == eventID })
	}
}

// atLeast is a fromBotWhen condition: the timeline has n messages of the bot.
func atLeast(n int) func([]*event.Event) bool {
	return func(evts []*event.Event) bool { return len(evts) >= n }
}

func (d *onDendrite) say(t *testing.T, text string) id.EventID {
	t.Helper()
	resp, err := d.alice.SendText(context.Background(), d.roomID, text)
	if err != nil {
		t.Fatal(err)
	}
	return resp.EventID
}

var txnN atomic.Int64

// deliver queues commands as the webhook will: in a recorded transaction.
func (d *onDendrite) deliver(t testing.TB, cmds ...db.CommandEvent) db.TxnResult {
	t.Helper()
	res, err := d.rec.Record(context.Background(), db.TxnRecord{TxnID: fmt.Sprintf("hs-txn-%d", txnN.Add(1)), EventCount: len(cmds),
		Commands: cmds, BotUserID: d.ms.BotUserID()})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *onDendrite) pending(t testing.TB) int {
	t.Helper()
	st, err := d.store.OutboxStats(context.Background(), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

// TestBotOnDendrite: the outbox against a real homeserver, in steps that share one
// Dendrite.
func TestBotOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	d := setUpDendrite(t)
	ctx := context.Background()
	io := d.roomIO()

	// What the crash-safety design leans on: the homeserver answers a repeated
	// transaction id of the same sender with the first event instead of posting again.
	t.Run("a repeated transaction id posts once", func(t *testing.T) {
		first, err := io.Send(ctx, d.roomID, "dedup-1", bot.Render("once"))
		if err != nil {
			t.Fatal(err)
		}
		again, err := io.Send(ctx, d.roomID, "dedup-1", bot.Render("once, sent again"))
		if err != nil {
			t.Fatal(err)
		}
		other, err := io.Send(ctx, d.roomID, "dedup-2", bot.Render("another"))
		if err != nil {
			t.Fatal(err)
		}
		if again != first || other == first {
			t.Fatalf("events %s, %s (same txn id), %s (another): want the first two equal", first, again, other)
		}
		var bodies []string
		for _, evt := range d.fromBotWhen(t, d.roomID, holds(other)) {
			bodies = append(bodies, evt.Content.AsMessage().Body)
			if evt.ID == first && matrix.SentTxnID(evt) != "dedup-1" {
				t.Errorf("the event carries txn id %q, want dedup-1", matrix.SentTxnID(evt))
			}
		}
		if fmt.Sprint(bodies) != "[once another]" {
			t.Fatalf("the bot posted %q", bodies)
		}
	})

	// Dendrite keys its memory of transaction ids on the access token (and the path), not
	// the user: a user the appservice masquerades as shares the bot's, as_token. Harmless
	// here (the bot sends as itself, with ids no one else uses), noted for the design.
	t.Run("transaction ids are scoped to the as_token, not the user", func(t *testing.T) {
		first, err := io.Send(ctx, d.roomID, "scope-1", bot.Render("as the bot"))
		if err != nil {
			t.Fatal(err)
		}
		asAlice, err := matrix.Client(d.ms, d.hc, d.alice.UserID)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := asAlice.SendMessageEvent(ctx, d.roomID, event.EventMessage, bot.Render("as alice"), mautrix.ReqSendEvent{TransactionID: "scope-1"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.EventID != first {
			t.Errorf("masquerading with the same txn id posted %s (the bot's event: %s): the scope is per user after all", resp.EventID, first)
		}
		own, err := d.alice.SendMessageEvent(ctx, d.roomID, event.EventMessage, bot.Render("alice, own token"), mautrix.ReqSendEvent{TransactionID: "scope-1"})
		if err != nil {
			t.Fatal(err)
		}
		if own.EventID == first {
			t.Error("alice's own token shares the bot's transaction ids")
		}
	})

	t.Run("commands are answered, threaded, with HTML; a burst arrives exactly once", func(t *testing.T) {
		before := len(d.fromBot(t, d.roomID))
		help := d.say(t, "!help")
		members := d.say(t, "!members")
		unknown := d.say(t, "!frobnicate now")
		cmds := []db.CommandEvent{
			{EventID: help, RoomID: d.roomID, Sender: d.alice.UserID, Body: "!help", MsgType: "m.text"},
			{EventID: members, RoomID: d.roomID, Sender: d.alice.UserID, Body: "!members", MsgType: "m.text"},
			{EventID: unknown, RoomID: d.roomID, Sender: d.alice.UserID, Body: "!frobnicate now", MsgType: "m.text"},
		}
		if res := d.deliver(t, cmds...); res.Commands != 3 {
			t.Fatalf("%d commands queued", res.Commands)
		}
		// The same events again, in another transaction: no second reply.
		if res := d.deliver(t, cmds...); res.Commands != 0 {
			t.Fatalf("a redelivered command was queued again")
		}
		const burst = 40
		for i := range burst {
			if _, err := d.store.QueueNotification(ctx, d.room.ID, fmt.Sprintf("Notice **%d** for <%s>", i, "you")); err != nil {
				t.Fatal(err)
			}
		}
		s := d.sender(t, bot.SenderOptions{MaxInFlight: 4})
		s.Wake()
		waitUntil(t, "every message sent", func() bool { return d.pending(t) == 0 })

		got := d.fromBotWhen(t, d.roomID, atLeast(before+burst+3))[before:]
		if len(got) != burst+3 {
			t.Fatalf("%d new messages from the bot, want %d", len(got), burst+3)
		}
		stored := map[id.EventID]*db.OutboxMessage{}
		rows, _, err := d.store.ListOutbox(ctx, db.OutboxFilter{Page: db.Page{Size: db.MaxPageSize}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range rows {
			if m.State != db.OutboxSent {
				t.Errorf("row %s is %s (%s)", m.UUID, m.State, m.LastError)
			}
			stored[m.EventID] = m
		}
		seen := map[string]int{}
		replies := map[id.EventID]*event.MessageEventContent{}
		for i, evt := range got {
			c := evt.Content.AsMessage()
			seen[c.Body]++
			m := stored[evt.ID]
			if m == nil || matrix.SentTxnID(evt) != m.TxnID() {
				t.Errorf("event %s (%q) has no row with its transaction id", evt.ID, c.Body)
				continue
			}
			if c.MsgType != event.MsgText || c.Format != event.FormatHTML || c.FormattedBody == "" {
				t.Errorf("event %s: %+v", evt.ID, c)
			}
			if i < burst {
				// Notifications first, in the order queued.
				if want := fmt.Sprintf("Notice **%d** for <%s>", i, "you"); c.Body != want {
					t.Errorf("message %d: %q, want %q", i, c.Body, want)
				}
				if want := fmt.Sprintf("Notice <strong>%d</strong> for &lt;you&gt;", i); c.FormattedBody != want {
					t.Errorf("message %d HTML: %q, want %q", i, c.FormattedBody, want)
				}
				continue
			}
			if c.RelatesTo == nil || c.RelatesTo.InReplyTo == nil {
				t.Errorf("reply %q has no in_reply_to", c.Body)
				continue
			}
			replies[c.RelatesTo.InReplyTo.EventID] = c
		}
		for body, n := range seen {
			if n != 1 {
				t.Errorf("%q arrived %d times", body, n)
			}
		}
		if c := replies[help]; c == nil || c.Body != bot.HelpText || !strings.Contains(c.FormattedBody, "<code>!status</code>") {
			t.Errorf("reply to !help: %+v", c)
		}
		wantMembers := "**Apollo**: members\n\n- Waldur Bot (@waldur-bot:localhost): admin\n- Alice \\<Admin\\> (@alice:localhost): admin"
		if c := replies[members]; c == nil || c.Body != wantMembers || !strings.Contains(c.FormattedBody, "Alice &lt;Admin&gt; (@alice:localhost): admin") {
			t.Errorf("reply to !members: %+v", c)
		}
		if c := replies[unknown]; c == nil || !strings.HasPrefix(c.Body, "Unknown command: `!frobnicate`") {
			t.Errorf("reply to an unknown command: %+v", c)
		}
	})

	t.Run("a stranger gets the refusal", func(t *testing.T) {
		before := len(d.fromBot(t, d.roomID))
		cmd := d.say(t, "!status")
		// alice's message, but as someone the directory does not know.
		if res := d.deliver(t, db.CommandEvent{EventID: cmd, RoomID: d.roomID, Sender: "@stranger:localhost", Body: "!status", MsgType: "m.text"}); res.Commands != 1 {
			t.Fatal("not queued")
		}
		d.sender(t, bot.SenderOptions{}).Wake()
		waitUntil(t, "the refusal", func() bool { return d.pending(t) == 0 })
		got := d.fromBotWhen(t, d.roomID, atLeast(before+1))[before:]
		if len(got) != 1 || got[0].Content.AsMessage().Body != bot.NoAccessText {
			t.Fatalf("got %d messages: %v", len(got), got)
		}
	})

	t.Run("a room the bot is not in fails at once", func(t *testing.T) {
		theirs, err := d.alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
		if err != nil {
			t.Fatal(err)
		}
		for _, room := range []id.RoomID{theirs.RoomID, "!unknown:localhost"} {
			_, err := io.Send(ctx, room, "outside", bot.Render("x"))
			if !bot.Permanent(err) {
				t.Errorf("sending into %s: %v, want a permanent error", room, err)
			}
			t.Logf("Dendrite, sending into %s: %s", room, matrix.Reason(err))
		}
	})

	// Dendrite keeps transaction ids in memory only: after a restart the same id posts
	// again. The Sender then finds the earlier send in the room's history instead.
	t.Run("after a homeserver restart, the history finds an earlier send", func(t *testing.T) {
		m, err := d.store.QueueNotification(ctx, d.room.ID, "sent before a double crash")
		if err != nil {
			t.Fatal(err)
		}
		// The process sent it and died before recording the outcome...
		if err := d.store.ClaimOutbox(ctx, []int64{m.ID}, time.Now()); err != nil {
			t.Fatal(err)
		}
		posted, err := io.Send(ctx, d.roomID, m.TxnID(), bot.Render(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		// ...and the homeserver restarted meanwhile.
		if err := d.hs.Restart(); err != nil {
			t.Fatal(err)
		}
		probe, err := io.Send(ctx, d.roomID, "dedup-1", bot.Render("after the restart"))
		if err != nil {
			t.Fatal(err)
		}
		for _, evt := range d.fromBot(t, d.roomID) {
			if evt.ID == probe && evt.Content.AsMessage().Body == "once" {
				t.Error("Dendrite remembered a transaction id across a restart (the history search is then only a second wall)")
			}
		}
		d.sender(t, bot.SenderOptions{}).Wake()
		waitUntil(t, "the row settled", func() bool { return d.pending(t) == 0 })
		got, err := d.store.OutboxByUUID(ctx, m.UUID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != db.OutboxSent || got.EventID != posted {
			t.Errorf("row %s with event %s, want sent as %s", got.State, got.EventID, posted)
		}
		n := 0
		for _, evt := range d.fromBot(t, d.roomID) {
			if evt.Content.AsMessage().Body == m.Body {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the message is in the room %d times", n)
		}
	})
}
