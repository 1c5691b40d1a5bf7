package bot

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
)

// Queue is the outbox as the Sender works it.
type Queue interface {
	DueOutbox(ctx context.Context, now time.Time, limit int, busy []int64) ([]*db.OutboxMessage, error)
	NextOutboxAttempt(ctx context.Context, after time.Time) (time.Time, bool, error)
	ClaimOutbox(ctx context.Context, ids []int64, until time.Time) error
	SetOutboxBody(ctx context.Context, id int64, body string) error
	MarkOutboxSent(ctx context.Context, id int64, eventID id.EventID, at time.Time) error
	RetryOutboxAt(ctx context.Context, id int64, at time.Time, reason string) error
	FailOutbox(ctx context.Context, id int64, reason string, at time.Time) error
	PruneOutbox(ctx context.Context, before time.Time) (int64, error)
}

var _ Queue = (*db.Store)(nil)

// Composer writes the Markdown of a command reply when the Sender first sends it.
type Composer interface {
	Reply(ctx context.Context, m *db.OutboxMessage) string
}

var _ Composer = (*Bot)(nil)

// Observer is told what the Sender does (metrics); its methods must not block.
type Observer interface {
	// OutboxSent: a message was posted; waited is the time since it was queued.
	OutboxSent(kind db.OutboxKind, waited time.Duration)
	// OutboxRetry: a send failed and will be tried again.
	OutboxRetry(kind db.OutboxKind, reason string)
	// OutboxFailed: a message was given up (state failed).
	OutboxFailed(kind db.OutboxKind, reason string)
}

// RetryDelays are the waits after each failed send of a message; after the send that
// follows the last one fails, the message is failed: six attempts in all.
var RetryDelays = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute}

// MaxAttempts is how many sends a message gets before it is failed.
var MaxAttempts = len(RetryDelays) + 1

// RetryDelay is the wait after the attempts-th failed send, and false when that was the
// last attempt.
func RetryDelay(attempts int) (time.Duration, bool) {
	if attempts < 1 || attempts > len(RetryDelays) {
		return 0, false
	}
	return RetryDelays[attempts-1], true
}

// Permanent reports whether a send's error will not go away by trying again: the
// homeserver refused the request itself (a 4xx: the room is gone or unknown, the bot is
// not in it or may not post, the event is malformed or too large). Rate limits (429),
// an unknown token (401: a registration being reinstalled), timeouts, 5xx and network
// errors are worth retrying.
func Permanent(err error) bool {
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) || httpErr.Response == nil {
		return false
	}
	code := httpErr.Response.StatusCode
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests &&
		code != http.StatusUnauthorized && code != http.StatusRequestTimeout
}

// SenderOptions tune a Sender; zero values take the defaults.
type SenderOptions struct {
	// MaxInFlight bounds the sends under way at once (default 4). A room has at most one
	// under way, so its messages arrive in order; several rooms are served side by side.
	MaxInFlight int
	// Interval is the safety-net scan when nothing wakes the Sender (default 30s): new
	// rows wake it through Wake, retries through a timer set to the next one due.
	Interval time.Duration
	// SendTimeout bounds one send, history search included (default 30s).
	SendTimeout time.Duration
	// Retention is how long sent and failed messages are kept (default 7 days), pruned
	// every PruneEvery (default 1h).
	Retention  time.Duration
	PruneEvery time.Duration
	// HistoryPages bounds the search of a room's history for an earlier send of a
	// message whose outcome was lost (pages of 100 events, default 3).
	HistoryPages int
	// Ready reports whether sending is possible at all (the appservice is set up and
	// enabled); while it is not, nothing is sent and no attempt is spent. nil = always.
	Ready func(ctx context.Context) bool
	// BotUserID is the bot's Matrix ID: only its events count as an earlier send. nil
	// or "" = any sender's (the marker is a random per-message id nobody else knows).
	BotUserID func(ctx context.Context) id.UserID
	// Now is the clock (tests inject one); default time.Now.
	Now func() time.Time
	// OnSent is called after a message reached its final state (sent, or failed for
	// good) and that was recorded: whoever waits for a message (the provisioning
	// worker, before it kicks anyone from a room being disabled) looks again. nil = nobody.
	OnSent   func()
	Observer Observer
	Log      *slog.Logger
}

func (o *SenderOptions) defaults() {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 4
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = time.Hour
	}
	if o.HistoryPages <= 0 {
		o.HistoryPages = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Sender posts the outbox's pending messages through a RoomIO: notifications before
// replies, oldest first, at most MaxInFlight at once and one per room, each with a
// transaction id derived from its row. Run it once; Wake it after queueing.
//
// What makes a message go out exactly once:
//   - it is in the outbox before anyone is told it will be sent (the recorder's commit,
//     the directory write's), and leaves the pending state only once its outcome is
//     recorded: a crash before the send loses nothing;
//   - a claim (attempts + 1) is written before the send, so a row whose outcome was not
//     recorded is known to be possibly sent (db.OutboxMessage.MaybeSent); the claim is a
//     lease (SendTimeout and a margin), so after a crash the row is sent again only once
//     the send in flight has surely ended on the homeserver;
//   - every send of a row uses the same Matrix transaction id: a homeserver that still
//     remembers it answers with the first event instead of posting again;
//   - the message carries that id in its content (matrix.TxnIDKey), and before sending a
//     possibly-sent row again the Sender looks for it in the room's recent history, for
//     when the homeserver forgot the transaction id (Dendrite keeps them in memory for 30
//     to 60 minutes and loses them on a restart).
//
// A reply's text is composed when the row is first sent and stored before the send, so
// every attempt posts the same text.
type Sender struct {
	q       Queue
	io      matrix.RoomIO
	compose Composer
	opts    SenderOptions
	wake    chan struct{}
	beat    atomic.Int64 // unix nanoseconds of the loop's last turn
}

// NewSender returns a Sender posting q's messages through io, composing replies with c.
func NewSender(q Queue, io matrix.RoomIO, c Composer, opts SenderOptions) *Sender {
	opts.defaults()
	return &Sender{q: q, io: io, compose: c, opts: opts, wake: make(chan struct{}, 1)}
}

// Wake makes the Sender look for due messages now. It never blocks: wakes coalesce.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// LastBeat is when the Sender's loop last turned (zero before Run): it turns at least
// every Interval while running, so an older beat means it stopped or hangs.
func (s *Sender) LastBeat() time.Time {
	n := s.beat.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// outcome is what a send reports back to the loop.
type outcome struct {
	roomPK   int64
	storeErr bool // the outcome could not be recorded: slow down
}

// Run sends until ctx is cancelled, then waits for the sends under way. A send cut off by
// the cancellation leaves its row pending (and possibly sent), for the next start.
func (s *Sender) Run(ctx context.Context) {
	busy := map[int64]bool{} // rooms with a send under way
	done := make(chan outcome, s.opts.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastPrune time.Time
	var pauseUntil time.Time
	for {
		now := s.opts.Now()
		s.beat.Store(now.UnixNano())
		if now.Sub(lastPrune) >= s.opts.PruneEvery {
			lastPrune = now
			s.prune(ctx, now)
		}
		wait := s.opts.Interval
		if !now.Before(pauseUntil) {
			wait = s.fill(ctx, busy, done, &wg)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case o := <-done:
			delete(busy, o.roomPK)
			if o.storeErr {
				// The store refuses writes: do not spin on rows it cannot update.
				pauseUntil = s.opts.Now().Add(s.opts.Interval)
			}
		case <-timer.C:
		}
	}
}

func (s *Sender) prune(ctx context.Context, now time.Time) {
	n, err := s.q.PruneOutbox(ctx, now.Add(-s.opts.Retention))
	if err != nil {
		s.opts.Log.ErrorContext(ctx, "bot: prune the outbox", "error", err)
	} else if n > 0 {
		s.opts.Log.InfoContext(ctx, "bot: pruned the outbox", "messages", n)
	}
}

// fill starts sends of due messages in the free slots and returns how long the loop may
// sleep if nothing wakes it.
func (s *Sender) fill(ctx context.Context, busy map[int64]bool, done chan<- outcome, wg *sync.WaitGroup) time.Duration {
	if s.opts.Ready != nil && !s.opts.Ready(ctx) {
		return s.opts.Interval
	}
	now := s.opts.Now()
	for len(busy) < s.opts.MaxInFlight {
		free := s.opts.MaxInFlight - len(busy)
		rooms := make([]int64, 0, len(busy))
		for r := range busy {
			rooms = append(rooms, r)
		}
		rows, err := s.q.DueOutbox(ctx, now, free, rooms)
		if err != nil {
			s.opts.Log.ErrorContext(ctx, "bot: read the outbox", "error", err)
			return s.opts.Interval
		}
		var picked []*db.OutboxMessage
		var ids []int64
		for _, m := range rows {
			if busy[m.RoomPK] {
				continue // a second message of a room picked in this round: it waits its turn
			}
			busy[m.RoomPK] = true
			picked = append(picked, m)
			ids = append(ids, m.ID)
		}
		if len(picked) == 0 {
			break
		}
		// The lease outlasts a send (SendTimeout) by a margin: after a crash, a possibly
		// sent message is looked at again only once its send has surely ended.
		if err := s.q.ClaimOutbox(ctx, ids, s.opts.Now().Add(s.opts.SendTimeout+claimMargin)); err != nil {
			s.opts.Log.ErrorContext(ctx, "bot: claim outbox messages", "error", err)
			for _, m := range picked {
				delete(busy, m.RoomPK)
			}
			return s.opts.Interval
		}
		for _, m := range picked {
			// As it was before this claim; a reply never composed was never sent (its
			// text is stored before any send).
			maybeSent := m.MaybeSent() && m.Body != ""
			m.Attempts++
			wg.Add(1)
			go func() {
				defer wg.Done()
				done <- outcome{roomPK: m.RoomPK, storeErr: !s.deliver(ctx, m, maybeSent)}
			}()
		}
		if len(rows) < free {
			break // nothing more is due
		}
	}
	if len(busy) >= s.opts.MaxInFlight {
		return s.opts.Interval // a finished send wakes the loop
	}
	next, ok, err := s.q.NextOutboxAttempt(ctx, now)
	if err != nil || !ok {
		return s.opts.Interval
	}
	return min(max(next.Sub(now), 0), s.opts.Interval)
}

// deliver sends one claimed message and records the outcome. It reports false when the
// outcome could not be recorded.
func (s *Sender) deliver(ctx context.Context, m *db.OutboxMessage, maybeSent bool) bool {
	// Outcomes are recorded even when ctx ends meanwhile: a send that went through must
	// not be left looking unsent.
	store := context.WithoutCancel(ctx)
	sendCtx, cancel := context.WithTimeout(ctx, s.opts.SendTimeout)
	defer cancel()
	if m.Kind == db.OutboxReply && m.Body == "" {
		m.Body = s.compose.Reply(sendCtx, m)
		if ctx.Err() != nil {
			return true // stopping: composed again at the next start
		}
		if err := s.q.SetOutboxBody(store, m.ID, m.Body); err != nil {
			s.opts.Log.ErrorContext(ctx, "bot: store a reply's text", "message", m.UUID, "error", err)
			return false
		}
	}
	if maybeSent {
		eventID, err := s.findEarlierSend(sendCtx, m)
		if ctx.Err() != nil {
			return true
		}
		if err != nil {
			return s.failed(store, m, err)
		}
		if eventID != "" {
			s.opts.Log.InfoContext(ctx, "bot: an earlier send had arrived", "message", m.UUID, "event", eventID)
			return s.sent(store, m, eventID)
		}
	}
	content := Render(m.Body)
	if m.Kind == db.OutboxReply && m.CommandEventID != "" {
		ReplyTo(content, m.CommandEventID)
	}
	eventID, err := s.io.Send(sendCtx, m.RoomID, m.TxnID(), content)
	if err != nil {
		if ctx.Err() != nil {
			return true // stopping: the outcome is unknown and the row stays possibly sent
		}
		return s.failed(store, m, err)
	}
	return s.sent(store, m, eventID)
}

func (s *Sender) sent(ctx context.Context, m *db.OutboxMessage, eventID id.EventID) bool {
	now := s.opts.Now()
	if err := s.q.MarkOutboxSent(ctx, m.ID, eventID, now); err != nil {
		s.opts.Log.ErrorContext(ctx, "bot: record a sent message", "message", m.UUID, "event", eventID, "error", err)
		return false
	}
	if s.opts.OnSent != nil {
		s.opts.OnSent()
	}
	if s.opts.Observer != nil {
		s.opts.Observer.OutboxSent(m.Kind, now.Sub(m.CreatedAt))
	}
	return true
}

// failed records a failed send: retried after the next delay of the schedule, or failed
// for good when the schedule is spent or the error is permanent.
func (s *Sender) failed(ctx context.Context, m *db.OutboxMessage, sendErr error) bool {
	reason := matrix.Reason(sendErr)
	now := s.opts.Now()
	delay, again := RetryDelay(m.Attempts)
	if !again || Permanent(sendErr) {
		s.opts.Log.WarnContext(ctx, "bot: message failed", "message", m.UUID, "room", m.RoomID, "attempts", m.Attempts, "reason", reason)
		if err := s.q.FailOutbox(ctx, m.ID, reason, now); err != nil {
			s.opts.Log.ErrorContext(ctx, "bot: record a failed message", "message", m.UUID, "error", err)
			return false
		}
		if s.opts.OnSent != nil {
			s.opts.OnSent()
		}
		if s.opts.Observer != nil {
			s.opts.Observer.OutboxFailed(m.Kind, reason)
		}
		return true
	}
	s.opts.Log.InfoContext(ctx, "bot: send failed, will retry", "message", m.UUID, "room", m.RoomID, "attempts", m.Attempts, "in", delay, "reason", reason)
	if err := s.q.RetryOutboxAt(ctx, m.ID, now.Add(delay), reason); err != nil {
		s.opts.Log.ErrorContext(ctx, "bot: record a failed send", "message", m.UUID, "error", err)
		return false
	}
	if s.opts.Observer != nil {
		s.opts.Observer.OutboxRetry(m.Kind, reason)
	}
	return true
}

// claimMargin is how much longer than a send a claim lasts: the homeserver may still be
// handling a request whose client is gone, and its timeline shows an event a moment
// after it answers.
const claimMargin = 10 * time.Second

// historyPage is how many events each page of the history search reads.
const historyPage = 100

// findEarlierSend looks in the room's recent history for the message m posted by an
// earlier send, and returns its event id, "" when it is not there. The search stops at
// events older than the message (with a minute's leeway for clocks) or after
// HistoryPages pages.
func (s *Sender) findEarlierSend(ctx context.Context, m *db.OutboxMessage) (id.EventID, error) {
	var bot id.UserID
	if s.opts.BotUserID != nil {
		bot = s.opts.BotUserID(ctx)
	}
	txnID := m.TxnID()
	oldest := m.CreatedAt.Add(-time.Minute).UnixMilli()
	from := ""
	for range s.opts.HistoryPages {
		page, err := s.io.History(ctx, m.RoomID, from, historyPage)
		if err != nil {
			return "", err
		}
		for _, evt := range page.Events {
			if matrix.SentTxnID(evt) == txnID && (bot == "" || evt.Sender == bot) {
				return evt.ID, nil
			}
			if evt.Timestamp < oldest {
				return "", nil
			}
		}
		if page.End == "" {
			return "", nil
		}
		from = page.End
	}
	return "", nil
}
