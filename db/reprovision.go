package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ReprovisionCounts is what a reprovision resets: active rooms and provisioned profiles.
type ReprovisionCounts struct {
	Rooms int `json:"rooms_reprovisioned"`
	Users int `json:"users_reset"`
}

// Reprovision moves everything onto a new homeserver, in one transaction: every active
// room goes to creating (through the state machine's active -> creating) with its room id
// and alias cleared and its members reset to pending, and every provisioned profile
// becomes unprovisioned; the worker then re-creates all of it. Rooms in other states are
// untouched. The run is recorded for ReprovisionProgress. With dryRun nothing changes and
// the counts say what would be reset.
func (s *Store) Reprovision(ctx context.Context, dryRun bool) (ReprovisionCounts, error) {
	if !CanTransition(RoomActive, RoomCreating) {
		return ReprovisionCounts{}, &TransitionError{From: RoomActive, To: RoomCreating}
	}
	var c ReprovisionCounts
	if dryRun {
		err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM matrix_rooms WHERE state = 'active'),
			(SELECT COUNT(*) FROM matrix_user_profiles WHERE provisioned = 1)`).Scan(&c.Rooms, &c.Users)
		if err != nil {
			return c, fmt.Errorf("db: count what reprovision would reset: %w", err)
		}
		return c, nil
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		t := now()
		res, err := tx.ExecContext(ctx, `INSERT INTO reprovisions (started_at, rooms, users) VALUES (?, 0, 0)`, t)
		if err != nil {
			return fmt.Errorf("db: record reprovision: %w", err)
		}
		run, _ := res.LastInsertId()
		res, err = tx.ExecContext(ctx, `UPDATE matrix_rooms SET state = 'creating', room_id = '', room_alias = '', notice = '',
			error_message = '', attempts = 0, next_attempt_at = 0, members_dirty = 1, create_started_at = 0, reprovision_id = ?, modified_at = ?
			WHERE state = 'active'`, run, t)
		if err != nil {
			return fmt.Errorf("db: reprovision rooms: %w", err)
		}
		n, _ := res.RowsAffected()
		c.Rooms = int(n)
		if _, err := tx.ExecContext(ctx, `UPDATE matrix_room_members SET membership = '', synced_at = NULL, last_error = ''
			WHERE room_pk IN (SELECT id FROM matrix_rooms WHERE reprovision_id = ?)`, run); err != nil {
			return fmt.Errorf("db: reset room members: %w", err)
		}
		res, err = tx.ExecContext(ctx, `UPDATE matrix_user_profiles SET provisioned = 0, provisioned_at = NULL, last_synced_at = NULL,
			attempts = 0, next_attempt_at = 0, last_error = '', reprovision_id = ? WHERE provisioned = 1`, run)
		if err != nil {
			return fmt.Errorf("db: reset profiles: %w", err)
		}
		n, _ = res.RowsAffected()
		c.Users = int(n)
		if _, err := tx.ExecContext(ctx, `UPDATE reprovisions SET rooms = ?, users = ? WHERE id = ?`, c.Rooms, c.Users, run); err != nil {
			return fmt.Errorf("db: record reprovision: %w", err)
		}
		return nil
	})
	return c, err
}

// ReprovisionProgress is how far the last reprovision got.
type ReprovisionProgress struct {
	StartedAt time.Time
	ReprovisionCounts
	RoomsRemaining int // still being created
	RoomsDone      int // active again
	RoomsErrored   int // gave up: see the rooms' error messages
	UsersRemaining int
	UsersDone      int
}

// LastReprovision returns the progress of the latest reprovision; ErrNotFound when there
// never was one.
func (s *Store) LastReprovision(ctx context.Context) (*ReprovisionProgress, error) {
	var p ReprovisionProgress
	var run, started int64
	err := s.r.QueryRowContext(ctx, `SELECT id, started_at, rooms, users FROM reprovisions ORDER BY id DESC LIMIT 1`).
		Scan(&run, &started, &p.Rooms, &p.Users)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("db: last reprovision: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("db: last reprovision: %w", err)
	}
	p.StartedAt = time.Unix(started, 0).UTC()
	// Users deactivated since are not waited for: the worker never provisions them.
	err = s.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM matrix_rooms WHERE reprovision_id = ?1 AND state = 'creating'),
		(SELECT COUNT(*) FROM matrix_rooms WHERE reprovision_id = ?1 AND state = 'active'),
		(SELECT COUNT(*) FROM matrix_rooms WHERE reprovision_id = ?1 AND state = 'error'),
		(SELECT COUNT(*) FROM matrix_user_profiles p JOIN users u ON u.id = p.user_id
		  WHERE p.reprovision_id = ?1 AND p.provisioned = 0 AND u.is_active = 1),
		(SELECT COUNT(*) FROM matrix_user_profiles WHERE reprovision_id = ?1 AND provisioned = 1)`, run).
		Scan(&p.RoomsRemaining, &p.RoomsDone, &p.RoomsErrored, &p.UsersRemaining, &p.UsersDone)
	if err != nil {
		return nil, fmt.Errorf("db: reprovision progress: %w", err)
	}
	return &p, nil
}
