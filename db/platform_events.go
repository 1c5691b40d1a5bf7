package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Platform event states: a received event waits (pending) for the events worker, which
// applies it (applied), finds nothing to do for it (ignored), or gives up on it after
// its retries (failed; the next full reconcile repairs what it would have done).
const (
	EventPending = "pending"
	EventApplied = "applied"
	EventIgnored = "ignored"
	EventFailed  = "failed"
)

// Counters of the event receiver.
const (
	CounterPlatformEvents      = "platform_events"
	CounterPlatformLastEventAt = "platform_last_event_at"
)

// PlatformEvent is an event the platform pushed to the receiver, as received.
type PlatformEvent struct {
	ID            int64
	EventType     string
	Kind          string // what it is about: role, project, customer, user, order, other
	ContentType   string
	Body          []byte
	State         string
	Attempts      int
	NextAttemptAt time.Time
	Error         string
	ReceivedAt    time.Time
	DoneAt        time.Time // zero while pending
}

const platformEventColumns = `id, event_type, kind, content_type, body, state, attempts, next_attempt_at, error, received_at, done_at`

func scanPlatformEvent(row interface{ Scan(...any) error }) (*PlatformEvent, error) {
	var e PlatformEvent
	var next, received int64
	var done sql.NullInt64
	if err := row.Scan(&e.ID, &e.EventType, &e.Kind, &e.ContentType, &e.Body, &e.State, &e.Attempts, &next, &e.Error, &received, &done); err != nil {
		return nil, err
	}
	if next > 0 {
		e.NextAttemptAt = time.Unix(next, 0).UTC()
	}
	e.ReceivedAt = time.Unix(received, 0).UTC()
	if done.Valid {
		e.DoneAt = time.Unix(done.Int64, 0).UTC()
	}
	return &e, nil
}

// InsertPlatformEvent stores a received event, with the receiver's counters, in one
// transaction: the receiver answers 2xx only after it returns. An event nothing will
// be done with is stored as EventIgnored (counted, and shown, but never worked on).
func (s *Store) InsertPlatformEvent(ctx context.Context, eventType, kind, contentType string, body []byte, state string) (int64, error) {
	var id int64
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		t := now()
		var done any
		if state != EventPending {
			done = t
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO platform_events (event_type, kind, content_type, body, state, received_at, done_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, eventType, kind, contentType, body, state, t, done)
		if err != nil {
			return fmt.Errorf("db: store platform event: %w", err)
		}
		id, _ = res.LastInsertId()
		if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = ?`, CounterPlatformEvents); err != nil {
			return fmt.Errorf("db: count platform event: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = ? WHERE name = ?`, t, CounterPlatformLastEventAt); err != nil {
			return fmt.Errorf("db: count platform event: %w", err)
		}
		return nil
	})
	return id, err
}

// DuePlatformEvents returns up to limit pending events due at at, oldest first.
func (s *Store) DuePlatformEvents(ctx context.Context, at time.Time, limit int) ([]*PlatformEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+platformEventColumns+` FROM platform_events
		WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?`, at.Unix(), limit)
	if err != nil {
		return nil, fmt.Errorf("db: due platform events: %w", err)
	}
	defer rows.Close()
	var out []*PlatformEvent
	for rows.Next() {
		e, err := scanPlatformEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("db: due platform events: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// NextPlatformEventDue returns when the earliest pending event falls due; false when
// none is pending.
func (s *Store) NextPlatformEventDue(ctx context.Context) (time.Time, bool, error) {
	var at sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT MIN(next_attempt_at) FROM platform_events WHERE state = 'pending'`).Scan(&at); err != nil {
		return time.Time{}, false, fmt.Errorf("db: next platform event: %w", err)
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(at.Int64, 0).UTC(), true, nil
}

// FinishPlatformEvent ends a pending event: applied, ignored or failed (with why).
func (s *Store) FinishPlatformEvent(ctx context.Context, id int64, state, reason string) error {
	if state == EventPending {
		return errors.New("db: finish platform event: not a final state")
	}
	_, err := s.w.ExecContext(ctx, `UPDATE platform_events SET state = ?, error = ?, done_at = ?, attempts = attempts + 1 WHERE id = ? AND state = 'pending'`,
		state, clip(reason), now(), id)
	if err != nil {
		return fmt.Errorf("db: finish platform event %d: %w", id, err)
	}
	return nil
}

// RetryPlatformEvent keeps an event pending after a failed attempt, until next.
func (s *Store) RetryPlatformEvent(ctx context.Context, id int64, reason string, next time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE platform_events SET attempts = attempts + 1, error = ?, next_attempt_at = ? WHERE id = ? AND state = 'pending'`,
		clip(reason), ceilUnix(next), id)
	if err != nil {
		return fmt.Errorf("db: retry platform event %d: %w", id, err)
	}
	return nil
}

// PlatformEventStats summarises the receiver: events received since the database was
// created and when the last one came (zero: never), and how many wait or failed.
type PlatformEventStats struct {
	Received int64
	LastAt   time.Time
	Pending  int
	Failed   int
}

// PlatformEventStats reads the receiver's counters and queue.
func (s *Store) PlatformEventStats(ctx context.Context) (*PlatformEventStats, error) {
	var st PlatformEventStats
	var last int64
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT value FROM counters WHERE name = ?), (SELECT value FROM counters WHERE name = ?),
		(SELECT COUNT(*) FROM platform_events WHERE state = 'pending'),
		(SELECT COUNT(*) FROM platform_events WHERE state = 'failed')`,
		CounterPlatformEvents, CounterPlatformLastEventAt).Scan(&st.Received, &last, &st.Pending, &st.Failed)
	if err != nil {
		return nil, fmt.Errorf("db: platform event stats: %w", err)
	}
	if last > 0 {
		st.LastAt = time.Unix(last, 0).UTC()
	}
	return &st, nil
}

// RecentPlatformEvents returns the newest events, newest first.
func (s *Store) RecentPlatformEvents(ctx context.Context, limit int) ([]*PlatformEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+platformEventColumns+` FROM platform_events ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("db: recent platform events: %w", err)
	}
	defer rows.Close()
	var out []*PlatformEvent
	for rows.Next() {
		e, err := scanPlatformEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("db: recent platform events: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// PrunePlatformEvents deletes events that were done before the given time (the
// counters keep counting).
func (s *Store) PrunePlatformEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM platform_events WHERE state != 'pending' AND done_at < ?`, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune platform events: %w", err)
	}
	return res.RowsAffected()
}
