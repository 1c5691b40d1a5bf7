package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// APIToken is an API token's metadata; the token itself is never stored, only its SHA-256.
type APIToken struct {
	ID         int64
	UserID     int64
	Name       string
	Prefix     string // the first characters, to tell tokens apart in a list
	CreatedAt  time.Time
	LastUsedAt time.Time // zero when never used
}

// CreateAPIToken stores a token's hash for a user.
func (s *Store) CreateAPIToken(ctx context.Context, userID int64, name, prefix, hash string) (*APIToken, error) {
	t := now()
	res, err := s.w.ExecContext(ctx, `INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		userID, name, prefix, hash, t)
	if err != nil {
		return nil, fmt.Errorf("db: create token for user %d: %w", userID, err)
	}
	id, _ := res.LastInsertId()
	return &APIToken{ID: id, UserID: userID, Name: name, Prefix: prefix, CreatedAt: time.Unix(t, 0).UTC()}, nil
}

// UserByTokenHash returns the active user owning the token with this hash, and the token id.
func (s *Store) UserByTokenHash(ctx context.Context, hash string) (*User, int64, error) {
	var tokenID int64
	var u User
	var created, modified int64
	err := s.r.QueryRowContext(ctx, `SELECT t.id, u.id, u.uuid, u.username, u.email, u.full_name, u.is_staff, u.is_active, u.password_hash, u.created_at, u.modified_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND u.is_active = 1`, hash).
		Scan(&tokenID, &u.ID, &u.UUID, &u.Username, &u.Email, &u.FullName, &u.IsStaff, &u.IsActive, &u.PasswordHash, &created, &modified)
	if err != nil {
		return nil, 0, notFound(err, "get token")
	}
	u.CreatedAt = time.Unix(created, 0).UTC()
	u.ModifiedAt = time.Unix(modified, 0).UTC()
	return &u, tokenID, nil
}

// TouchAPIToken records a use of the token; it writes at most once a minute per token.
func (s *Store) TouchAPIToken(ctx context.Context, tokenID int64) error {
	t := now()
	_, err := s.w.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, t, tokenID, t-60)
	if err != nil {
		return fmt.Errorf("db: touch token %d: %w", tokenID, err)
	}
	return nil
}

// ListAPITokens lists a user's tokens, newest first.
func (s *Store) ListAPITokens(ctx context.Context, userID int64) ([]*APIToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, user_id, name, prefix, created_at, last_used_at FROM api_tokens WHERE user_id = ? ORDER BY id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("db: list tokens of user %d: %w", userID, err)
	}
	defer rows.Close()
	var out []*APIToken
	for rows.Next() {
		var tk APIToken
		var created int64
		var used sql.NullInt64
		if err := rows.Scan(&tk.ID, &tk.UserID, &tk.Name, &tk.Prefix, &created, &used); err != nil {
			return nil, fmt.Errorf("db: list tokens of user %d: %w", userID, err)
		}
		tk.CreatedAt = time.Unix(created, 0).UTC()
		if used.Valid {
			tk.LastUsedAt = time.Unix(used.Int64, 0).UTC()
		}
		out = append(out, &tk)
	}
	return out, rows.Err()
}

// DeleteAPIToken revokes one of a user's tokens.
func (s *Store) DeleteAPIToken(ctx context.Context, userID, tokenID int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = ? AND user_id = ?`, tokenID, userID)
	if err != nil {
		return fmt.Errorf("db: delete token %d: %w", tokenID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("db: delete token %d: %w", tokenID, ErrNotFound)
	}
	return nil
}
