package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SessionRow is a server-side session: the cookie carries only a random id whose SHA-256
// is the key here, so a leaked database does not leak live cookies.
type SessionRow struct {
	IDHash    string
	UserID    int64 // 0 for an anonymous session (a flash message before login, say)
	Data      []byte
	ExpiresAt time.Time
}

// SessionByHash returns a session that has not expired.
func (s *Store) SessionByHash(ctx context.Context, idHash string) (*SessionRow, error) {
	var row SessionRow
	var uid sql.NullInt64
	var exp int64
	err := s.r.QueryRowContext(ctx, `SELECT id_hash, user_id, data, expires_at FROM sessions WHERE id_hash = ? AND expires_at > ?`,
		idHash, now()).Scan(&row.IDHash, &uid, &row.Data, &exp)
	if err != nil {
		return nil, notFound(err, "get session")
	}
	row.UserID = uid.Int64
	row.ExpiresAt = time.Unix(exp, 0)
	return &row, nil
}

// SaveSession inserts or replaces a session row.
func (s *Store) SaveSession(ctx context.Context, row *SessionRow) error {
	var uid any
	if row.UserID != 0 {
		uid = row.UserID
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, data, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id_hash) DO UPDATE SET user_id = excluded.user_id, data = excluded.data, expires_at = excluded.expires_at`,
		row.IDHash, uid, row.Data, now(), row.ExpiresAt.Unix())
	if err != nil {
		return fmt.Errorf("db: save session: %w", err)
	}
	return nil
}

// DeleteSession removes one session (logout, or the old id at login).
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("db: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions past their expiry and returns how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, now())
	if err != nil {
		return 0, fmt.Errorf("db: delete expired sessions: %w", err)
	}
	return res.RowsAffected()
}
