package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// DirectoryUser is a platform user as the platform's automation pushes it.
type DirectoryUser struct {
	UUID     string // 32 hex digits; "" = generate one
	Username string
	Email    string
	FullName string
	IsActive bool
}

// sqlDirtyRoomsOfUser queues a member re-sync of every room of the user's projects. A
// room being created is marked too, so a sync already under way runs again.
const sqlDirtyRoomsOfUser = `UPDATE matrix_rooms SET members_dirty = 1, next_attempt_at = 0
	WHERE state IN ('creating', 'active') AND project_id IN (SELECT project_id FROM project_roles WHERE user_id = ?)`

// PutUser creates the user with in.UUID, or updates the user that has it, in one
// transaction, and reports whether it created one. It is what a directory sync replays,
// so writing the same values twice changes nothing. A taken username is ErrConflict; a
// uuid that names a staff account is ErrStaffAccount (even when nothing would change).
// Effects: a new user gets a profile (when rules.Domain is known); a changed full name
// re-queues the profile (its display name); activation or deactivation queues a member
// re-sync of the user's rooms and the homeserver side of the account (deactivation: sign
// out and lock; activation: unlock), and deactivation revokes the user's sessions and
// tokens.
func (s *Store) PutUser(ctx context.Context, in DirectoryUser, rules ProfileRules) (*User, bool, error) {
	var created bool
	var out *User
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var old *User
		if in.UUID != "" {
			u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE uuid = ?`, in.UUID))
			switch {
			case err == nil && u.IsStaff:
				return fmt.Errorf("db: put user %s: %w", in.UUID, ErrStaffAccount)
			case err == nil:
				old = u
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("db: get user %s: %w", in.UUID, err)
			}
		} else {
			in.UUID = NewUUID()
		}
		t := now()
		if old == nil {
			created = true
			res, err := tx.ExecContext(ctx, `INSERT INTO users (uuid, username, email, full_name, is_staff, is_active, password_hash, created_at, modified_at)
				VALUES (?, ?, ?, ?, 0, ?, '', ?, ?)`, in.UUID, in.Username, in.Email, in.FullName, in.IsActive, t, t)
			if isUniqueViolation(err) {
				return fmt.Errorf("db: create user %q: %w", in.Username, ErrConflict)
			}
			if err != nil {
				return fmt.Errorf("db: create user %q: %w", in.Username, err)
			}
			id, _ := res.LastInsertId()
			if in.IsActive {
				if _, err := ensureProfileTx(ctx, tx, id, rules); err != nil {
					return err
				}
			}
		} else {
			same := old.Username == in.Username && old.Email == in.Email && old.FullName == in.FullName && old.IsActive == in.IsActive
			if !same {
				_, err := tx.ExecContext(ctx, `UPDATE users SET username = ?, email = ?, full_name = ?, is_active = ?, modified_at = ? WHERE id = ?`,
					in.Username, in.Email, in.FullName, in.IsActive, t, old.ID)
				if isUniqueViolation(err) {
					return fmt.Errorf("db: update user %s: %w", in.UUID, ErrConflict)
				}
				if err != nil {
					return fmt.Errorf("db: update user %s: %w", in.UUID, err)
				}
			}
			if old.FullName != in.FullName {
				if _, err := tx.ExecContext(ctx, `UPDATE matrix_user_profiles SET provisioned = 0, next_attempt_at = 0, attempts = 0 WHERE user_id = ?`, old.ID); err != nil {
					return fmt.Errorf("db: re-queue profile of user %s: %w", in.UUID, err)
				}
			}
			if old.IsActive != in.IsActive {
				if err := userActiveChangedTx(ctx, tx, old.ID, in.IsActive, rules); err != nil {
					return err
				}
			}
		}
		u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE uuid = ?`, in.UUID))
		if err != nil {
			return fmt.Errorf("db: get user %s: %w", in.UUID, err)
		}
		out = u
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// userActiveChangedTx applies the effects of (de)activating a user.
func userActiveChangedTx(ctx context.Context, tx *sql.Tx, userID int64, active bool, rules ProfileRules) error {
	if _, err := tx.ExecContext(ctx, sqlDirtyRoomsOfUser, userID); err != nil {
		return fmt.Errorf("db: queue rooms of user %d: %w", userID, err)
	}
	if err := accountActiveChangedTx(ctx, tx, userID, active); err != nil {
		return err
	}
	if active {
		_, err := ensureProfileTx(ctx, tx, userID, rules)
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("db: revoke sessions of user %d: %w", userID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("db: revoke tokens of user %d: %w", userID, err)
	}
	return nil
}

// UserFilter selects users for ListUsers.
type UserFilter struct {
	Search   string // substring of username, full name or email
	IsActive *bool  // nil = both
	// PlatformOnly leaves staff accounts out (for callers who may not see them).
	PlatformOnly bool
	Page         Page
}

// ListUsers returns one page of users ordered by username, and the total count.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]*User, int, error) {
	where := []string{"1 = 1"}
	var args []any
	if f.Search != "" {
		where = append(where, `(username LIKE ? ESCAPE '\' OR full_name LIKE ? ESCAPE '\' OR email LIKE ? ESCAPE '\')`)
		pat := likePattern(f.Search)
		args = append(args, pat, pat, pat)
	}
	if f.IsActive != nil {
		where = append(where, `is_active = ?`)
		args = append(args, boolInt(*f.IsActive))
	}
	if f.PlatformOnly {
		where = append(where, `is_staff = 0`)
	}
	cond := ` FROM users WHERE ` + strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)`+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("db: count users: %w", err)
	}
	limit, offset := f.Page.limitOffset()
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+cond+` ORDER BY username LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list users: %w", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("db: list users: %w", err)
		}
		out = append(out, u)
	}
	return out, total, rows.Err()
}
