package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AnnounceOrderState records the state the platform's order is in and, when it differs
// from the last one recorded and body is not empty, queues body (its notification) into
// the project's active room, in one transaction: an event repeated, or arriving after a
// later one, never announces a state twice. queued reports a notification queued.
func (s *Store) AnnounceOrderState(ctx context.Context, projectUUID, orderUUID, state, body string) (queued bool, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		queued = false
		var old string
		err := tx.QueryRowContext(ctx, `SELECT state FROM platform_orders WHERE uuid = ?`, orderUUID).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("db: get order %s: %w", orderUUID, err)
		}
		if err == nil && old == state {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO platform_orders (uuid, state, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (uuid) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`, orderUUID, state, now()); err != nil {
			return fmt.Errorf("db: record order %s: %w", orderUUID, err)
		}
		if body == "" {
			return nil
		}
		var projectID int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM projects WHERE uuid = ?`, projectUUID).Scan(&projectID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("db: get project %s: %w", projectUUID, err)
		}
		msg, err := s.QueueProjectNotificationTx(ctx, tx, projectID, body)
		queued = msg != ""
		return err
	})
	return queued, err
}
