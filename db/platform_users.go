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
	WHERE state IN ('creating', 'active') AND project_id IN (SELECT project_id FROM project_members WHERE user_id = ?)`

// PutUser creates the user with in.UUID, or updates the user that has it, in one
// transaction, and reports whether it created one. It is what a directory sync replays,
// so writing the same values twice changes nothing. A taken username is ErrConflict; a
// uuid that names a staff account is ErrStaffAccount (even when nothing would change); a
// user the platform sync owns is *OwnedError. Effects: a new user gets a profile (when
// rules.Domain is known); a changed full name re-queues the profile (its display name);
// activation or deactivation queues a member re-sync of the user's rooms and the
// homeserver side of the account (deactivation: sign out and lock; activation: unlock),
// and deactivation revokes the user's sessions and tokens.
func (s *Store) PutUser(ctx context.Context, in DirectoryUser, rules ProfileRules) (*User, bool, error) {
	var created bool
	var out *User
	if in.UUID == "" {
		in.UUID = NewUUID()
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if _, created, _, err = putUserTx(ctx, tx, in, rules, SourceAPI); err != nil {
			return err
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

// putUserTx creates or updates the user with in.UUID as source writes it (see PutUser)
// and reports whether it created one and whether anything changed.
func putUserTx(ctx context.Context, tx *sql.Tx, in DirectoryUser, rules ProfileRules, source string) (id int64, created, changed bool, err error) {
	var old *User
	u, err := scanUser(queryRowTx(ctx, tx, `SELECT `+userColumns+` FROM users WHERE uuid = ?`, in.UUID))
	switch {
	case err == nil && u.IsStaff:
		return 0, false, false, fmt.Errorf("db: put user %s: %w", in.UUID, ErrStaffAccount)
	case err == nil && u.Source != SourceAPI && source == SourceAPI:
		return 0, false, false, &OwnedError{Kind: "user", UUID: in.UUID, Source: u.Source}
	case err == nil:
		old = u
	case !errors.Is(err, sql.ErrNoRows):
		return 0, false, false, fmt.Errorf("db: get user %s: %w", in.UUID, err)
	}
	t := now()
	if old == nil {
		res, err := execTx(ctx, tx, `INSERT INTO users (uuid, username, email, full_name, is_staff, is_active, password_hash, source, created_at, modified_at)
			VALUES (?, ?, ?, ?, 0, ?, '', ?, ?, ?)`, in.UUID, in.Username, in.Email, in.FullName, in.IsActive, source, t, t)
		if isUniqueViolation(err) {
			return 0, false, false, fmt.Errorf("db: create user %q: %w", in.Username, ErrConflict)
		}
		if err != nil {
			return 0, false, false, fmt.Errorf("db: create user %q: %w", in.Username, err)
		}
		id, _ := res.LastInsertId()
		if in.IsActive {
			if err := ensureProfileOnceTx(ctx, tx, id, rules); err != nil {
				return 0, false, false, err
			}
		}
		return id, true, true, nil
	}
	same := old.Username == in.Username && old.Email == in.Email && old.FullName == in.FullName && old.IsActive == in.IsActive
	if same && old.Source == source {
		return old.ID, false, false, nil
	}
	_, err = execTx(ctx, tx, `UPDATE users SET username = ?, email = ?, full_name = ?, is_active = ?, source = ?, modified_at = ? WHERE id = ?`,
		in.Username, in.Email, in.FullName, in.IsActive, source, t, old.ID)
	if isUniqueViolation(err) {
		return 0, false, false, fmt.Errorf("db: update user %s: %w", in.UUID, ErrConflict)
	}
	if err != nil {
		return 0, false, false, fmt.Errorf("db: update user %s: %w", in.UUID, err)
	}
	if old.FullName != in.FullName {
		if _, err := tx.ExecContext(ctx, `UPDATE matrix_user_profiles SET provisioned = 0, next_attempt_at = 0, attempts = 0 WHERE user_id = ?`, old.ID); err != nil {
			return 0, false, false, fmt.Errorf("db: re-queue profile of user %s: %w", in.UUID, err)
		}
	}
	if old.IsActive != in.IsActive {
		if err := userActiveChangedTx(ctx, tx, old.ID, in.IsActive, rules); err != nil {
			return 0, false, false, err
		}
	}
	return old.ID, false, true, nil
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

// SkippedUser is a platform user the sync could not write, and why.
type SkippedUser struct {
	UUID     string
	Username string
	Reason   string
}

// SyncPutUsers writes the users the platform sync found new or changed as rows it owns
// (adopting rows the API made with the same uuid), in one transaction. A user who
// cannot be written (a staff account's uuid, a username another account holds) is
// skipped and reported, and the others are written: the platform's usernames are unique,
// but this server's staff accounts share the table. Usernames that move from one user
// to another in the same run (a swap) are freed first, so the order does not matter.
func (s *Store) SyncPutUsers(ctx context.Context, in []DirectoryUser, rules ProfileRules) (SyncCount, []SkippedUser, error) {
	var n SyncCount
	var skipped []SkippedUser
	if len(in) == 0 {
		return n, nil, nil
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		ctx, done := withTxCache(ctx, tx)
		defer done()
		n, skipped = SyncCount{}, nil
		// Free the usernames that change: "~" never appears in a platform username.
		renamed := map[string]string{} // uuid -> old username
		for _, u := range in {
			var old string
			err := queryRowTx(ctx, tx, `SELECT username FROM users WHERE uuid = ? AND is_staff = 0`, u.UUID).Scan(&old)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("db: get user %s: %w", u.UUID, err)
			}
			if old != u.Username {
				if _, err := tx.ExecContext(ctx, `UPDATE users SET username = ? WHERE uuid = ?`, "~"+u.UUID, u.UUID); err != nil {
					return fmt.Errorf("db: free username of user %s: %w", u.UUID, err)
				}
				renamed[u.UUID] = old
			}
		}
		for _, u := range in {
			if _, err := execTx(ctx, tx, `SAVEPOINT sync_user`); err != nil {
				return fmt.Errorf("db: savepoint: %w", err)
			}
			_, created, changed, err := putUserTx(ctx, tx, u, rules, SourceWaldur)
			if errors.Is(err, ErrConflict) || errors.Is(err, ErrStaffAccount) {
				if _, err := execTx(ctx, tx, `ROLLBACK TO sync_user`); err != nil {
					return fmt.Errorf("db: roll back to savepoint: %w", err)
				}
				reason := "the username is taken by another account"
				if errors.Is(err, ErrStaffAccount) {
					reason = "the uuid is a staff account's"
				}
				skipped = append(skipped, SkippedUser{UUID: u.UUID, Username: u.Username, Reason: reason})
				if old, ok := renamed[u.UUID]; ok { // put the old name back if it is still free
					if _, err := tx.ExecContext(ctx, `UPDATE OR IGNORE users SET username = ? WHERE uuid = ?`, old, u.UUID); err != nil {
						return fmt.Errorf("db: restore username of user %s: %w", u.UUID, err)
					}
				}
			} else if err != nil {
				return err
			}
			if _, err := execTx(ctx, tx, `RELEASE sync_user`); err != nil {
				return fmt.Errorf("db: release savepoint: %w", err)
			}
			switch {
			case err != nil:
			case created:
				n.Created++
			case changed:
				n.Updated++
			}
		}
		return nil
	})
	return n, skipped, err
}

// SyncDeactivateUsers deactivates the users the platform no longer has, in one
// transaction: only active rows the sync owns. They leave every room; their rows stay,
// so a user who comes back keeps their Matrix account.
func (s *Store) SyncDeactivateUsers(ctx context.Context, uuids []string, rules ProfileRules) (int, error) {
	n := 0
	if len(uuids) == 0 {
		return 0, nil
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		for _, u := range uuids {
			var id int64
			err := tx.QueryRowContext(ctx, `UPDATE users SET is_active = 0, modified_at = ? WHERE uuid = ? AND source = ? AND is_active = 1 AND is_staff = 0
				RETURNING id`, now(), u, SourceWaldur).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("db: deactivate user %s: %w", u, err)
			}
			if err := userActiveChangedTx(ctx, tx, id, false, rules); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
