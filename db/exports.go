package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"
)

// ExportType is what triggered a history export.
type ExportType string

// Export types.
const (
	ExportManual     ExportType = "manual"      // staff asked (export_history)
	ExportPeriodic   ExportType = "periodic"    // the daily export
	ExportOnDeletion ExportType = "on_deletion" // before the room is archived
)

// ExportTypes lists every type.
var ExportTypes = []ExportType{ExportManual, ExportPeriodic, ExportOnDeletion}

// Valid reports whether t is one of ExportTypes.
func (t ExportType) Valid() bool { return slices.Contains(ExportTypes, t) }

// ExportState is where a history export is in its life: pending -> exporting ->
// completed or failed (and exporting -> pending again when a crash interrupted it).
type ExportState string

// Export states.
const (
	ExportPending   ExportState = "pending"
	ExportExporting ExportState = "exporting"
	ExportCompleted ExportState = "completed"
	ExportFailed    ExportState = "failed"
)

// ExportStates lists every state in lifecycle order.
var ExportStates = []ExportState{ExportPending, ExportExporting, ExportCompleted, ExportFailed}

// Valid reports whether s is one of ExportStates.
func (s ExportState) Valid() bool { return slices.Contains(ExportStates, s) }

// HistoryExport is one export of a room's history and its encrypted files.
type HistoryExport struct {
	ID   int64
	UUID string
	// RoomPK and RoomUUID are the room's record; 0 and "" once that record is deleted
	// (the export outlives it, with the Matrix room id and name it was taken from).
	RoomPK       int64
	RoomUUID     string
	RoomID       id.RoomID // the Matrix room exported ("" until the room exists there)
	RoomName     string
	Type         ExportType
	State        ExportState
	MessageCount int
	MediaCount   int
	ErrorMessage string
	// ExportFile and MediaFile are file names in the export folder ("" = none); the
	// sizes are plaintext bytes, what a download delivers.
	ExportFile string
	ExportSize int64
	MediaFile  string
	MediaSize  int64
	// KeyID is the master key that wrapped the files' keys.
	KeyID string
	// Attempts counts the runs started (a crash mid-export makes a second).
	Attempts int
	// StartedAt is when the last run started; CompletedAt when the export finished,
	// completed or failed. Zero when not (yet).
	StartedAt   time.Time
	CompletedAt time.Time
	CreatedAt   time.Time
}

// Finished reports whether the export reached completed or failed.
func (e *HistoryExport) Finished() bool {
	return e.State == ExportCompleted || e.State == ExportFailed
}

const exportColumns = `e.id, e.uuid, COALESCE(e.room_pk, 0), COALESCE(m.uuid, ''), e.room_id, e.room_name, e.export_type,
	e.state, e.message_count, e.media_count, e.error_message, e.export_file, e.export_size, e.media_file, e.media_size,
	e.key_id, e.attempts, e.started_at, e.completed_at, e.created_at`

const exportFrom = ` FROM history_exports e LEFT JOIN matrix_rooms m ON m.id = e.room_pk`

func scanExport(row interface{ Scan(...any) error }) (*HistoryExport, error) {
	var e HistoryExport
	var roomID, typ, state string
	var started, completed sql.NullInt64
	var created int64
	if err := row.Scan(&e.ID, &e.UUID, &e.RoomPK, &e.RoomUUID, &roomID, &e.RoomName, &typ, &state, &e.MessageCount,
		&e.MediaCount, &e.ErrorMessage, &e.ExportFile, &e.ExportSize, &e.MediaFile, &e.MediaSize, &e.KeyID, &e.Attempts,
		&started, &completed, &created); err != nil {
		return nil, err
	}
	e.RoomID = id.RoomID(roomID)
	e.Type = ExportType(typ)
	e.State = ExportState(state)
	if started.Valid {
		e.StartedAt = time.Unix(started.Int64, 0).UTC()
	}
	if completed.Valid {
		e.CompletedAt = time.Unix(completed.Int64, 0).UTC()
	}
	e.CreatedAt = time.Unix(created, 0).UTC()
	return &e, nil
}

// CreateExport queues an export of the room with row id roomPK. When one already waits
// (pending) for that room, it returns that one and created false instead: the API
// answers 200 with it, the daily job skips the room. A missing room is ErrNotFound.
func (s *Store) CreateExport(ctx context.Context, roomPK int64, typ ExportType) (*HistoryExport, bool, error) {
	if !typ.Valid() {
		return nil, false, fmt.Errorf("db: create export: invalid type %q", typ)
	}
	var uuid string
	created := false
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT uuid FROM history_exports WHERE room_pk = ? AND state = 'pending'`, roomPK).Scan(&uuid)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("db: create export for room %d: %w", roomPK, err)
		}
		uuid = NewUUID()
		res, err := tx.ExecContext(ctx, `INSERT INTO history_exports (uuid, room_pk, room_id, room_name, export_type, state, created_at)
			SELECT ?, id, room_id, room_name, ?, 'pending', ? FROM matrix_rooms WHERE id = ?`, uuid, string(typ), now(), roomPK)
		if err != nil {
			return fmt.Errorf("db: create export for room %d: %w", roomPK, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("db: create export for room %d: %w", roomPK, ErrNotFound)
		}
		created = true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	e, err := s.ExportByUUID(ctx, uuid)
	return e, created, err
}

// ManualExportsSince counts the manual exports of a room created since the given time
// (the API refuses an 11th in 24 hours).
func (s *Store) ManualExportsSince(ctx context.Context, roomPK int64, since time.Time) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM history_exports WHERE room_pk = ? AND created_at >= ? AND export_type = 'manual'`,
		roomPK, since.Unix()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("db: count manual exports of room %d: %w", roomPK, err)
	}
	return n, nil
}

// OldestManualExportSince is when the oldest manual export of a room created since the
// given time was queued, the zero time when there is none: the refused request's
// Retry-After is when it leaves the window.
func (s *Store) OldestManualExportSince(ctx context.Context, roomPK int64, since time.Time) (time.Time, error) {
	var at sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT MIN(created_at) FROM history_exports WHERE room_pk = ? AND created_at >= ? AND export_type = 'manual'`,
		roomPK, since.Unix()).Scan(&at)
	if err != nil {
		return time.Time{}, fmt.Errorf("db: oldest manual export of room %d: %w", roomPK, err)
	}
	if !at.Valid {
		return time.Time{}, nil
	}
	return time.Unix(at.Int64, 0).UTC(), nil
}

// ClaimExport moves the next pending export to exporting and returns it: before-
// deletion exports first (an archive waits for them), then manual, then periodic, oldest
// first; never one of a room that already has one running, and none when maxRunning
// (> 0) exports already run. The room's current Matrix id and name are taken at this
// moment. Nothing to claim is ErrNotFound.
func (s *Store) ClaimExport(ctx context.Context, maxRunning int) (*HistoryExport, error) {
	var uuid string
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if maxRunning > 0 {
			var running int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM history_exports WHERE state = 'exporting'`).Scan(&running); err != nil {
				return fmt.Errorf("db: claim export: %w", err)
			}
			if running >= maxRunning {
				return fmt.Errorf("db: claim export: %d running: %w", running, ErrNotFound)
			}
		}
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT e.id, e.uuid FROM history_exports e
			WHERE e.state = 'pending' AND NOT EXISTS (
				SELECT 1 FROM history_exports x WHERE x.room_pk = e.room_pk AND x.state = 'exporting')
			ORDER BY CASE e.export_type WHEN 'on_deletion' THEN 0 WHEN 'manual' THEN 1 ELSE 2 END, e.created_at, e.id
			LIMIT 1`).Scan(&id, &uuid)
		if err != nil {
			return notFound(err, "claim export")
		}
		return startExportTx(ctx, tx, id)
	})
	if err != nil {
		return nil, err
	}
	return s.ExportByUUID(ctx, uuid)
}

// StartExport moves the given pending export to exporting, for a caller that runs one
// export itself (the disable path). One that is not pending, or whose room already has
// one running, is ErrConflict.
func (s *Store) StartExport(ctx context.Context, uuid string) (*HistoryExport, error) {
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var id int64
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT id, state FROM history_exports WHERE uuid = ?`, uuid).Scan(&id, &state); err != nil {
			return notFound(err, "start export "+uuid)
		}
		if state != string(ExportPending) {
			return fmt.Errorf("db: start export %s: it is %s: %w", uuid, state, ErrConflict)
		}
		return startExportTx(ctx, tx, id)
	})
	if err != nil {
		return nil, err
	}
	return s.ExportByUUID(ctx, uuid)
}

func startExportTx(ctx context.Context, tx *sql.Tx, id int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE history_exports SET state = 'exporting', started_at = ?, attempts = attempts + 1,
		room_id = COALESCE((SELECT NULLIF(m.room_id, '') FROM matrix_rooms m WHERE m.id = history_exports.room_pk), room_id),
		room_name = COALESCE((SELECT m.room_name FROM matrix_rooms m WHERE m.id = history_exports.room_pk), room_name)
		WHERE id = ?`, now(), id)
	if isUniqueViolation(err) {
		return fmt.Errorf("db: start export %d: its room has one running: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("db: start export %d: %w", id, err)
	}
	return nil
}

// ExportOutcome is what a completed export records.
type ExportOutcome struct {
	MessageCount int
	MediaCount   int
	ExportFile   string
	ExportSize   int64
	MediaFile    string
	MediaSize    int64
	KeyID        string
}

// CompleteExport records a finished export. Only a running export completes: one that
// recovery moved back to pending or failed meanwhile is ErrConflict (its files will be
// written again, or not served).
func (s *Store) CompleteExport(ctx context.Context, uuid string, out ExportOutcome) error {
	return s.finishExport(ctx, uuid, []ExportState{ExportExporting}, `state = 'completed', message_count = ?, media_count = ?,
		export_file = ?, export_size = ?, media_file = ?, media_size = ?, key_id = ?, error_message = '', completed_at = ?`,
		out.MessageCount, out.MediaCount, out.ExportFile, out.ExportSize, out.MediaFile, out.MediaSize, out.KeyID, now())
}

// FailExport records why an export failed; a pending or running export can fail. Its
// files, if any, are not recorded (and never served).
func (s *Store) FailExport(ctx context.Context, uuid, reason string) error {
	return s.finishExport(ctx, uuid, []ExportState{ExportPending, ExportExporting},
		`state = 'failed', error_message = ?, completed_at = ?`, reason, now())
}

func (s *Store) finishExport(ctx context.Context, uuid string, from []ExportState, set string, args ...any) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM history_exports WHERE uuid = ?`, uuid).Scan(&state); err != nil {
			return notFound(err, "finish export "+uuid)
		}
		if !slices.Contains(from, ExportState(state)) {
			return fmt.Errorf("db: finish export %s: it is %s: %w", uuid, state, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE history_exports SET `+set+` WHERE uuid = ?`, append(args, uuid)...); err != nil {
			return fmt.Errorf("db: finish export %s: %w", uuid, err)
		}
		return nil
	})
}

// ExportByUUID returns the export with the given uuid.
func (s *Store) ExportByUUID(ctx context.Context, uuid string) (*HistoryExport, error) {
	e, err := scanExport(s.r.QueryRowContext(ctx, `SELECT `+exportColumns+exportFrom+` WHERE e.uuid = ?`, uuid))
	if err != nil {
		return nil, notFound(err, "get export "+uuid)
	}
	return e, nil
}

// ExportFilter selects exports for ListExports; zero fields do not filter.
type ExportFilter struct {
	RoomUUID string
	State    ExportState
	Type     ExportType
	Page     Page
}

// ListExports returns one page of exports, newest first, and the total count.
func (s *Store) ListExports(ctx context.Context, f ExportFilter) ([]*HistoryExport, int, error) {
	where := []string{"1 = 1"}
	var args []any
	if f.RoomUUID != "" {
		where = append(where, `m.uuid = ?`)
		args = append(args, f.RoomUUID)
	}
	if f.State != "" {
		where = append(where, `e.state = ?`)
		args = append(args, string(f.State))
	}
	if f.Type != "" {
		where = append(where, `e.export_type = ?`)
		args = append(args, string(f.Type))
	}
	cond := ` WHERE ` + strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)`+exportFrom+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("db: count exports: %w", err)
	}
	limit, offset := f.Page.limitOffset()
	out, err := s.queryExports(ctx, `SELECT `+exportColumns+exportFrom+cond+` ORDER BY e.id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list exports: %w", err)
	}
	return out, total, nil
}

func (s *Store) queryExports(ctx context.Context, q string, args ...any) ([]*HistoryExport, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*HistoryExport
	for rows.Next() {
		e, err := scanExport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// FailedExportsSince counts the exports that failed since the given time (diagnostics:
// history_exports over the last 24 hours).
func (s *Store) FailedExportsSince(ctx context.Context, since time.Time) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM history_exports WHERE state = 'failed' AND completed_at >= ?`,
		since.Unix()).Scan(&n); err != nil {
		return 0, fmt.Errorf("db: count failed exports: %w", err)
	}
	return n, nil
}

// ExportRetentionCandidates returns up to limit finished exports created more than days
// days ago, oldest first, for the daily retention job to delete (files, then record).
// The newest completed export of each room is never among them, however old; days <= 0
// keeps everything (none returned).
func (s *Store) ExportRetentionCandidates(ctx context.Context, days, limit int) ([]*HistoryExport, error) {
	if days <= 0 {
		return nil, nil
	}
	return s.ExportsCreatedBefore(ctx, time.Unix(now()-int64(days)*86400, 0), limit)
}

// DeleteExport deletes an export's record (its files are the caller's to delete first).
func (s *Store) DeleteExport(ctx context.Context, uuid string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM history_exports WHERE uuid = ?`, uuid)
		if err != nil {
			return fmt.Errorf("db: delete export %s: %w", uuid, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("db: delete export %s: %w", uuid, ErrNotFound)
		}
		return nil
	})
}

// InterruptedExportReason is the error_message of an export a crash interrupted and
// that is not tried again.
const InterruptedExportReason = "interrupted by a server stop"

// RecoverExports runs at start, before any export: the exports a crash left running go
// back to pending to be tried again, or to failed when they already started maxAttempts
// times or their room has a newer export waiting (which covers the same history). None
// becomes completed: its files may be half written. It returns how many were requeued
// and how many failed.
func (s *Store) RecoverExports(ctx context.Context, maxAttempts int) (requeued, failed int, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE history_exports SET state = 'failed', error_message = ?, completed_at = ?
			WHERE state = 'exporting' AND (attempts >= ? OR EXISTS (
				SELECT 1 FROM history_exports x WHERE x.room_pk = history_exports.room_pk AND x.state = 'pending'))`,
			InterruptedExportReason, now(), maxAttempts)
		if err != nil {
			return fmt.Errorf("db: recover exports: %w", err)
		}
		n, _ := res.RowsAffected()
		failed = int(n)
		res, err = tx.ExecContext(ctx, `UPDATE history_exports SET state = 'pending' WHERE state = 'exporting'`)
		if err != nil {
			return fmt.Errorf("db: recover exports: %w", err)
		}
		n, _ = res.RowsAffected()
		requeued = int(n)
		return nil
	})
	return requeued, failed, err
}

// PendingExport returns the export of the room with row id roomPK that waits to run
// (there is at most one); none is ErrNotFound.
func (s *Store) PendingExport(ctx context.Context, roomPK int64) (*HistoryExport, error) {
	e, err := scanExport(s.r.QueryRowContext(ctx, `SELECT `+exportColumns+exportFrom+` WHERE e.room_pk = ? AND e.state = 'pending'`, roomPK))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("get pending export of room %d", roomPK))
	}
	return e, nil
}

// ExportProgress records how far a running export got (its counts so far), so that
// staff watching it see it move. An export that is no longer running is left alone
// (recovery or a failure may have moved it meanwhile): that is not an error.
func (s *Store) ExportProgress(ctx context.Context, uuid string, messages, media int) error {
	_, err := s.w.ExecContext(ctx, `UPDATE history_exports SET message_count = ?, media_count = ?
		WHERE uuid = ? AND state = 'exporting'`, messages, media, uuid)
	if err != nil {
		s.noteWrite(err)
		return fmt.Errorf("db: record progress of export %s: %w", uuid, err)
	}
	return nil
}

// ExportsCreatedBefore returns up to limit finished exports created before cutoff,
// oldest first, never the newest completed export of a room however old: what retention
// deletes. ExportRetentionCandidates is the same with the cutoff counted in days from now.
func (s *Store) ExportsCreatedBefore(ctx context.Context, cutoff time.Time, limit int) ([]*HistoryExport, error) {
	// A room is its record while it exists, and its Matrix room id after the record was
	// deleted, so that a deleted room's last export is kept too.
	out, err := s.queryExports(ctx, `WITH newest AS (
			SELECT id, ROW_NUMBER() OVER (
				PARTITION BY COALESCE('pk:' || room_pk, 'room:' || room_id)
				ORDER BY completed_at DESC, id DESC) AS rank
			FROM history_exports WHERE state = 'completed')
		SELECT `+exportColumns+exportFrom+`
		WHERE e.state IN ('completed', 'failed') AND e.created_at < ?
			AND e.id NOT IN (SELECT id FROM newest WHERE rank = 1)
		ORDER BY e.created_at, e.id LIMIT ?`, cutoff.Unix(), max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("db: find exports past retention: %w", err)
	}
	return out, nil
}

// QueuePeriodicExports queues a periodic export of every active room that exists on the
// homeserver, except a room that already has one waiting (its previous export has not
// run yet: it gets none). It returns how many it queued.
func (s *Store) QueuePeriodicExports(ctx context.Context) (int, error) {
	queued := 0
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT m.id FROM matrix_rooms m
			WHERE m.state = 'active' AND m.room_id != ''
				AND NOT EXISTS (SELECT 1 FROM history_exports x WHERE x.room_pk = m.id AND x.state = 'pending')
			ORDER BY m.id`)
		if err != nil {
			return fmt.Errorf("db: queue periodic exports: %w", err)
		}
		var rooms []int64
		for rows.Next() {
			var pk int64
			if err := rows.Scan(&pk); err != nil {
				rows.Close()
				return fmt.Errorf("db: queue periodic exports: %w", err)
			}
			rooms = append(rooms, pk)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("db: queue periodic exports: %w", err)
		}
		at := now()
		for _, pk := range rooms {
			if _, err := tx.ExecContext(ctx, `INSERT INTO history_exports (uuid, room_pk, room_id, room_name, export_type, state, created_at)
				SELECT ?, id, room_id, room_name, 'periodic', 'pending', ? FROM matrix_rooms WHERE id = ?`, NewUUID(), at, pk); err != nil {
				return fmt.Errorf("db: queue periodic export of room %d: %w", pk, err)
			}
		}
		queued = len(rooms)
		return nil
	})
	return queued, err
}

// LastExportCreatedAt is when the newest export of the given type was queued; the zero
// time when there is none. The daily job reads it to run once per day, restarts
// included.
func (s *Store) LastExportCreatedAt(ctx context.Context, typ ExportType) (time.Time, error) {
	var at sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT MAX(created_at) FROM history_exports WHERE export_type = ?`, string(typ)).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("db: newest %s export: %w", typ, err)
	}
	if !at.Valid {
		return time.Time{}, nil
	}
	return time.Unix(at.Int64, 0).UTC(), nil
}

// ExportStats is what the history_exports diagnostic reads.
type ExportStats struct {
	Total     int // exports on record
	Pending   int
	Running   int
	Failed    int       // failed since the time asked for
	Completed int       // completed since the time asked for
	LastError string    // the error of the newest failure since then
	LastDone  time.Time // the newest completion ever; zero when none
}

// ExportStats counts the exports for diagnostics; Failed and Completed count those that
// finished since the given time.
func (s *Store) ExportStats(ctx context.Context, since time.Time) (*ExportStats, error) {
	var st ExportStats
	var last sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*),
			COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'exporting'), 0),
			COALESCE(SUM(state = 'failed' AND completed_at >= ?), 0), COALESCE(SUM(state = 'completed' AND completed_at >= ?), 0),
			MAX(CASE WHEN state = 'completed' THEN completed_at END)
		FROM history_exports`, since.Unix(), since.Unix()).Scan(&st.Total, &st.Pending, &st.Running, &st.Failed, &st.Completed, &last)
	if err != nil {
		return nil, fmt.Errorf("db: export stats: %w", err)
	}
	if last.Valid {
		st.LastDone = time.Unix(last.Int64, 0).UTC()
	}
	if st.Failed > 0 {
		err := s.r.QueryRowContext(ctx, `SELECT error_message FROM history_exports WHERE state = 'failed' AND completed_at >= ?
			ORDER BY completed_at DESC, id DESC LIMIT 1`, since.Unix()).Scan(&st.LastError)
		if err != nil {
			return nil, fmt.Errorf("db: export stats: %w", err)
		}
	}
	return &st, nil
}
