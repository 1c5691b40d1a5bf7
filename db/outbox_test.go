package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
)

const testBot = "@bot:example.org"

// activeRoom makes a project with an active room whose Matrix room is roomID.
func activeRoom(t *testing.T, s *Store, name string, roomID id.RoomID) *Room {
	t.Helper()
	ctx := context.Background()
	p, _, err := s.PutProject(ctx, DirectoryProject{Name: name}, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE matrix_rooms SET state = 'active', room_id = ?, members_dirty = 0 WHERE id = ?`, string(roomID), r.ID); err != nil {
		t.Fatal(err)
	}
	r, err = s.RoomByID(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func command(room id.RoomID, event string) CommandEvent {
	return CommandEvent{EventID: id.EventID(event), RoomID: room, Sender: "@alice:example.org", Body: "!help", MsgType: "m.text"}
}

func outboxRows(t *testing.T, s *Store) []*OutboxMessage {
	t.Helper()
	out, _, err := s.ListOutbox(context.Background(), OutboxFilter{Page: Page{Size: MaxPageSize}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRecorderQueuesCommands: commands are queued with the transaction that carries them,
// only where they are to be answered, once per event however often the event arrives.
func TestRecorderQueuesCommands(t *testing.T) {
	s := newStore(t)
	rec := runRecorder(t, s)
	ctx := context.Background()
	room := activeRoom(t, s, "P", "!p:example.org")
	archived := activeRoom(t, s, "Q", "!q:example.org")
	if _, err := s.w.ExecContext(ctx, `UPDATE matrix_rooms SET state = 'archived' WHERE id = ?`, archived.ID); err != nil {
		t.Fatal(err)
	}
	own := command("!p:example.org", "$own")
	own.Sender = testBot
	notice := command("!p:example.org", "$notice")
	notice.MsgType = "m.notice"
	tests := []struct {
		name     string
		commands []CommandEvent
		botUser  id.UserID
		want     int
	}{
		{"a command in an active managed room", []CommandEvent{command("!p:example.org", "$1")}, testBot, 1},
		{"the same event again, in another transaction", []CommandEvent{command("!p:example.org", "$1")}, testBot, 0},
		{"the same event twice in one transaction", []CommandEvent{command("!p:example.org", "$2"), command("!p:example.org", "$2")}, testBot, 1},
		{"a room this server does not manage", []CommandEvent{command("!other:example.org", "$3")}, testBot, 0},
		{"a room that is not active", []CommandEvent{command("!q:example.org", "$4")}, testBot, 0},
		{"the bot's own message", []CommandEvent{own}, testBot, 0},
		{"not m.text", []CommandEvent{notice}, testBot, 0},
		{"bot unknown: nothing is answered", []CommandEvent{command("!p:example.org", "$5")}, "", 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(outboxRows(t, s))
			res, err := rec.Record(ctx, TxnRecord{TxnID: fmt.Sprintf("c%d", i), EventCount: len(tt.commands), Commands: tt.commands, BotUserID: tt.botUser})
			if err != nil {
				t.Fatal(err)
			}
			got := len(outboxRows(t, s)) - before
			if res.Commands != tt.want || got != tt.want || res.CommandsDropped != 0 {
				t.Errorf("queued %d (result %d, dropped %d), want %d", got, res.Commands, res.CommandsDropped, tt.want)
			}
		})
	}
	// A repeated txnId is not processed at all, so its commands are not either.
	if res, err := rec.Record(ctx, TxnRecord{TxnID: "c0", Commands: []CommandEvent{command("!p:example.org", "$new")}, BotUserID: testBot}); err != nil || res.New || res.Commands != 0 {
		t.Errorf("repeated txnId: %+v, %v", res, err)
	}
	rows := outboxRows(t, s)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	r := rows[1] // oldest last
	if r.Kind != OutboxReply || r.State != OutboxPending || r.RoomPK != room.ID || r.RoomID != "!p:example.org" ||
		r.CommandEventID != "$1" || r.CommandSender != "@alice:example.org" || r.CommandBody != "!help" || r.Body != "" || r.UUID == "" {
		t.Errorf("queued reply %+v", r)
	}
}

// TestRecorderCommandsInOneBatch: the uniqueness holds when the same event arrives in two
// transactions committed together by the group commit.
func TestRecorderCommandsInOneBatch(t *testing.T) {
	s := newStore(t)
	activeRoom(t, s, "P", "!p:example.org")
	rec := s.NewRecorder(8)
	var batch []*txnReq
	for i := range 3 {
		batch = append(batch, &txnReq{rec: TxnRecord{TxnID: fmt.Sprintf("b%d", i), EventCount: 1,
			Commands: []CommandEvent{command("!p:example.org", "$same")}, BotUserID: testBot}, done: make(chan txnDone, 1)})
	}
	rec.write(batch)
	queued := 0
	for _, req := range batch {
		d := <-req.done
		if d.err != nil {
			t.Fatal(d.err)
		}
		queued += d.res.Commands
	}
	if n := len(outboxRows(t, s)); queued != 1 || n != 1 {
		t.Fatalf("queued %d, rows %d; want 1 and 1", queued, n)
	}
}

// TestCommandRateRule: a room gets at most ReplyRateLimit replies per minute; the
// commands past it are dropped (not recorded), other rooms are not affected, and replies
// older than the window do not count.
func TestCommandRateRule(t *testing.T) {
	s := newStore(t)
	rec := runRecorder(t, s)
	ctx := context.Background()
	busy := activeRoom(t, s, "Busy", "!busy:example.org")
	activeRoom(t, s, "Calm", "!calm:example.org")
	var cmds []CommandEvent
	for i := range ReplyRateLimit + 1 {
		cmds = append(cmds, command("!busy:example.org", fmt.Sprintf("$b%d", i)))
	}
	cmds = append(cmds, command("!calm:example.org", "$c0"))
	res, err := rec.Record(ctx, TxnRecord{TxnID: "burst", Commands: cmds, BotUserID: testBot})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commands != ReplyRateLimit+1 || res.CommandsDropped != 1 {
		t.Fatalf("queued %d dropped %d, want %d and 1", res.Commands, res.CommandsDropped, ReplyRateLimit+1)
	}
	busyRows, _, _ := s.ListOutbox(ctx, OutboxFilter{RoomUUID: busy.UUID})
	if len(busyRows) != ReplyRateLimit {
		t.Fatalf("busy room has %d replies, want %d", len(busyRows), ReplyRateLimit)
	}
	for _, r := range busyRows {
		if r.CommandEventID == "$b10" {
			t.Error("the 11th command was answered")
		}
	}
	// Notifications do not count against the rule.
	if _, err := s.QueueNotification(ctx, busy.ID, "hello"); err != nil {
		t.Fatal(err)
	}
	// Still within the minute: the next command is dropped too.
	res, _ = rec.Record(ctx, TxnRecord{TxnID: "late", Commands: []CommandEvent{command("!busy:example.org", "$b11")}, BotUserID: testBot})
	if res.Commands != 0 || res.CommandsDropped != 1 {
		t.Fatalf("within the window: queued %d dropped %d", res.Commands, res.CommandsDropped)
	}
	// A minute later the room is answered again; a dropped command delivered again is
	// answered then (it was not recorded).
	if _, err := s.w.ExecContext(ctx, `UPDATE bot_outbox SET created_at = created_at - 61`); err != nil {
		t.Fatal(err)
	}
	res, _ = rec.Record(ctx, TxnRecord{TxnID: "later", Commands: []CommandEvent{command("!busy:example.org", "$b10")}, BotUserID: testBot})
	if res.Commands != 1 || res.CommandsDropped != 0 {
		t.Fatalf("after the window: queued %d dropped %d", res.Commands, res.CommandsDropped)
	}
}

// TestRecorderWithoutCommandsUnchanged: a transaction without commands queues nothing
// (and the existing counters behave as before).
func TestRecorderWithoutCommandsUnchanged(t *testing.T) {
	s := newStore(t)
	rec := runRecorder(t, s)
	activeRoom(t, s, "P", "!p:example.org")
	res, err := rec.Record(context.Background(), TxnRecord{TxnID: "plain", EventCount: 5, BotUserID: testBot})
	if err != nil || !res.New || res.Commands != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := len(outboxRows(t, s)); n != 0 {
		t.Fatalf("%d outbox rows", n)
	}
}

// TestQueueNotificationInCallersTransaction: a notification commits or rolls back with
// the caller's transaction; a room without a Matrix room cannot be notified.
func TestQueueNotificationInCallersTransaction(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	room := activeRoom(t, s, "P", "!p:example.org")
	boom := errors.New("the directory write failed")
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.QueueNotificationTx(ctx, tx, room.ID, "rolled back"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if n := len(outboxRows(t, s)); n != 0 {
		t.Fatalf("%d rows after a rollback", n)
	}
	var uuid string
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		uuid, err = s.QueueProjectNotificationTx(ctx, tx, room.ProjectID, "**committed**")
		return err
	})
	if err != nil || uuid == "" {
		t.Fatalf("%q %v", uuid, err)
	}
	m, err := s.OutboxByUUID(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != OutboxNotification || m.State != OutboxPending || m.Body != "**committed**" || m.RoomID != "!p:example.org" ||
		m.RoomUUID != room.UUID || m.ProjectName != "P" || m.CommandEventID != "" {
		t.Errorf("%+v", m)
	}

	p, _, _ := s.PutProject(ctx, DirectoryProject{Name: "New"}, false)
	creating, err := s.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueueNotification(ctx, creating.ID, "x"); !errors.Is(err, ErrNoMatrixRoom) {
		t.Errorf("room not created yet: %v, want ErrNoMatrixRoom", err)
	}
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		uuid, err = s.QueueProjectNotificationTx(ctx, tx, p.ID, "x")
		return err
	})
	if err != nil || uuid != "" {
		t.Errorf("project without an active room: %q %v, want nothing queued", uuid, err)
	}
	if _, err := s.QueueNotification(ctx, 9999, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing room: %v", err)
	}
	if _, err := s.QueueNotification(ctx, room.ID, "  "); err == nil {
		t.Error("an empty notification was queued")
	}
	if _, err := s.QueueNotification(ctx, room.ID, strings.Repeat("x", MaxOutboxBody+1)); err == nil {
		t.Error("an oversized notification was queued")
	}
}

// TestQueueActiveRoomNotification: only an active room takes a message; any other
// state is refused with the state, and nothing is queued.
func TestQueueActiveRoomNotification(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	room := activeRoom(t, s, "P", "!p:example.org")
	m, err := s.QueueActiveRoomNotification(ctx, room.ID, "Hello **all**")
	if err != nil || m.State != OutboxPending || m.Kind != OutboxNotification || m.Body != "Hello **all**" || m.RoomUUID != room.UUID {
		t.Fatalf("%+v %v", m, err)
	}
	for _, st := range []RoomState{RoomDisabling, RoomArchived, RoomError} {
		if _, err := s.w.ExecContext(ctx, `UPDATE matrix_rooms SET state = ? WHERE id = ?`, string(st), room.ID); err != nil {
			t.Fatal(err)
		}
		var na *RoomNotActiveError
		if _, err := s.QueueActiveRoomNotification(ctx, room.ID, "x"); !errors.As(err, &na) || na.State != st {
			t.Errorf("room %s: %v, want RoomNotActiveError", st, err)
		}
	}
	if n := len(outboxRows(t, s)); n != 1 {
		t.Errorf("%d rows, want only the one for the active room", n)
	}
	if _, err := s.QueueActiveRoomNotification(ctx, 9999, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing room: %v", err)
	}
}

// TestOutboxQueueOrder: due messages come notifications first, then oldest first,
// bounded, without rooms that are busy and without messages not due yet.
func TestOutboxQueueOrder(t *testing.T) {
	s := newStore(t)
	rec := runRecorder(t, s)
	ctx := context.Background()
	a := activeRoom(t, s, "A", "!a:example.org")
	b := activeRoom(t, s, "B", "!b:example.org")
	if _, err := rec.Record(ctx, TxnRecord{TxnID: "t1", BotUserID: testBot,
		Commands: []CommandEvent{command("!a:example.org", "$r1"), command("!b:example.org", "$r2")}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct {
		room int64
		body string
	}{{b.ID, "n1"}, {a.ID, "n2"}} {
		if _, err := s.QueueNotification(ctx, n.room, n.body); err != nil {
			t.Fatal(err)
		}
	}
	n3, err := s.QueueNotification(ctx, a.ID, "n3")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.RetryOutboxAt(ctx, n3.ID, now.Add(time.Hour), "later"); err != nil {
		t.Fatal(err)
	}
	names := func(ms []*OutboxMessage) string {
		var out []string
		for _, m := range ms {
			if m.Body != "" {
				out = append(out, m.Body)
			} else {
				out = append(out, string(m.CommandEventID))
			}
		}
		return strings.Join(out, " ")
	}
	for _, tt := range []struct {
		limit int
		busy  []int64
		want  string
	}{
		{10, nil, "n1 n2 $r1 $r2"},
		{2, nil, "n1 n2"},
		{10, []int64{a.ID}, "n1 $r2"},
		{10, []int64{a.ID, b.ID}, ""},
	} {
		due, err := s.DueOutbox(ctx, now, tt.limit, tt.busy)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(due); got != tt.want {
			t.Errorf("limit %d busy %v: %q, want %q", tt.limit, tt.busy, got, tt.want)
		}
	}
	// The message put off comes due at its time.
	due, _ := s.DueOutbox(ctx, now.Add(time.Hour+time.Second), 10, nil)
	if got := names(due); got != "n1 n2 n3 $r1 $r2" {
		t.Errorf("an hour later: %q", got)
	}
	next, ok, err := s.NextOutboxAttempt(ctx, now)
	if d := next.Sub(now); err != nil || !ok || d < time.Hour || d > time.Hour+time.Second {
		t.Errorf("next attempt %v %v %v, want in an hour", next, ok, err)
	}
	if _, ok, err := s.NextOutboxAttempt(ctx, now.Add(2*time.Hour)); err != nil || ok {
		t.Errorf("nothing falls due after two hours: %v %v", ok, err)
	}
}

// TestOutboxLifecycle: claim, body, sent, retry, failed, staff retry, stats, prune.
func TestOutboxLifecycle(t *testing.T) {
	s := newStore(t)
	rec := runRecorder(t, s)
	ctx := context.Background()
	room := activeRoom(t, s, "P", "!p:example.org")
	if _, err := rec.Record(ctx, TxnRecord{TxnID: "t", BotUserID: testBot, Commands: []CommandEvent{command("!p:example.org", "$cmd")}}); err != nil {
		t.Fatal(err)
	}
	reply := outboxRows(t, s)[0]
	note, err := s.QueueNotification(ctx, room.ID, "note")
	if err != nil {
		t.Fatal(err)
	}
	if reply.MaybeSent() || note.MaybeSent() {
		t.Fatal("new rows count as possibly sent")
	}
	if reply.TxnID() == note.TxnID() || !strings.Contains(reply.TxnID(), reply.UUID) {
		t.Errorf("transaction ids %q %q", reply.TxnID(), note.TxnID())
	}
	if err := s.ClaimOutbox(ctx, []int64{reply.ID, note.ID}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOutboxBody(ctx, reply.ID, "the answer"); err != nil {
		t.Fatal(err)
	}
	get := func(uuid string) *OutboxMessage {
		m, err := s.OutboxByUUID(ctx, uuid)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := get(reply.UUID); m.Attempts != 1 || m.Body != "the answer" || !m.MaybeSent() {
		t.Errorf("claimed reply %+v", m)
	}
	sentAt := time.Now().Truncate(time.Second)
	if err := s.MarkOutboxSent(ctx, reply.ID, "$posted", sentAt); err != nil {
		t.Fatal(err)
	}
	if m := get(reply.UUID); m.State != OutboxSent || m.EventID != "$posted" || !m.SentAt.Equal(sentAt) {
		t.Errorf("sent reply %+v", m)
	}
	// A state change of a row that is no longer pending changes nothing.
	if err := s.FailOutbox(ctx, reply.ID, "late", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("fail a sent row: %v, want ErrNotFound", err)
	}
	if err := s.RetryOutboxAt(ctx, note.ID, time.Now().Add(5*time.Second), "M_UNKNOWN: boom"); err != nil {
		t.Fatal(err)
	}
	st, err := s.OutboxStats(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.Retrying != 1 || st.OldestPending.IsZero() || st.FailedSince != 0 {
		t.Errorf("stats %+v", st)
	}
	failedAt := time.Now().Truncate(time.Second)
	if err := s.FailOutbox(ctx, note.ID, "M_FORBIDDEN", failedAt); err != nil {
		t.Fatal(err)
	}
	if m := get(note.UUID); m.State != OutboxFailed || m.LastError != "M_FORBIDDEN" || !m.FailedAt.Equal(failedAt) {
		t.Errorf("failed note %+v", m)
	}
	st, _ = s.OutboxStats(ctx, time.Now().Add(-24*time.Hour))
	if st.Pending != 0 || !st.OldestPending.IsZero() || st.FailedSince != 1 || st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
	if st, _ := s.OutboxStats(ctx, time.Now().Add(time.Hour)); st.FailedSince != 0 {
		t.Errorf("failures since the future: %d", st.FailedSince)
	}
	// Staff retry: pending again, due at once, a new round; only from failed.
	if _, err := s.RetryOutbox(ctx, reply.UUID); !errors.Is(err, ErrConflict) {
		t.Errorf("retry a sent message: %v, want ErrConflict", err)
	}
	if _, err := s.RetryOutbox(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("retry a missing message: %v, want ErrNotFound", err)
	}
	m, err := s.RetryOutbox(ctx, note.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != OutboxPending || m.Attempts != 0 || !m.NextAttemptAt.IsZero() || !m.FailedAt.IsZero() || !m.MaybeSent() {
		t.Errorf("retried note %+v", m)
	}
	if err := s.FailOutbox(ctx, note.ID, "again", time.Now()); err != nil {
		t.Fatal(err)
	}

	if c, err := s.OutboxStateCounts(ctx); err != nil || c[OutboxPending] != 0 || c[OutboxSent] != 1 || c[OutboxFailed] != 1 {
		t.Errorf("counts by state %v %v, want 0 pending, 1 sent, 1 failed", c, err)
	}

	// The room's recent messages, newest first.
	recent, err := s.RoomOutbox(ctx, room.ID, 10)
	if err != nil || len(recent) != 2 || recent[0].UUID != note.UUID {
		t.Fatalf("recent %v %v", recent, err)
	}
	for _, f := range []struct {
		f    OutboxFilter
		want int
	}{
		{OutboxFilter{State: OutboxSent}, 1},
		{OutboxFilter{State: OutboxFailed}, 1},
		{OutboxFilter{State: OutboxPending}, 0},
		{OutboxFilter{RoomUUID: room.UUID}, 2},
		{OutboxFilter{RoomUUID: "other"}, 0},
		{OutboxFilter{Page: Page{Number: 2, Size: 1}}, 1},
	} {
		got, total, err := s.ListOutbox(ctx, f.f)
		if err != nil || len(got) != f.want {
			t.Errorf("list %+v: %d rows (total %d), %v; want %d", f.f, len(got), total, err, f.want)
		}
	}

	// Pruning removes sent and failed rows older than the cut-off, never pending ones.
	pending, _ := s.QueueNotification(ctx, room.ID, "still waiting")
	if _, err := s.w.ExecContext(ctx, `UPDATE bot_outbox SET created_at = created_at - 8*86400,
		sent_at = sent_at - 8*86400, failed_at = failed_at - 8*86400`); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneOutbox(ctx, time.Now().Add(-7*24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d (%v), want 2", n, err)
	}
	if rows := outboxRows(t, s); len(rows) != 1 || rows[0].UUID != pending.UUID {
		t.Fatalf("after pruning: %v", rows)
	}
}

// TestOutboxRoomDeleted: a room's messages go with the room record.
func TestOutboxRoomDeleted(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	room := activeRoom(t, s, "P", "!p:example.org")
	if _, err := s.QueueNotification(ctx, room.ID, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM matrix_rooms WHERE id = ?`, room.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(outboxRows(t, s)); n != 0 {
		t.Fatalf("%d rows left", n)
	}
}

// TestBotDirectory: the members the bot lists and who may ask it.
func TestBotDirectory(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	rules := ProfileRules{Domain: "example.org", BotLocalpart: "bot"}
	alice, _, _ := s.PutUser(ctx, DirectoryUser{Username: "alice", FullName: "Alice <b>A</b>", IsActive: true}, rules)
	bob, _, _ := s.PutUser(ctx, DirectoryUser{Username: "bob", IsActive: true}, rules)
	carol, _, _ := s.PutUser(ctx, DirectoryUser{Username: "carol", IsActive: true}, rules)
	dave, _, _ := s.PutUser(ctx, DirectoryUser{Username: "dave", IsActive: true}, rules)
	room := activeRoom(t, s, "P", "!p:example.org")
	if err := s.SetRoles(ctx, room.ProjectID, []RoleInput{{alice.UUID, RoleAdmin}, {bob.UUID, RoleMember}, {carol.UUID, RoleMember}}, rules); err != nil {
		t.Fatal(err)
	}
	// Synced: alice joined at 50, bob invited; dave lost his role but is still joined.
	for _, m := range []struct {
		user       int64
		membership string
		pl         int
	}{{alice.ID, "join", 50}, {bob.ID, "invite", 0}, {dave.ID, "join", 0}} {
		if _, err := s.w.ExecContext(ctx, `INSERT INTO matrix_room_members (room_pk, user_id, membership, power_level) VALUES (?, ?, ?, ?)`,
			room.ID, m.user, m.membership, m.pl); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetUserActive(ctx, carol.ID, false); err != nil {
		t.Fatal(err)
	}
	members, err := s.BotRoomMembers(ctx, room.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(members)
	want := "[{@alice:example.org Alice <b>A</b> 50 join} {@bob:example.org bob 0 invite} {@dave:example.org dave 0 join}]"
	if got != want {
		t.Errorf("members\n got %s\nwant %s", got, want)
	}
	for _, tt := range []struct {
		sender id.UserID
		want   string
	}{
		{"@alice:example.org", RoleAdmin},
		{"@bob:example.org", RoleMember},
		{"@carol:example.org", ""}, // deactivated
		{"@dave:example.org", ""},  // no role
		{"@nobody:example.org", ""},
	} {
		role, err := s.SenderProjectRole(ctx, room.ProjectID, tt.sender)
		if err != nil || role != tt.want {
			t.Errorf("%s: %q %v, want %q", tt.sender, role, err, tt.want)
		}
	}
}

// TestOutboxQueryPlans: the hot reads use their indexes, not a scan of the table.
func TestOutboxQueryPlans(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	plan := func(q string, args ...any) string {
		rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var a, b, c int
			var detail string
			rows.Scan(&a, &b, &c, &detail)
			out = append(out, detail)
		}
		return strings.Join(out, "; ")
	}
	for _, tt := range []struct {
		name, q string
		args    []any
		want    string
	}{
		{"command room", sqlCommandRoom, []any{"!r", 0, "$e"}, "matrix_rooms_room_id"},
		{"rate window", sqlCommandRoom, []any{"!r", 0, "$e"}, "bot_outbox_room"},
		{"due", `SELECT id FROM bot_outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= ? AND o.room_pk NOT IN (SELECT value FROM json_each(?)) ORDER BY o.kind, o.id LIMIT 5`,
			[]any{0, "[]"}, "bot_outbox_pending"},
	} {
		if got := plan(tt.q, tt.args...); !strings.Contains(got, tt.want) || strings.Contains(got, "SCAN m ") {
			t.Errorf("%s: plan %q, want %s", tt.name, got, tt.want)
		}
	}
}
