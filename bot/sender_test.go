package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
)

// fakeHomeserver is a RoomIO that keeps each room's timeline in memory. It remembers
// transaction ids like a homeserver does (unless forgetful), can fail or hold sends, and
// counts how many sends run at once.
type fakeHomeserver struct {
	mu         sync.Mutex
	timeline   map[id.RoomID][]*event.Event // oldest first
	txns       map[string]id.EventID
	forgetful  bool                                        // a restarted homeserver: no transaction ids remembered
	fail       func(roomID id.RoomID, n int) (bool, error) // n counts sends; true: the event is posted anyway
	hold       chan struct{}                               // when set, each send waits for a value (or its context)
	started    chan id.RoomID                              // when set, told of each send as it starts
	sends      int
	inflight   int
	maxFlight  int
	roomFlight map[id.RoomID]int
	maxPerRoom int
	nextID     int
}

var _ matrix.RoomIO = (*fakeHomeserver)(nil)

func newFakeHomeserver() *fakeHomeserver {
	return &fakeHomeserver{timeline: map[id.RoomID][]*event.Event{}, txns: map[string]id.EventID{}, roomFlight: map[id.RoomID]int{}}
}

func (f *fakeHomeserver) Send(ctx context.Context, roomID id.RoomID, txnID string, content *event.MessageEventContent) (id.EventID, error) {
	f.mu.Lock()
	f.sends++
	n := f.sends
	f.inflight++
	f.roomFlight[roomID]++
	f.maxFlight = max(f.maxFlight, f.inflight)
	f.maxPerRoom = max(f.maxPerRoom, f.roomFlight[roomID])
	hold, started := f.hold, f.started
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.roomFlight[roomID]--
		f.mu.Unlock()
	}()
	if started != nil {
		started <- roomID
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	post := true
	var err error
	if f.fail != nil {
		post, err = f.fail(roomID, n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.txns[txnID]; ok && !f.forgetful {
		return id, err
	}
	var eventID id.EventID
	if post {
		f.nextID++
		eventID = id.EventID(fmt.Sprintf("$e%d", f.nextID))
		f.txns[txnID] = eventID
		f.timeline[roomID] = append(f.timeline[roomID], &event.Event{
			ID: eventID, RoomID: roomID, Sender: botID, Type: event.EventMessage, Timestamp: time.Now().UnixMilli(),
			Content: event.Content{Parsed: content, Raw: map[string]any{matrix.TxnIDKey: txnID}},
		})
	}
	if err != nil {
		return "", err
	}
	return eventID, nil
}

func (f *fakeHomeserver) History(_ context.Context, roomID id.RoomID, from string, limit int) (*matrix.HistoryPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tl := f.timeline[roomID]
	page := &matrix.HistoryPage{}
	for i := len(tl) - 1; i >= 0; i-- {
		page.Events = append(page.Events, tl[i])
	}
	return page, nil
}

func (f *fakeHomeserver) Download(context.Context, id.ContentURI, int64) (io.ReadCloser, error) {
	return nil, errors.ErrUnsupported
}

// posted returns the messages in a room, oldest first.
func (f *fakeHomeserver) posted(room id.RoomID) []*event.MessageEventContent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*event.MessageEventContent
	for _, e := range f.timeline[room] {
		out = append(out, e.Content.Parsed.(*event.MessageEventContent))
	}
	return out
}

func (f *fakeHomeserver) stats() (sends, maxFlight, maxPerRoom int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sends, f.maxFlight, f.maxPerRoom
}

// httpError is what mautrix returns for a homeserver's error answer.
func httpError(code int, errcode string) error {
	return mautrix.HTTPError{Response: &http.Response{StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code))},
		RespError: &mautrix.RespError{ErrCode: errcode, StatusCode: code}}
}

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// events records what the Sender tells its observer, in order.
type events struct {
	mu  sync.Mutex
	log []string
	ch  chan string
}

func newEvents() *events { return &events{ch: make(chan string, 1000)} }

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
	e.ch <- s
}

func (e *events) OutboxSent(kind db.OutboxKind, _ time.Duration) { e.add("sent " + string(kind)) }
func (e *events) OutboxRetry(kind db.OutboxKind, reason string) {
	e.add("retry " + string(kind) + " " + reason)
}
func (e *events) OutboxFailed(kind db.OutboxKind, reason string) {
	e.add("failed " + string(kind) + " " + reason)
}

// next waits for the observer's next event; the deadline only turns a hang into a failure.
func (e *events) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-e.ch:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("the sender did nothing")
		return ""
	}
}

// fixture is a real store with managed rooms, a fake homeserver and the real Bot.
type fixture struct {
	store *db.Store
	rec   *db.Recorder
	hs    *fakeHomeserver
	clock *testClock
	obs   *events
	rooms []*db.Room
}

func newFixture(t *testing.T, rooms int) *fixture {
	t.Helper()
	ctx := context.Background()
	s, err := db.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// The clock starts on a whole second, as the store keeps times in seconds.
	f := &fixture{store: s, hs: newFakeHomeserver(), clock: &testClock{t: time.Now().Truncate(time.Second)}, obs: newEvents()}
	rules := db.ProfileRules{Domain: "example.org", BotLocalpart: "waldur-bot"}
	u, _, err := s.PutUser(ctx, db.DirectoryUser{Username: "alice", FullName: "Alice", IsActive: true}, rules)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rooms {
		p, _, err := s.PutProject(ctx, db.DirectoryProject{Name: fmt.Sprintf("Project %d", i)}, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutRole(ctx, p.ID, db.RoleInput{UserUUID: u.UUID, Role: db.RoleAdmin}, rules); err != nil {
			t.Fatal(err)
		}
		r, err := s.CreateRoom(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetRoomHomeserverID(ctx, r.ID, id.RoomID(fmt.Sprintf("!room%d:example.org", i)), "", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRoomSync(ctx, r.ID, p.Name); err != nil {
			t.Fatal(err)
		}
		if r, err = s.RoomByID(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		f.rooms = append(f.rooms, r)
	}
	f.rec = s.NewRecorder(16)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.rec.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

func (f *fixture) notify(t *testing.T, room int, body string) *db.OutboxMessage {
	t.Helper()
	m, err := f.store.QueueNotification(context.Background(), f.rooms[room].ID, body)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var txnSeq atomic.Int64

// command delivers a command in a transaction, as the webhook will.
func (f *fixture) command(t *testing.T, room int, eventID id.EventID, text string) {
	t.Helper()
	res, err := f.rec.Record(context.Background(), db.TxnRecord{TxnID: fmt.Sprintf("txn%d", txnSeq.Add(1)), EventCount: 1, BotUserID: botID,
		Commands: []db.CommandEvent{{EventID: eventID, RoomID: f.rooms[room].RoomID, Sender: "@alice:example.org", Body: text, MsgType: "m.text"}}})
	if err != nil || res.Commands != 1 {
		t.Fatalf("command not queued: %+v %v", res, err)
	}
}

// composer counts the replies the Bot composes.
type composer struct {
	b *Bot
	n atomic.Int64
}

func (c *composer) Reply(ctx context.Context, m *db.OutboxMessage) string {
	c.n.Add(1)
	return c.b.Reply(ctx, m)
}

func (f *fixture) sender(q Queue, opts SenderOptions) (*Sender, *composer) {
	c := &composer{b: New(Config{Directory: f.store, Self: func(context.Context) (id.UserID, string) { return botID, "Waldur bot" }})}
	opts.Now = f.clock.Now
	opts.Observer = f.obs
	opts.BotUserID = func(context.Context) id.UserID { return botID }
	if q == nil {
		q = f.store
	}
	return NewSender(q, f.hs, c, opts), c
}

// run runs s until the test ends (or stop is called) and waits for it to return.
func run(t *testing.T, s *Sender) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func (f *fixture) message(t *testing.T, uuid string) *db.OutboxMessage {
	t.Helper()
	m, err := f.store.OutboxByUUID(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fixture) all(t *testing.T) []*db.OutboxMessage {
	t.Helper()
	ms, _, err := f.store.ListOutbox(context.Background(), db.OutboxFilter{Page: db.Page{Size: db.MaxPageSize}})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestSenderDeliversEachOnceInOrder: notifications and replies reach their rooms once
// each, a room's notifications before its replies, replies threaded to their command.
func TestSenderDeliversEachOnceInOrder(t *testing.T) {
	f := newFixture(t, 2)
	f.command(t, 0, "$cmd1", "!help")
	f.notify(t, 0, "first **notice**")
	f.command(t, 0, "$cmd2", "!nosuch")
	f.notify(t, 1, "other room")
	f.notify(t, 0, "second notice")
	s, c := f.sender(nil, SenderOptions{MaxInFlight: 4})
	run(t, s)
	for range 5 {
		if e := f.obs.next(t); e[:4] != "sent" {
			t.Fatalf("observed %q", e)
		}
	}
	got := f.hs.posted(id.RoomID(f.rooms[0].RoomID))
	var bodies []string
	for _, m := range got {
		bodies = append(bodies, m.Body)
	}
	want := []string{"first **notice**", "second notice", HelpText, "Unknown command: `!nosuch`\n\n" + HelpText}
	if fmt.Sprint(bodies) != fmt.Sprint(want) {
		t.Fatalf("room 0 got\n%q\nwant\n%q", bodies, want)
	}
	if got[0].FormattedBody != "first <strong>notice</strong>" || got[0].Format != event.FormatHTML || got[0].RelatesTo != nil {
		t.Errorf("notification %+v", got[0])
	}
	for i, cmd := range []id.EventID{"$cmd1", "$cmd2"} {
		r := got[2+i]
		if r.RelatesTo == nil || r.RelatesTo.InReplyTo == nil || r.RelatesTo.InReplyTo.EventID != cmd || r.MsgType != event.MsgText {
			t.Errorf("reply %d relation %+v", i, r.RelatesTo)
		}
	}
	if n := len(f.hs.posted(id.RoomID(f.rooms[1].RoomID))); n != 1 {
		t.Errorf("room 1 has %d messages", n)
	}
	for _, m := range f.all(t) {
		if m.State != db.OutboxSent || m.EventID == "" || m.Attempts != 1 || m.Body == "" {
			t.Errorf("row %+v", m)
		}
	}
	if n := c.n.Load(); n != 2 {
		t.Errorf("%d replies composed, want 2", n)
	}
}

// TestSenderRetrySchedule: a send that keeps failing is retried after 5s, 30s, 2m, 10m
// and 30m, then failed with the reason; the reply's text is composed once.
func TestSenderRetrySchedule(t *testing.T) {
	f := newFixture(t, 1)
	f.hs.fail = func(id.RoomID, int) (bool, error) { return false, httpError(http.StatusBadGateway, "") }
	f.command(t, 0, "$cmd", "!help")
	uuid := f.all(t)[0].UUID
	s, c := f.sender(nil, SenderOptions{})
	run(t, s)
	for i, d := range RetryDelays {
		if e := f.obs.next(t); e != "retry reply HTTP 502 Bad Gateway" {
			t.Fatalf("attempt %d: observed %q", i+1, e)
		}
		m := f.message(t, uuid)
		if want := f.clock.Now().Add(d); m.Attempts != i+1 || !m.NextAttemptAt.Equal(want) ||
			m.State != db.OutboxPending || m.LastError != "HTTP 502 Bad Gateway" || m.Body != HelpText {
			t.Fatalf("after attempt %d: %+v, want next at %v", i+1, m, want)
		}
		if sends, _, _ := f.hs.stats(); sends != i+1 {
			t.Fatalf("%d sends after attempt %d", sends, i+1)
		}
		f.clock.Advance(d)
		s.Wake()
	}
	if e := f.obs.next(t); e != "failed reply HTTP 502 Bad Gateway" {
		t.Fatalf("observed %q", e)
	}
	m := f.message(t, uuid)
	if m.State != db.OutboxFailed || m.Attempts != MaxAttempts || m.LastError != "HTTP 502 Bad Gateway" || m.FailedAt.IsZero() {
		t.Errorf("%+v", m)
	}
	if sends, _, _ := f.hs.stats(); sends != MaxAttempts {
		t.Errorf("%d sends, want %d", sends, MaxAttempts)
	}
	if n := c.n.Load(); n != 1 {
		t.Errorf("the reply was composed %d times", n)
	}
}

func TestRetryDelay(t *testing.T) {
	want := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute}
	for i, w := range want {
		if d, ok := RetryDelay(i + 1); !ok || d != w {
			t.Errorf("after attempt %d: %v %v, want %v", i+1, d, ok, w)
		}
	}
	if _, ok := RetryDelay(6); ok || MaxAttempts != 6 {
		t.Errorf("a seventh attempt is allowed (MaxAttempts %d)", MaxAttempts)
	}
}

func TestPermanent(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{httpError(403, "M_FORBIDDEN"), true},
		{httpError(404, "M_NOT_FOUND"), true},
		{httpError(400, "M_UNSUPPORTED_ROOM_VERSION"), true}, // Dendrite, for a room it does not know
		{httpError(413, "M_TOO_LARGE"), true},
		{httpError(429, "M_LIMIT_EXCEEDED"), false},
		{httpError(401, "M_UNKNOWN_TOKEN"), false},
		{httpError(500, "M_UNKNOWN"), false},
		{httpError(502, ""), false},
		{context.DeadlineExceeded, false},
		{errors.New("connection refused"), false},
	} {
		if got := Permanent(tt.err); got != tt.want {
			t.Errorf("Permanent(%v) = %v", tt.err, got)
		}
	}
}

// TestSenderPermanentErrorFailsAtOnce: a room that refuses the bot fails the message on
// the first attempt, and the other room's message still goes.
func TestSenderPermanentErrorFailsAtOnce(t *testing.T) {
	f := newFixture(t, 2)
	gone := id.RoomID(f.rooms[0].RoomID)
	f.hs.fail = func(room id.RoomID, _ int) (bool, error) {
		if room == gone {
			return false, httpError(http.StatusForbidden, "M_FORBIDDEN")
		}
		return true, nil
	}
	bad := f.notify(t, 0, "into a room the bot left")
	f.notify(t, 1, "fine")
	s, _ := f.sender(nil, SenderOptions{})
	run(t, s)
	seen := map[string]bool{f.obs.next(t): true, f.obs.next(t): true}
	if !seen["failed notification M_FORBIDDEN"] || !seen["sent notification"] {
		t.Fatalf("observed %v", seen)
	}
	if m := f.message(t, bad.UUID); m.State != db.OutboxFailed || m.Attempts != 1 || m.LastError != "M_FORBIDDEN" {
		t.Errorf("%+v", m)
	}
}

// TestSenderOnSent: the hook hears of each message that reached a final state, sent or
// failed, after it was recorded (and before the observer); a send that will be retried
// is not final.
func TestSenderOnSent(t *testing.T) {
	f := newFixture(t, 3)
	f.hs.fail = func(room id.RoomID, _ int) (bool, error) {
		switch room {
		case f.rooms[0].RoomID:
			return false, httpError(http.StatusForbidden, "M_FORBIDDEN")
		case f.rooms[1].RoomID:
			return false, httpError(http.StatusBadGateway, "")
		}
		return true, nil
	}
	failed := f.notify(t, 0, "refused")
	f.notify(t, 1, "retried")
	sent := f.notify(t, 2, "posted")
	var hooked []string
	var mu sync.Mutex
	s, _ := f.sender(nil, SenderOptions{OnSent: func() {
		// By the time the hook runs, the outcome is in the store.
		var final []string
		for _, uuid := range []string{failed.UUID, sent.UUID} {
			if m := f.message(t, uuid); m.State != db.OutboxPending {
				final = append(final, string(m.State))
			}
		}
		mu.Lock()
		hooked = append(hooked, fmt.Sprint(len(final)))
		mu.Unlock()
	}})
	run(t, s)
	seen := map[string]bool{}
	for range 3 {
		seen[f.obs.next(t)] = true
	}
	if !seen["failed notification M_FORBIDDEN"] || !seen["sent notification"] || !seen["retry notification HTTP 502 Bad Gateway"] {
		t.Fatalf("observed %v", seen)
	}
	// The hook runs before the observer hears of the same outcome: by now every call
	// that will come has come.
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(hooked)
	if len(hooked) != 2 || hooked[0] == "0" || hooked[1] != "2" {
		t.Errorf("OnSent calls saw %v final rows: want two calls (not one for the retry), each after a final outcome was recorded", hooked)
	}
}

// TestSenderInFlightBound: at most MaxInFlight sends at once, one per room, while many
// more are due; each room's messages in the order they were queued.
func TestSenderInFlightBound(t *testing.T) {
	const rooms, perRoom, bound = 6, 3, 3
	const total = rooms * perRoom
	f := newFixture(t, rooms)
	for i := range total {
		f.notify(t, i%rooms, fmt.Sprintf("n%d", i))
	}
	f.hs.hold = make(chan struct{})
	s, _ := f.sender(nil, SenderOptions{MaxInFlight: bound})
	run(t, s)
	for round := 0; ; round++ {
		f.turn(t, s)
		if round == 0 {
			// Every send is held: the Sender filled its slots and started no more.
			if sends, _, _ := f.hs.stats(); sends != bound {
				t.Fatalf("%d sends started at once, want %d", sends, bound)
			}
		}
		if f.count(t, db.OutboxSent) == total {
			break
		}
		for range bound {
			select {
			case f.hs.hold <- struct{}{}: // one held send may finish
			default:
			}
		}
	}
	sends, maxFlight, maxPerRoom := f.hs.stats()
	if sends != total || maxFlight != bound || maxPerRoom != 1 {
		t.Errorf("sends %d, at most %d at once (want %d), at most %d per room (want 1)", sends, maxFlight, bound, maxPerRoom)
	}
	for r := range rooms {
		var got []string
		for _, m := range f.hs.posted(id.RoomID(f.rooms[r].RoomID)) {
			got = append(got, m.Body)
		}
		want := fmt.Sprint([]string{fmt.Sprintf("n%d", r), fmt.Sprintf("n%d", r+rooms), fmt.Sprintf("n%d", r+2*rooms)})
		if fmt.Sprint(got) != want {
			t.Errorf("room %d: %v, want %v", r, got, want)
		}
	}
}

// lossyQueue is the store, except that recording a send's success fails the first
// time: what a crash between the send and the store's update leaves behind.
type lossyQueue struct {
	*db.Store
	lost atomic.Int64
}

func (q *lossyQueue) MarkOutboxSent(ctx context.Context, id int64, eventID id.EventID, at time.Time) error {
	if q.lost.Add(1) == 1 {
		return errors.New("disk I/O error")
	}
	return q.Store.MarkOutboxSent(ctx, id, eventID, at)
}

// TestSenderLostOutcomeNotPostedTwice: a send whose success was not recorded is not
// posted again, whether the homeserver still remembers the transaction id or not (the
// message is found in the room's history).
func TestSenderLostOutcomeNotPostedTwice(t *testing.T) {
	for _, forgetful := range []bool{false, true} {
		t.Run(fmt.Sprintf("homeserver forgot the transaction: %v", forgetful), func(t *testing.T) {
			f := newFixture(t, 1)
			f.hs.forgetful = forgetful
			m := f.notify(t, 0, "exactly once")
			q := &lossyQueue{Store: f.store}
			s, _ := f.sender(q, SenderOptions{Interval: time.Minute})
			run(t, s)
			// The first outcome is lost: the row stays pending, possibly sent, and the
			// Sender pauses for an Interval after the store's failure.
			waitFor(t, func() bool { return q.lost.Load() >= 1 })
			waitFor(t, func() bool {
				f.clock.Advance(time.Minute)
				s.Wake()
				return f.count(t, db.OutboxSent) == 1
			})
			if n := len(f.hs.posted(id.RoomID(f.rooms[0].RoomID))); n != 1 {
				t.Fatalf("%d messages in the room, want 1", n)
			}
			got := f.message(t, m.UUID)
			if got.State != db.OutboxSent || got.EventID != "$e1" || got.Attempts != 2 {
				t.Errorf("%+v", got)
			}
		})
	}
}

// TestSenderStoppedMidSend: a sender stopped while a send is under way (the homeserver
// posts it, the answer never comes) leaves the row pending; the next sender finds the
// message in the room and does not post it again, though the homeserver forgot the
// transaction id (it restarted too).
func TestSenderStoppedMidSend(t *testing.T) {
	f := newFixture(t, 1)
	f.hs.started = make(chan id.RoomID, 1)
	f.hs.hold = make(chan struct{})
	f.command(t, 0, "$cmd", "!help")
	uuid := f.all(t)[0].UUID
	s, c := f.sender(nil, SenderOptions{})
	stop := run(t, s)
	<-f.hs.started
	stop()
	f.hs.mu.Lock()
	f.hs.hold, f.hs.started, f.hs.forgetful = nil, nil, true
	f.hs.mu.Unlock()
	if m := f.message(t, uuid); m.State != db.OutboxPending || m.Attempts != 1 || m.Body != HelpText {
		t.Fatalf("after the stop: %+v", m)
	}
	// The homeserver had taken the event when the sender went (the fake gave up on the
	// cancellation before posting: post it as the homeserver would have).
	if _, err := f.hs.Send(context.Background(), id.RoomID(f.rooms[0].RoomID), (&db.OutboxMessage{UUID: uuid}).TxnID(), ReplyTo(Render(HelpText), "$cmd")); err != nil {
		t.Fatal(err)
	}
	// A sender started while the claim's lease runs leaves the message alone: the send in
	// flight may still be arriving on the homeserver.
	before, _, _ := f.hs.stats()
	early, _ := f.sender(nil, SenderOptions{})
	stopEarly := run(t, early)
	f.turn(t, early)
	stopEarly()
	if got, _, _ := f.hs.stats(); got != before {
		t.Fatalf("%d sends while the claim's lease ran", got-before)
	}
	if m := f.message(t, uuid); m.State != db.OutboxPending || m.Attempts != 1 {
		t.Fatalf("touched while the claim's lease ran: %+v", m)
	}
	// Once the lease is over (SendTimeout and a margin), the next sender finds the
	// earlier send instead of posting again.
	f.clock.Advance(30*time.Second + claimMargin) // the default SendTimeout
	s2, c2 := f.sender(nil, SenderOptions{})
	run(t, s2)
	if e := f.obs.next(t); e != "sent reply" {
		t.Fatalf("observed %q", e)
	}
	if n := len(f.hs.posted(id.RoomID(f.rooms[0].RoomID))); n != 1 {
		t.Fatalf("%d messages in the room, want 1", n)
	}
	if n := c.n.Load() + c2.n.Load(); n != 1 {
		t.Errorf("composed %d times, want 1", n)
	}
}

// TestSenderNotReady: while sending is not possible nothing is sent and no attempt is
// spent; once it is, the Sender catches up.
func TestSenderNotReady(t *testing.T) {
	f := newFixture(t, 1)
	m := f.notify(t, 0, "wait for setup")
	var ready atomic.Bool
	s, _ := f.sender(nil, SenderOptions{Ready: func(context.Context) bool { return ready.Load() }})
	run(t, s)
	f.turn(t, s)
	if got, _, _ := f.hs.stats(); got != 0 {
		t.Fatalf("%d sends while not ready", got)
	}
	if got := f.message(t, m.UUID); got.Attempts != 0 || got.State != db.OutboxPending {
		t.Fatalf("%+v", got)
	}
	ready.Store(true)
	s.Wake()
	if e := f.obs.next(t); e != "sent notification" {
		t.Fatalf("observed %q", e)
	}
}

// pruneQueue records the prune calls.
type pruneQueue struct {
	*db.Store
	before chan time.Time
}

func (q *pruneQueue) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	q.before <- before
	return q.Store.PruneOutbox(ctx, before)
}

// TestSenderPrunes: sent and failed messages are pruned after the retention, at start
// and every PruneEvery.
func TestSenderPrunes(t *testing.T) {
	f := newFixture(t, 1)
	q := &pruneQueue{Store: f.store, before: make(chan time.Time, 10)}
	s, _ := f.sender(q, SenderOptions{})
	start := f.clock.Now()
	run(t, s)
	if got := <-q.before; !got.Equal(start.Add(-7 * 24 * time.Hour)) {
		t.Errorf("pruned before %v, want 7 days before %v", got, start)
	}
	f.clock.Advance(time.Hour)
	s.Wake()
	if got := <-q.before; !got.Equal(start.Add(time.Hour - 7*24*time.Hour)) {
		t.Errorf("pruned before %v", got)
	}
}

// turn returns once the Sender's loop has gone round twice after the call: a fill begun
// before has finished. Each round moves the clock by a millisecond.
func (f *fixture) turn(t *testing.T, s *Sender) {
	t.Helper()
	for range 2 {
		f.clock.Advance(time.Millisecond)
		at := f.clock.Now()
		s.Wake()
		waitFor(t, func() bool { return !s.LastBeat().Before(at) })
	}
}

// count counts the outbox's messages in a state.
func (f *fixture) count(t *testing.T, state db.OutboxState) int {
	t.Helper()
	_, n, err := f.store.ListOutbox(context.Background(), db.OutboxFilter{State: state})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
