package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/bot"
	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
	"matrixas/matrix"
)

// throughServer is the whole server (webhook, recorder, worker, sender) as the
// appservice of a real Dendrite, with projects and their rooms made through the API.
type throughServer struct {
	srv   *testserver.Server
	hs    *dendritetest.Server
	ms    *db.MatrixSettings
	hc    *http.Client
	rooms map[string]*db.Room // by project name, active
}

// setUpThroughServer starts the server, registers it on a fresh Dendrite, provisions
// the bot, and creates through the API the users and the projects (name -> username ->
// role), waiting until every room is active with its members joined.
func setUpThroughServer(t *testing.T, users []string, projects map[string]map[string]string) *throughServer {
	t.Helper()
	ctx := context.Background()
	srv := testserver.New(t)
	hs := srv.ConnectDendrite(t)
	ms, err := srv.Web.Settings().Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pb map[string]string
	if code := srv.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/provision-bot/", srv.StaffToken, "{}", &pb); code != http.StatusOK || pb["bot_provision_status"] != "ok" {
		t.Fatalf("provision-bot: %d %v", code, pb)
	}
	d := &throughServer{srv: srv, hs: hs, ms: ms, hc: matrix.HTTPClient(3*time.Second, 20*time.Second), rooms: map[string]*db.Room{}}
	uuids := map[string]string{}
	for _, u := range users {
		var out struct{ UUID string }
		if code := srv.JSON(t, http.MethodPost, "/api/users/", srv.StaffToken,
			map[string]any{"username": u, "full_name": strings.ToUpper(u[:1]) + u[1:], "is_active": true}, &out); code != http.StatusCreated {
			t.Fatalf("user %s: %d", u, code)
		}
		uuids[u] = out.UUID
	}
	roomUUIDs := map[string]string{}
	for name, members := range projects {
		var p, r struct{ UUID string }
		if code := srv.JSON(t, http.MethodPost, "/api/projects/", srv.StaffToken, map[string]any{"name": name}, &p); code != http.StatusCreated {
			t.Fatalf("project %s: %d", name, code)
		}
		var list []map[string]string
		for u, role := range members {
			list = append(list, map[string]string{"user": uuids[u], "role": role})
		}
		if code := srv.JSON(t, http.MethodPut, "/api/projects/"+p.UUID+"/members/", srv.StaffToken, list, nil); code != http.StatusOK {
			t.Fatalf("members of %s: %d", name, code)
		}
		if code := srv.JSON(t, http.MethodPost, "/api/matrix-rooms/", srv.StaffToken, map[string]string{"project": p.UUID}, &r); code != http.StatusCreated {
			t.Fatalf("room of %s: %d", name, code)
		}
		roomUUIDs[name] = r.UUID
	}
	waitUntil(t, "every room active with its members joined", func() bool {
		for name, uuid := range roomUUIDs {
			r, err := srv.Store.RoomByUUID(ctx, uuid)
			if err != nil {
				t.Fatal(err)
			}
			if r.State == db.RoomError {
				t.Fatalf("room of %s: %s", name, r.ErrorMessage)
			}
			members, err := srv.Store.RoomMembers(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range members {
				if m.Membership != "join" {
					return false
				}
			}
			if r.State != db.RoomActive || len(members) != len(projects[name]) {
				return false
			}
			d.rooms[name] = r
		}
		return true
	})
	return d
}

// as is a mautrix client acting as a user of the appservice's namespace.
func (d *throughServer) as(t *testing.T, user string) *mautrix.Client {
	t.Helper()
	c, err := matrix.Client(d.ms, d.hc, id.NewUserID(user, "localhost"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (d *throughServer) say(t *testing.T, c *mautrix.Client, room, text string) id.EventID {
	t.Helper()
	resp, err := c.SendText(context.Background(), d.rooms[room].RoomID, text)
	if err != nil {
		t.Fatal(err)
	}
	return resp.EventID
}

// botMessages reads the bot's messages in a project's room, oldest first, as reader sees them.
func (d *throughServer) botMessages(t *testing.T, reader *mautrix.Client, room string) []*event.Event {
	t.Helper()
	var out []*event.Event
	from := ""
	for {
		resp, err := reader.Messages(context.Background(), d.rooms[room].RoomID, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, evt := range resp.Chunk {
			if evt.Type == event.EventMessage && evt.Sender == d.ms.BotUserID() {
				evt.Content.ParseRaw(evt.Type)
				out = append([]*event.Event{evt}, out...)
			}
		}
		if len(resp.Chunk) == 0 || resp.End == "" || resp.End == from {
			return out
		}
		from = resp.End
	}
}

// find returns the event eventID of a project's room as reader sees it, nil when it is
// not in the timeline (yet).
func (d *throughServer) find(t *testing.T, reader *mautrix.Client, room string, eventID id.EventID) *event.Event {
	t.Helper()
	resp, err := reader.Messages(context.Background(), d.rooms[room].RoomID, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, evt := range resp.Chunk {
		if evt.ID == eventID {
			return evt
		}
	}
	return nil
}

// replies are the bot's messages in the room keyed by the event each replies to.
func (d *throughServer) replies(t *testing.T, reader *mautrix.Client, room string) map[id.EventID][]*event.MessageEventContent {
	t.Helper()
	out := map[id.EventID][]*event.MessageEventContent{}
	for _, evt := range d.botMessages(t, reader, room) {
		c := evt.Content.AsMessage()
		if c.RelatesTo != nil && c.RelatesTo.InReplyTo != nil {
			out[c.RelatesTo.InReplyTo.EventID] = append(out[c.RelatesTo.InReplyTo.EventID], c)
		}
	}
	return out
}

// waitReply waits until the bot replied to cmd in the room, and returns the reply.
func (d *throughServer) waitReply(t *testing.T, reader *mautrix.Client, room string, cmd id.EventID) *event.MessageEventContent {
	t.Helper()
	var got *event.MessageEventContent
	waitUntil(t, "the reply to "+string(cmd), func() bool {
		if rs := d.replies(t, reader, room)[cmd]; len(rs) > 0 {
			got = rs[0]
			return true
		}
		return false
	})
	return got
}

// TestBotThroughTheServer: members of a project talk to the bot in its room on a real
// Dendrite, which pushes their messages to this server's webhook; the replies come back
// through the outbox, threaded to each command, with their HTML. Someone in the room
// without a role is refused; a command delivered again (the same transaction, or the
// same event in another one) is answered once; the eleventh command of a minute in a
// room gets no answer; the messages API posts its Markdown rendered.
func TestBotThroughTheServer(t *testing.T) {
	dendritetest.Require(t)
	ctx := context.Background()
	// (The test server has a user "ann" of its own.)
	d := setUpThroughServer(t, []string{"ann", "ben"}, map[string]map[string]string{
		"Apollo":  {"ann": db.RoleAdmin, "ben": db.RoleMember},
		"Gemini":  {"ann": db.RoleAdmin},
		"Mercury": {"ann": db.RoleAdmin},
	})
	ann := d.as(t, "ann")

	t.Run("commands are answered, threaded, with HTML", func(t *testing.T) {
		help := d.say(t, ann, "Apollo", "!help")
		members := d.say(t, ann, "Apollo", "!members")
		status := d.say(t, ann, "Apollo", "  !STATUS please")
		unknown := d.say(t, ann, "Apollo", "!frobnicate now")
		plain := d.say(t, ann, "Apollo", "hello bot!")
		for cmd, want := range map[id.EventID]string{
			help:    bot.HelpText,
			members: "**Apollo**: members\n\n- Waldur Bot (@waldur-bot:localhost): admin\n- Ann (@ann:localhost): admin\n- Ben (@ben:localhost): member",
			status:  "**Apollo**\n\nRoom members: 2 joined, 0 invited.\n" + bot.NoPlatformText,
			unknown: "Unknown command: `!frobnicate`\n\n" + bot.HelpText,
		} {
			c := d.waitReply(t, ann, "Apollo", cmd)
			if c.Body != want {
				t.Errorf("reply to %s:\n got %q\nwant %q", cmd, c.Body, want)
			}
			if c.MsgType != event.MsgText || c.Format != event.FormatHTML || !strings.Contains(c.FormattedBody, "<") {
				t.Errorf("reply to %s is not m.text with HTML: %+v", cmd, c)
			}
		}
		if c := d.waitReply(t, ann, "Apollo", help); !strings.Contains(c.FormattedBody, "<code>!status</code>") {
			t.Errorf("!help's HTML: %q", c.FormattedBody)
		}
		if rs := d.replies(t, ann, "Apollo")[plain]; len(rs) != 0 {
			t.Errorf("a message that is no command was answered: %q", rs[0].Body)
		}
	})

	t.Run("someone in the room without a role is refused", func(t *testing.T) {
		eveID, token, err := d.hs.RegisterUser(ctx, "eve", "eve-password-1")
		if err != nil {
			t.Fatal(err)
		}
		eve, err := mautrix.NewClient(d.hs.URL, id.UserID(eveID), token)
		if err != nil {
			t.Fatal(err)
		}
		botClient, err := matrix.Client(d.ms, d.hc, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := botClient.InviteUser(ctx, d.rooms["Apollo"].RoomID, &mautrix.ReqInviteUser{UserID: eve.UserID}); err != nil {
			t.Fatal(err)
		}
		if _, err := eve.JoinRoomByID(ctx, d.rooms["Apollo"].RoomID); err != nil {
			t.Fatal(err)
		}
		cmd := d.say(t, eve, "Apollo", "!status")
		if c := d.waitReply(t, ann, "Apollo", cmd); c.Body != bot.NoAccessText {
			t.Errorf("reply to eve: %q", c.Body)
		}
	})

	t.Run("a command delivered again is answered once", func(t *testing.T) {
		cmd := d.say(t, ann, "Apollo", "!orders")
		var evt *event.Event
		waitUntil(t, "the command in the room's timeline", func() bool {
			evt = d.find(t, ann, "Apollo", cmd)
			return evt != nil
		})
		raw, err := json.Marshal(evt)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"events":[` + string(raw) + `]}`
		// As a homeserver retrying: the same transaction twice, then the event in another.
		for _, txn := range []string{"again-1", "again-1", "again-2"} {
			req, _ := http.NewRequest(http.MethodPut, d.srv.URL+"/_matrix/app/v1/transactions/"+txn, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+d.ms.HSToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT %s: %d", txn, resp.StatusCode)
			}
		}
		d.waitReply(t, ann, "Apollo", cmd)
		// Dendrite delivers in order: once a later command is answered, its own
		// delivery of !orders has been recorded too.
		d.waitReply(t, ann, "Mercury", d.say(t, ann, "Mercury", "!help"))
		waitUntil(t, "nothing pending", func() bool { return pendingThrough(t, d.srv) == 0 })
		if rs := d.replies(t, ann, "Apollo")[cmd]; len(rs) != 1 {
			t.Errorf("!orders, delivered three times, was answered %d times", len(rs))
		}
		if n := replyRows(t, d.srv, cmd); n != 1 {
			t.Errorf("%d outbox rows answer it", n)
		}
	})

	t.Run("eleven commands in a minute get ten replies", func(t *testing.T) {
		var cmds []id.EventID
		for i := range 11 {
			cmds = append(cmds, d.say(t, ann, "Gemini", fmt.Sprintf("!help %d", i)))
		}
		waitUntil(t, "ten replies", func() bool { return len(d.replies(t, ann, "Gemini")) >= 10 })
		d.waitReply(t, ann, "Mercury", d.say(t, ann, "Mercury", "!members")) // every command of Gemini recorded
		waitUntil(t, "nothing pending", func() bool { return pendingThrough(t, d.srv) == 0 })
		rs := d.replies(t, ann, "Gemini")
		answered := 0
		for _, cmd := range cmds {
			answered += len(rs[cmd])
		}
		if answered != 10 || len(d.botMessages(t, ann, "Gemini")) != 10 {
			t.Errorf("%d replies to the 11 commands (%d bot messages in the room), want 10", answered, len(d.botMessages(t, ann, "Gemini")))
		}
		if len(rs[cmds[10]]) != 0 {
			t.Error("the eleventh command was answered")
		}
	})

	t.Run("the messages API posts its Markdown rendered", func(t *testing.T) {
		var out struct{ UUID, State string }
		code := d.srv.JSON(t, http.MethodPost, "/api/matrix-rooms/"+d.rooms["Apollo"].UUID+"/messages/", d.srv.StaffToken,
			map[string]string{"body": "**Maintenance** tonight, <22:00> UTC:\n\n- save your work"}, &out)
		if code != http.StatusAccepted || out.State != "pending" {
			t.Fatalf("%d %+v", code, out)
		}
		var m *db.OutboxMessage
		waitUntil(t, "the message sent", func() bool {
			var err error
			m, err = d.srv.Store.OutboxByUUID(ctx, out.UUID)
			if err != nil {
				t.Fatal(err)
			}
			return m.State != db.OutboxPending
		})
		if m.State != db.OutboxSent {
			t.Fatalf("%s: %s", m.State, m.LastError)
		}
		ben := d.as(t, "ben")
		var got *event.MessageEventContent
		waitUntil(t, "the message in ben's timeline", func() bool {
			if evt := d.find(t, ben, "Apollo", m.EventID); evt != nil {
				evt.Content.ParseRaw(evt.Type)
				got = evt.Content.AsMessage()
			}
			return got != nil
		})
		want := "<p><strong>Maintenance</strong> tonight, &lt;22:00&gt; UTC:</p><ul><li>save your work</li></ul>"
		if got.Body != "**Maintenance** tonight, <22:00> UTC:\n\n- save your work" || got.Format != event.FormatHTML ||
			strings.ReplaceAll(got.FormattedBody, "\n", "") != want || got.RelatesTo != nil {
			t.Errorf("posted %+v;\nwant the HTML %q", got, want)
		}
	})
}

func pendingThrough(t *testing.T, srv *testserver.Server) int {
	t.Helper()
	st, err := srv.Store.OutboxStats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

// replyRows counts the outbox rows that answer the command cmd.
func replyRows(t *testing.T, srv *testserver.Server, cmd id.EventID) int {
	t.Helper()
	rows, _, err := srv.Store.ListOutbox(context.Background(), db.OutboxFilter{Page: db.Page{Size: db.MaxPageSize}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range rows {
		if m.CommandEventID == cmd {
			n++
		}
	}
	return n
}
