package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

// ErrConflict is returned when a write would break a uniqueness rule (a taken username, say).
var ErrConflict = errors.New("conflict")

// ErrStaffAccount is returned by a directory write (PutUser) that names a staff account.
// Staff accounts are the operators of this server, not platform users: they are managed
// on the dashboard's Account page and with "matrixas createstaff", never by the
// platform's directory sync, which could otherwise rename or lock them out.
var ErrStaffAccount = errors.New("staff accounts are managed on the Account page or with matrixas createstaff")

// ErrLastStaff is returned for a deactivation that would leave no active staff account:
// nobody could then sign in to the dashboard.
var ErrLastStaff = errors.New("this is the last active staff account")

// User is a platform user; staff users may log in to the dashboard.
type User struct {
	ID           int64
	UUID         string
	Username     string
	Email        string
	FullName     string
	IsStaff      bool
	IsActive     bool
	PasswordHash string
	Source       string // SourceAPI, or SourceWaldur when the platform sync owns the user
	CreatedAt    time.Time
	ModifiedAt   time.Time
}

// NewUUID returns a random version-4 UUID in the 32-hex-digit form the platform uses.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// NormalizeUUID accepts a UUID with or without dashes, in any case, and returns the
// 32-lowercase-hex form; ok is false when s is not a UUID.
func NormalizeUUID(s string) (string, bool) {
	s = strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(s) != 32 {
		return "", false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", false
	}
	return s, true
}

const userColumns = `id, uuid, username, email, full_name, is_staff, is_active, password_hash, source, created_at, modified_at`

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	var created, modified int64
	if err := row.Scan(&u.ID, &u.UUID, &u.Username, &u.Email, &u.FullName, &u.IsStaff, &u.IsActive, &u.PasswordHash, &u.Source, &created, &modified); err != nil {
		return nil, err
	}
	u.CreatedAt = time.Unix(created, 0).UTC()
	u.ModifiedAt = time.Unix(modified, 0).UTC()
	return &u, nil
}

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

// CreateUser inserts u, filling ID, UUID (when empty) and timestamps. A taken username or
// uuid is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	if u.UUID == "" {
		u.UUID = NewUUID()
	}
	t := now()
	res, err := s.w.ExecContext(ctx, `INSERT INTO users (uuid, username, email, full_name, is_staff, is_active, password_hash, created_at, modified_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.UUID, u.Username, u.Email, u.FullName, u.IsStaff, u.IsActive, u.PasswordHash, t, t)
	if isUniqueViolation(err) {
		return fmt.Errorf("db: create user %q: %w", u.Username, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("db: create user %q: %w", u.Username, err)
	}
	u.ID, _ = res.LastInsertId()
	u.CreatedAt = time.Unix(t, 0).UTC()
	u.ModifiedAt = u.CreatedAt
	return nil
}

// UserByID returns the user with the given row id.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("get user %d", id))
	}
	return u, nil
}

// UserByUsername returns the user with the given username.
func (s *Store) UserByUsername(ctx context.Context, username string) (*User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("get user %q", username))
	}
	return u, nil
}

// UserByUUID returns the user with the given uuid (32 hex digits).
func (s *Store) UserByUUID(ctx context.Context, uuid string) (*User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE uuid = ?`, uuid))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("get user %s", uuid))
	}
	return u, nil
}

// CountStaff counts active staff users.
func (s *Store) CountStaff(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE is_staff = 1 AND is_active = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("db: count staff: %w", err)
	}
	return n, nil
}

// keepOneStaffTx refuses (ErrLastStaff) to deactivate userID when it is the only
// active staff account.
func keepOneStaffTx(ctx context.Context, tx *sql.Tx, userID int64) error {
	var lastStaff bool
	err := tx.QueryRowContext(ctx, `SELECT is_staff = 1 AND is_active = 1
		AND NOT EXISTS (SELECT 1 FROM users WHERE is_staff = 1 AND is_active = 1 AND id != ?)
		FROM users WHERE id = ?`, userID, userID).Scan(&lastStaff)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // SetUserActive reports the missing user
	case err != nil:
		return fmt.Errorf("db: count other staff of user %d: %w", userID, err)
	case lastStaff:
		return fmt.Errorf("db: deactivate user %d: %w", userID, ErrLastStaff)
	}
	return nil
}

// ListStaff lists staff users by username.
func (s *Store) ListStaff(ctx context.Context) ([]*User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE is_staff = 1 ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("db: list staff: %w", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("db: list staff: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetPassword stores a new password hash and revokes every session of the user, in one
// transaction, so a changed password logs out everyone holding the old one.
func (s *Store) SetPassword(ctx context.Context, userID int64, hash string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, modified_at = ? WHERE id = ?`, hash, now(), userID)
		if err != nil {
			return fmt.Errorf("db: set password of user %d: %w", userID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("db: set password of user %d: %w", userID, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
			return fmt.Errorf("db: revoke sessions of user %d: %w", userID, err)
		}
		return nil
	})
}

// UpgradePasswordHash replaces a user's password hash by newHash, a hash of the same
// password at a higher cost, when the stored hash is still oldHash (a password changed
// meanwhile wins; nothing happens then). Unlike SetPassword it keeps the user's sessions:
// the password is the same.
func (s *Store) UpgradePasswordHash(ctx context.Context, userID int64, oldHash, newHash string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?`, newHash, userID, oldHash); err != nil {
		return fmt.Errorf("db: upgrade password hash of user %d: %w", userID, err)
	}
	return nil
}

// SetUserActive activates or deactivates a user; deactivation also revokes the user's
// sessions and API tokens. Deactivating the last active staff account is ErrLastStaff:
// the count is read in the same write transaction, so two staff users deactivating each
// other at once cannot both succeed.
func (s *Store) SetUserActive(ctx context.Context, userID int64, active bool) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if !active {
			if err := keepOneStaffTx(ctx, tx, userID); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET is_active = ?, modified_at = ? WHERE id = ?`, active, now(), userID)
		if err != nil {
			return fmt.Errorf("db: set active of user %d: %w", userID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("db: set active of user %d: %w", userID, ErrNotFound)
		}
		if active {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
			return fmt.Errorf("db: revoke sessions of user %d: %w", userID, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ?`, userID); err != nil {
			return fmt.Errorf("db: revoke tokens of user %d: %w", userID, err)
		}
		return nil
	})
}
