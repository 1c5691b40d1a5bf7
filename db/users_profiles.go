package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/id"
)

// UserWithProfile is a user and their Matrix profile, if they have one, for the
// dashboard's users list.
type UserWithProfile struct {
	User
	MatrixUserID id.UserID // "" when the user has no profile (yet)
	Provisioned  bool
	ProfileError string // the last provisioning failure
}

// ListUsersWithProfiles is ListUsers with each user's profile in the same query (one
// LEFT JOIN rather than a lookup per row); the search also matches the Matrix user id.
func (s *Store) ListUsersWithProfiles(ctx context.Context, f UserFilter) ([]*UserWithProfile, int, error) {
	where := []string{"1 = 1"}
	var args []any
	if f.Search != "" {
		where = append(where, `(u.username LIKE ? ESCAPE '\' OR u.full_name LIKE ? ESCAPE '\' OR u.email LIKE ? ESCAPE '\'
			OR p.matrix_user_id LIKE ? ESCAPE '\')`)
		pat := likePattern(f.Search)
		args = append(args, pat, pat, pat, pat)
	}
	if f.IsActive != nil {
		where = append(where, `u.is_active = ?`)
		args = append(args, boolInt(*f.IsActive))
	}
	from := ` FROM users u LEFT JOIN matrix_user_profiles p ON p.user_id = u.id WHERE ` + strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)`+from, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("db: count users: %w", err)
	}
	limit, offset := f.Page.limitOffset()
	rows, err := s.r.QueryContext(ctx, `SELECT u.id, u.uuid, u.username, u.email, u.full_name, u.is_staff, u.is_active, u.password_hash,
		u.source, u.created_at, u.modified_at, p.matrix_user_id, p.provisioned, p.last_error`+from+` ORDER BY u.username LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list users: %w", err)
	}
	defer rows.Close()
	var out []*UserWithProfile
	for rows.Next() {
		var row UserWithProfile
		var mxid, lastErr sql.NullString
		var provisioned sql.NullBool
		u, err := scanUser(scanFunc(func(dest ...any) error {
			return rows.Scan(append(dest, &mxid, &provisioned, &lastErr)...)
		}))
		if err != nil {
			return nil, 0, fmt.Errorf("db: list users: %w", err)
		}
		u.PasswordHash = "" // never leaves the store for a list
		row.User = *u
		row.MatrixUserID, row.Provisioned, row.ProfileError = id.UserID(mxid.String), provisioned.Bool, lastErr.String
		out = append(out, &row)
	}
	return out, total, rows.Err()
}

// scanFunc adapts a func to scanUser's row interface.
type scanFunc func(dest ...any) error

// Scan calls f.
func (f scanFunc) Scan(dest ...any) error { return f(dest...) }
