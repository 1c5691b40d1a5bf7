package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"maunium.net/go/mautrix/id"
)

// The bot's outbox is one table for every message the bot posts: command replies and
// notifications. A row is written in the same transaction as what causes it (a recorded
// homeserver transaction, a directory write), so a message is never lost once its cause
// is committed; the sender (package bot) works the pending rows and records each outcome.
//
// attempts counts the sends begun in the current round: the sender claims rows (attempts
// + 1) before it sends them, so a pending row with attempts > 0 may already be in the
// room (the process died before recording the outcome, or a send timed out after the
// homeserver took it). OutboxMessage.MaybeSent says so.

// OutboxKind is what an outbox message is: a command reply or a notification.
type OutboxKind string

// Outbox message kinds.
const (
	OutboxNotification OutboxKind = "notification"
	OutboxReply        OutboxKind = "reply"
)

// OutboxState is where an outbox message is in its life.
type OutboxState string

// Outbox message states.
const (
	OutboxPending OutboxState = "pending"
	OutboxSent    OutboxState = "sent"
	OutboxFailed  OutboxState = "failed"
)

// OutboxStates lists the states in display order.
var OutboxStates = []OutboxState{OutboxPending, OutboxSent, OutboxFailed}

// Valid reports whether s is one of the outbox states.
func (s OutboxState) Valid() bool {
	return s == OutboxPending || s == OutboxSent || s == OutboxFailed
}

// Outbox rules.
const (
	// ReplyRateLimit is how many command replies a room gets per ReplyRateWindow; the
	// commands past it get no answer and are not recorded.
	ReplyRateLimit  = 10
	ReplyRateWindow = time.Minute
	// MaxOutboxBody bounds a message's Markdown: the event carries it twice (body and
	// its HTML), and a homeserver takes events of at most 64 KiB.
	MaxOutboxBody = 16 << 10
)

// ErrNoMatrixRoom is returned when a notification is queued for a room that has no Matrix
// room (yet): there is nowhere to post it.
var ErrNoMatrixRoom = errors.New("db: the room has no Matrix room")

// OutboxMessage is one row of the bot's outbox.
type OutboxMessage struct {
	ID          int64
	UUID        string
	Kind        OutboxKind
	State       OutboxState
	RoomPK      int64
	RoomUUID    string
	ProjectName string
	RoomID      id.RoomID // the Matrix room at queue time
	// CommandEventID, CommandSender and CommandBody are the command a reply answers
	// (empty for notifications).
	CommandEventID id.EventID
	CommandSender  id.UserID
	CommandBody    string
	// Body is the message's Markdown; "" for a reply not composed yet (the sender
	// composes it when it first sends the row).
	Body          string
	Attempts      int
	NextAttemptAt time.Time // zero = due at once
	LastError     string
	EventID       id.EventID // the posted event, once sent
	CreatedAt     time.Time
	SentAt        time.Time // zero until sent
	FailedAt      time.Time // zero unless failed
}

// MaybeSent reports whether an earlier send of this pending row may have reached the
// room: one was begun in this round (attempts > 0), or in an earlier round that staff
// restarted (a failed row keeps its last error when retried).
func (m *OutboxMessage) MaybeSent() bool {
	return m.Attempts > 0 || m.LastError != ""
}

// TxnID is the Matrix transaction id the row is sent with: derived from the row's uuid
// (never reused, unlike a rowid after pruning), so a repeated send is the same request to
// the homeserver, which deduplicates it instead of posting twice.
func (m *OutboxMessage) TxnID() string { return "matrixas-outbox-" + m.UUID }

const outboxColumns = `o.id, o.uuid, o.kind, o.state, o.room_pk, m.uuid, p.name, o.room_id,
	COALESCE(o.command_event_id, ''), o.command_sender, o.command_body, o.body, o.attempts, o.next_attempt_at,
	o.last_error, o.event_id, o.created_at, o.sent_at, o.failed_at`

const outboxFrom = ` FROM bot_outbox o JOIN matrix_rooms m ON m.id = o.room_pk JOIN projects p ON p.id = m.project_id`

func scanOutbox(row interface{ Scan(...any) error }) (*OutboxMessage, error) {
	var o OutboxMessage
	var kind, state, roomID, cmdEvent, cmdSender, eventID string
	var next, created int64
	var sent, failed sql.NullInt64
	if err := row.Scan(&o.ID, &o.UUID, &kind, &state, &o.RoomPK, &o.RoomUUID, &o.ProjectName, &roomID,
		&cmdEvent, &cmdSender, &o.CommandBody, &o.Body, &o.Attempts, &next,
		&o.LastError, &eventID, &created, &sent, &failed); err != nil {
		return nil, err
	}
	o.Kind, o.State = OutboxKind(kind), OutboxState(state)
	o.RoomID, o.CommandEventID, o.CommandSender, o.EventID = id.RoomID(roomID), id.EventID(cmdEvent), id.UserID(cmdSender), id.EventID(eventID)
	if next > 0 {
		o.NextAttemptAt = time.Unix(next, 0).UTC()
	}
	o.CreatedAt = time.Unix(created, 0).UTC()
	if sent.Valid {
		o.SentAt = time.Unix(sent.Int64, 0).UTC()
	}
	if failed.Valid {
		o.FailedAt = time.Unix(failed.Int64, 0).UTC()
	}
	return &o, nil
}

// QueueNotificationTx queues a notification into a room inside the caller's transaction,
// so that a directory write and its announcement commit (or roll back) together. It
// returns the message's uuid. A room without a Matrix room is ErrNoMatrixRoom; a missing
// room ErrNotFound. Which room states may be notified is the caller's rule (a room being
// disabled gets its notice before anyone is kicked).
func (s *Store) QueueNotificationTx(ctx context.Context, tx *sql.Tx, roomPK int64, body string) (string, error) {
	if strings.TrimSpace(body) == "" {
		return "", errors.New("db: queue notification: empty body")
	}
	if len(body) > MaxOutboxBody {
		return "", fmt.Errorf("db: queue notification: body of %d bytes, at most %d", len(body), MaxOutboxBody)
	}
	var roomID string
	if err := tx.QueryRowContext(ctx, `SELECT room_id FROM matrix_rooms WHERE id = ?`, roomPK).Scan(&roomID); err != nil {
		return "", notFound(err, fmt.Sprintf("queue notification: get room %d", roomPK))
	}
	if roomID == "" {
		return "", fmt.Errorf("queue notification: room %d: %w", roomPK, ErrNoMatrixRoom)
	}
	uuid := NewUUID()
	if _, err := tx.ExecContext(ctx, `INSERT INTO bot_outbox (uuid, kind, room_pk, room_id, body, created_at)
		VALUES (?, 'notification', ?, ?, ?, ?)`, uuid, roomPK, roomID, body, now()); err != nil {
		return "", fmt.Errorf("db: queue notification: %w", err)
	}
	return uuid, nil
}

// QueueProjectNotificationTx queues a notification into a project's room inside the
// caller's transaction when the project has an active room, and returns its uuid; "" (and
// no error) when there is no active room to tell: directory writes announce themselves
// only where someone can read it.
func (s *Store) QueueProjectNotificationTx(ctx context.Context, tx *sql.Tx, projectID int64, body string) (string, error) {
	var roomPK int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM matrix_rooms WHERE project_id = ? AND state = 'active' AND room_id != ''`, projectID).Scan(&roomPK)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("db: queue notification for project %d: %w", projectID, err)
	}
	return s.QueueNotificationTx(ctx, tx, roomPK, body)
}

// QueueNotification queues a notification into a room in its own transaction and returns
// the queued message (see QueueNotificationTx).
func (s *Store) QueueNotification(ctx context.Context, roomPK int64, body string) (*OutboxMessage, error) {
	var uuid string
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		uuid, err = s.QueueNotificationTx(ctx, tx, roomPK, body)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.OutboxByUUID(ctx, uuid)
}

// RoomNotActiveError refuses a message for a room that is not active: nobody reads it,
// or there is no Matrix room to post into. The API answers it with 409 and the state.
type RoomNotActiveError struct{ State RoomState }

func (e *RoomNotActiveError) Error() string {
	return fmt.Sprintf("db: the room is %s, not active", e.State)
}

// QueueActiveRoomNotification queues a notification into a room that is active, checked
// in the same transaction (a room being disabled meanwhile cannot get it), and returns
// the queued message. Another state is a *RoomNotActiveError; a missing room ErrNotFound.
func (s *Store) QueueActiveRoomNotification(ctx context.Context, roomPK int64, body string) (*OutboxMessage, error) {
	var uuid string
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM matrix_rooms WHERE id = ?`, roomPK).Scan(&state); err != nil {
			return notFound(err, fmt.Sprintf("queue notification: get room %d", roomPK))
		}
		if RoomState(state) != RoomActive {
			return &RoomNotActiveError{State: RoomState(state)}
		}
		var err error
		uuid, err = s.QueueNotificationTx(ctx, tx, roomPK, body)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.OutboxByUUID(ctx, uuid)
}

// OutboxByUUID returns the outbox message with the given uuid.
func (s *Store) OutboxByUUID(ctx context.Context, uuid string) (*OutboxMessage, error) {
	o, err := scanOutbox(s.r.QueryRowContext(ctx, `SELECT `+outboxColumns+outboxFrom+` WHERE o.uuid = ?`, uuid))
	if err != nil {
		return nil, notFound(err, "get outbox message "+uuid)
	}
	return o, nil
}

func (s *Store) queryOutbox(ctx context.Context, what, q string, args ...any) ([]*OutboxMessage, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("db: %s: %w", what, err)
	}
	defer rows.Close()
	var out []*OutboxMessage
	for rows.Next() {
		o, err := scanOutbox(rows)
		if err != nil {
			return nil, fmt.Errorf("db: %s: %w", what, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: %s: %w", what, err)
	}
	return out, nil
}

// int64List encodes ids for json_each, the one way to pass a list as a single parameter.
func int64List(ids []int64) string {
	if len(ids) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

// DueOutbox returns up to limit pending messages due at now, in the order they are to
// be sent: notifications before replies, oldest first. Messages of the rooms in busy
// (room row ids with a send under way) are left out, so that one room's messages go out
// one at a time and in order while other rooms' messages go out beside them.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int, busy []int64) ([]*OutboxMessage, error) {
	return s.queryOutbox(ctx, "due outbox messages", `SELECT `+outboxColumns+outboxFrom+`
		WHERE o.state = 'pending' AND o.next_attempt_at <= ?
		  AND o.room_pk NOT IN (SELECT value FROM json_each(?))
		ORDER BY o.kind, o.id LIMIT ?`, now.Unix(), int64List(busy), limit)
}

// NextOutboxAttempt returns the earliest time after `after` at which a pending message
// falls due, and false when none does (messages due already are DueOutbox's).
func (s *Store) NextOutboxAttempt(ctx context.Context, after time.Time) (time.Time, bool, error) {
	var at sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT MIN(next_attempt_at) FROM bot_outbox WHERE state = 'pending' AND next_attempt_at > ?`,
		after.Unix()).Scan(&at); err != nil {
		return time.Time{}, false, fmt.Errorf("db: next outbox attempt: %w", err)
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(at.Int64, 0).UTC(), true, nil
}

// ClaimOutbox records that a send of each of the given pending messages begins (attempts
// + 1), in one write, before any of them is sent: from then on the message counts as
// possibly sent (MaybeSent) until its outcome is recorded. The claim is a lease: the
// message is not due again before until, so that after a crash its next send waits until
// the one in flight has surely ended on the homeserver (which deduplicates a repeated
// transaction id only once the first request is done, and shows the event in the
// room's history a little later still). Recording the outcome replaces the lease.
func (s *Store) ClaimOutbox(ctx context.Context, ids []int64, until time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE bot_outbox SET attempts = attempts + 1, next_attempt_at = ?
		WHERE id IN (SELECT value FROM json_each(?)) AND state = 'pending'`, until.Unix(), int64List(ids)); err != nil {
		return fmt.Errorf("db: claim outbox messages: %w", err)
	}
	return nil
}

// SetOutboxBody stores the Markdown of a reply composed for its first send, before the
// send, so that every later attempt sends the same text and the outbox shows what went out.
func (s *Store) SetOutboxBody(ctx context.Context, id int64, body string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE bot_outbox SET body = ? WHERE id = ? AND state = 'pending'`, truncate(body, MaxOutboxBody), id); err != nil {
		return fmt.Errorf("db: set body of outbox message %d: %w", id, err)
	}
	return nil
}

// updateOutbox runs a state change of one message and maps "no such row" to ErrNotFound.
func (s *Store) updateOutbox(ctx context.Context, what string, id int64, q string, args ...any) error {
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("db: %s outbox message %d: %w", what, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("db: %s outbox message %d: %w", what, id, ErrNotFound)
	}
	return nil
}

// MarkOutboxSent records that a pending message was posted as eventID at the given time.
func (s *Store) MarkOutboxSent(ctx context.Context, id int64, eventID id.EventID, at time.Time) error {
	return s.updateOutbox(ctx, "mark sent", id, `UPDATE bot_outbox SET state = 'sent', event_id = ?, sent_at = ?, last_error = ''
		WHERE id = ? AND state = 'pending'`, string(eventID), at.Unix(), id)
}

// RetryOutboxAt records a failed send of a pending message and when to try again.
func (s *Store) RetryOutboxAt(ctx context.Context, id int64, at time.Time, reason string) error {
	return s.updateOutbox(ctx, "retry", id, `UPDATE bot_outbox SET next_attempt_at = ?, last_error = ?
		WHERE id = ? AND state = 'pending'`, ceilUnix(at), clip(reason), id)
}

// FailOutbox gives up on a pending message: state failed, with the reason, at the given time.
func (s *Store) FailOutbox(ctx context.Context, id int64, reason string, at time.Time) error {
	return s.updateOutbox(ctx, "fail", id, `UPDATE bot_outbox SET state = 'failed', last_error = ?, failed_at = ?
		WHERE id = ? AND state = 'pending'`, clip(reason), at.Unix(), id)
}

// clip bounds an error text kept in a row.
func clip(s string) string { return truncate(s, 500) }

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// RetryOutbox puts a failed message back in the queue (a staff action): pending, due at
// once, with a new round of attempts. Its last error stays, so the sender first looks in
// the room for an earlier send that did arrive. A message that is not failed is
// ErrConflict; a missing one ErrNotFound.
func (s *Store) RetryOutbox(ctx context.Context, uuid string) (*OutboxMessage, error) {
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM bot_outbox WHERE uuid = ?`, uuid).Scan(&state); err != nil {
			return notFound(err, "retry outbox message "+uuid)
		}
		if OutboxState(state) != OutboxFailed {
			return fmt.Errorf("db: retry outbox message %s: it is %s, not failed: %w", uuid, state, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bot_outbox SET state = 'pending', attempts = 0, next_attempt_at = 0, failed_at = NULL
			WHERE uuid = ?`, uuid); err != nil {
			return fmt.Errorf("db: retry outbox message %s: %w", uuid, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.OutboxByUUID(ctx, uuid)
}

// PruneOutbox deletes sent messages sent before `before` and failed ones that failed
// before it, in chunks so the writer is never held long, and returns how many it deleted.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM bot_outbox WHERE id IN (SELECT id FROM bot_outbox WHERE state = 'sent' AND sent_at < ? LIMIT 5000)`,
		`DELETE FROM bot_outbox WHERE id IN (SELECT id FROM bot_outbox WHERE state = 'failed' AND failed_at < ? LIMIT 5000)`,
	} {
		for {
			res, err := s.w.ExecContext(ctx, q, before.Unix())
			if err != nil {
				return total, fmt.Errorf("db: prune outbox: %w", err)
			}
			n, _ := res.RowsAffected()
			total += n
			if n == 0 {
				break
			}
		}
	}
	return total, nil
}

// OutboxFilter selects messages for ListOutbox; zero fields do not filter.
type OutboxFilter struct {
	State    OutboxState
	RoomUUID string
	Page     Page
}

// ListOutbox returns one page of outbox messages, newest first, and the total count.
func (s *Store) ListOutbox(ctx context.Context, f OutboxFilter) ([]*OutboxMessage, int, error) {
	where := []string{"1 = 1"}
	var args []any
	if f.State != "" {
		where = append(where, `o.state = ?`)
		args = append(args, string(f.State))
	}
	if f.RoomUUID != "" {
		where = append(where, `m.uuid = ?`)
		args = append(args, f.RoomUUID)
	}
	cond := ` WHERE ` + strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)`+outboxFrom+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("db: count outbox messages: %w", err)
	}
	limit, offset := f.Page.limitOffset()
	out, err := s.queryOutbox(ctx, "list outbox messages", `SELECT `+outboxColumns+outboxFrom+cond+` ORDER BY o.id DESC LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
	return out, total, err
}

// OutboxStateCounts counts the outbox's messages by state (every state present, zero
// when it has none).
func (s *Store) OutboxStateCounts(ctx context.Context) (map[OutboxState]int, error) {
	out := make(map[OutboxState]int, len(OutboxStates))
	for _, st := range OutboxStates {
		out[st] = 0
	}
	rows, err := s.r.QueryContext(ctx, `SELECT state, COUNT(*) FROM bot_outbox GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("db: count outbox messages by state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("db: count outbox messages by state: %w", err)
		}
		out[OutboxState(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: count outbox messages by state: %w", err)
	}
	return out, nil
}

// RoomOutbox returns a room's latest outbox messages (at most limit), newest first.
func (s *Store) RoomOutbox(ctx context.Context, roomPK int64, limit int) ([]*OutboxMessage, error) {
	return s.queryOutbox(ctx, fmt.Sprintf("outbox of room %d", roomPK), `SELECT `+outboxColumns+outboxFrom+`
		WHERE o.room_pk = ? ORDER BY o.created_at DESC, o.id DESC LIMIT ?`, roomPK, limit)
}

// OutboxStats are the outbox's numbers for metrics and diagnostics.
type OutboxStats struct {
	Pending  int // messages waiting to be sent
	Retrying int // of which already failed at least once
	// OldestPending is when the oldest pending message was queued; zero when none is.
	OldestPending time.Time
	// FailedSince counts messages that failed from the since argument on.
	FailedSince int
	Failed      int // failed messages kept (not pruned yet)
}

// OutboxStats reads the outbox's numbers in one statement; since bounds FailedSince
// (diagnostics ask for the last 24 hours).
func (s *Store) OutboxStats(ctx context.Context, since time.Time) (*OutboxStats, error) {
	var st OutboxStats
	var oldest sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM bot_outbox WHERE state = 'pending'),
		(SELECT COUNT(*) FROM bot_outbox WHERE state = 'pending' AND last_error != ''),
		(SELECT MIN(created_at) FROM bot_outbox WHERE state = 'pending'),
		(SELECT COUNT(*) FROM bot_outbox WHERE state = 'failed' AND failed_at >= ?),
		(SELECT COUNT(*) FROM bot_outbox WHERE state = 'failed')`, since.Unix()).
		Scan(&st.Pending, &st.Retrying, &oldest, &st.FailedSince, &st.Failed)
	if err != nil {
		return nil, fmt.Errorf("db: outbox stats: %w", err)
	}
	if oldest.Valid {
		st.OldestPending = time.Unix(oldest.Int64, 0).UTC()
	}
	return &st, nil
}
