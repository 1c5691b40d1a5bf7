package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"
)

// Profile is a platform user's Matrix account as the appservice manages it. No Matrix
// access token is ever stored: the appservice acts as the user with its as_token.
type Profile struct {
	UserID        int64
	UserUUID      string
	Username      string
	FullName      string
	IsActive      bool
	MatrixUserID  id.UserID
	Provisioned   bool
	ProvisionedAt time.Time // zero when never
	LastSyncedAt  time.Time // zero when never
	Attempts      int
	LastError     string
	CreatedAt     time.Time
}

// maxUserIDLen is the Matrix limit on a user id's length, sigil and domain included.
const maxUserIDLen = 255

// Localpart derives a Matrix localpart from a platform username (or the user's uuid when
// the username is empty): lowercased, every character outside [a-z0-9._=-/] replaced by
// "_". Collisions are resolved by AssignMatrixID, not here.
func Localpart(username, uuid string) string {
	s := username
	if s == "" {
		s = uuid
	}
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '=', r == '-', r == '/':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// ProfileRules are what deriving a Matrix user id needs from the settings.
type ProfileRules struct {
	Domain       string // homeserver server_name; no profile can be made without it
	BotLocalpart string // never given to a user
}

// assignMatrixID picks "@<localpart>:<domain>" for a user: the derived localpart, or with
// a numeric suffix (_2, _3, ...) when that id is taken by another profile or is the bot's.
func assignMatrixID(ctx context.Context, tx *sql.Tx, base string, rules ProfileRules) (id.UserID, error) {
	// Leave room for "@", ":<domain>" and a suffix within the 255-character limit.
	if room := maxUserIDLen - len(rules.Domain) - 2 - 8; len(base) > room {
		base = base[:max(room, 1)]
	}
	for n := 1; n < 100000; n++ {
		lp := base
		if n > 1 {
			lp = base + "_" + strconv.Itoa(n)
		}
		if lp == rules.BotLocalpart {
			continue
		}
		mxid := id.NewUserID(lp, rules.Domain)
		var one int
		err := queryRowTx(ctx, tx, `SELECT 1 FROM matrix_user_profiles WHERE matrix_user_id = ?`, mxid).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return mxid, nil
		}
		if err != nil {
			return "", fmt.Errorf("db: look up matrix id %s: %w", mxid, err)
		}
	}
	return "", fmt.Errorf("db: no free matrix id for %q", base)
}

// ensureProfileTx creates the user's profile when it has none and the domain is known.
// It returns the profile's Matrix user id ("" when it could not be made yet).
func ensureProfileTx(ctx context.Context, tx *sql.Tx, userID int64, rules ProfileRules) (id.UserID, error) {
	var mxid id.UserID
	var username, uuid string
	err := queryRowTx(ctx, tx, `SELECT COALESCE(p.matrix_user_id, ''), u.username, u.uuid FROM users u
		LEFT JOIN matrix_user_profiles p ON p.user_id = u.id WHERE u.id = ?`, userID).Scan(&mxid, &username, &uuid)
	if err != nil {
		return "", notFound(err, fmt.Sprintf("get profile of user %d", userID))
	}
	if mxid != "" || rules.Domain == "" {
		return mxid, nil
	}
	mxid, err = assignMatrixID(ctx, tx, Localpart(username, uuid), rules)
	if err != nil {
		return "", err
	}
	if _, err := execTx(ctx, tx, `INSERT INTO matrix_user_profiles (user_id, matrix_user_id, created_at) VALUES (?, ?, ?)`,
		userID, mxid, now()); err != nil {
		return "", fmt.Errorf("db: create profile of user %d: %w", userID, err)
	}
	return mxid, nil
}

// EnsureProfile creates a user's profile (deriving its Matrix user id) unless it has one,
// and returns the Matrix user id; "" when the domain is not known yet.
func (s *Store) EnsureProfile(ctx context.Context, userID int64, rules ProfileRules) (id.UserID, error) {
	var mxid id.UserID
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		mxid, err = ensureProfileTx(ctx, tx, userID, rules)
		return err
	})
	return mxid, err
}

// EnsureProfiles creates the missing profiles of platform users: every active non-staff
// user, and every active staff user who holds a project role. It returns how many it made.
func (s *Store) EnsureProfiles(ctx context.Context, rules ProfileRules) (int, error) {
	if rules.Domain == "" {
		return 0, nil
	}
	var ids []int64
	rows, err := s.r.QueryContext(ctx, `SELECT u.id FROM users u
		WHERE u.is_active = 1 AND NOT EXISTS (SELECT 1 FROM matrix_user_profiles p WHERE p.user_id = u.id)
		  AND (u.is_staff = 0 OR EXISTS (SELECT 1 FROM project_members r WHERE r.user_id = u.id))
		ORDER BY u.id LIMIT 1000`)
	if err != nil {
		return 0, fmt.Errorf("db: find users without profile: %w", err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("db: find users without profile: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("db: find users without profile: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := ensureProfileTx(ctx, tx, id, rules); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(ids), nil
}

const profileColumns = `p.user_id, u.uuid, u.username, u.full_name, u.is_active, p.matrix_user_id, p.provisioned,
	p.provisioned_at, p.last_synced_at, p.attempts, p.last_error, p.created_at`

func scanProfile(row interface{ Scan(...any) error }) (*Profile, error) {
	var p Profile
	var provAt, syncAt sql.NullInt64
	var created int64
	if err := row.Scan(&p.UserID, &p.UserUUID, &p.Username, &p.FullName, &p.IsActive, &p.MatrixUserID, &p.Provisioned,
		&provAt, &syncAt, &p.Attempts, &p.LastError, &created); err != nil {
		return nil, err
	}
	if provAt.Valid {
		p.ProvisionedAt = time.Unix(provAt.Int64, 0).UTC()
	}
	if syncAt.Valid {
		p.LastSyncedAt = time.Unix(syncAt.Int64, 0).UTC()
	}
	p.CreatedAt = time.Unix(created, 0).UTC()
	return &p, nil
}

// ProfileFilter selects profiles for ListProfiles.
type ProfileFilter struct {
	Search      string // substring of username, full name or Matrix user id
	Provisioned *bool  // nil = both
	Page        Page
}

// ListProfiles returns one page of profiles ordered by username, and the total count.
func (s *Store) ListProfiles(ctx context.Context, f ProfileFilter) ([]*Profile, int, error) {
	where := []string{"1 = 1"}
	var args []any
	if f.Search != "" {
		where = append(where, `(u.username LIKE ? ESCAPE '\' OR u.full_name LIKE ? ESCAPE '\' OR p.matrix_user_id LIKE ? ESCAPE '\')`)
		pat := likePattern(f.Search)
		args = append(args, pat, pat, pat)
	}
	if f.Provisioned != nil {
		where = append(where, `p.provisioned = ?`)
		args = append(args, boolInt(*f.Provisioned))
	}
	from := ` FROM matrix_user_profiles p JOIN users u ON u.id = p.user_id WHERE ` + strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)`+from, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("db: count profiles: %w", err)
	}
	limit, offset := f.Page.limitOffset()
	rows, err := s.r.QueryContext(ctx, `SELECT `+profileColumns+from+` ORDER BY u.username, p.user_id LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list profiles: %w", err)
	}
	defer rows.Close()
	var out []*Profile
	for rows.Next() {
		p, err := scanProfile(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("db: list profiles: %w", err)
		}
		out = append(out, p)
	}
	return out, total, rows.Err()
}

// ProfileByUserID returns a user's profile.
func (s *Store) ProfileByUserID(ctx context.Context, userID int64) (*Profile, error) {
	p, err := scanProfile(s.r.QueryRowContext(ctx, `SELECT `+profileColumns+` FROM matrix_user_profiles p
		JOIN users u ON u.id = p.user_id WHERE p.user_id = ?`, userID))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("get profile of user %d", userID))
	}
	return p, nil
}

// DueProfiles returns up to limit active users' profiles waiting to be provisioned whose
// next attempt is due at unix time at.
func (s *Store) DueProfiles(ctx context.Context, at int64, limit int) ([]*Profile, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+profileColumns+` FROM matrix_user_profiles p
		JOIN users u ON u.id = p.user_id
		WHERE p.provisioned = 0 AND p.next_attempt_at <= ? AND u.is_active = 1
		ORDER BY p.next_attempt_at, p.user_id LIMIT ?`, at, limit)
	if err != nil {
		return nil, fmt.Errorf("db: due profiles: %w", err)
	}
	defer rows.Close()
	var out []*Profile
	for rows.Next() {
		p, err := scanProfile(rows)
		if err != nil {
			return nil, fmt.Errorf("db: due profiles: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// MarkProfileProvisioned records that the user's account exists on the homeserver with
// displayName. If the user's full name changed meanwhile, the profile stays pending so
// the new name is pushed too; ok reports whether it was marked.
func (s *Store) MarkProfileProvisioned(ctx context.Context, userID int64, displayName string) (bool, error) {
	t := now()
	res, err := s.w.ExecContext(ctx, `UPDATE matrix_user_profiles
		SET provisioned = 1, provisioned_at = COALESCE(provisioned_at, ?), last_synced_at = ?, attempts = 0, next_attempt_at = 0, last_error = ''
		WHERE user_id = ? AND (SELECT full_name FROM users WHERE id = ?) = ?`, t, t, userID, userID, displayName)
	if err != nil {
		return false, fmt.Errorf("db: mark profile of user %d provisioned: %w", userID, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// FailProfile records a failed provisioning attempt and when to try again.
func (s *Store) FailProfile(ctx context.Context, userID int64, msg string, backoff func(attempts int) time.Duration) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var attempts int
		if err := tx.QueryRowContext(ctx, `SELECT attempts FROM matrix_user_profiles WHERE user_id = ?`, userID).Scan(&attempts); err != nil {
			return notFound(err, fmt.Sprintf("fail profile of user %d", userID))
		}
		attempts++
		next := time.Now().Add(backoff(attempts))
		_, err := tx.ExecContext(ctx, `UPDATE matrix_user_profiles SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE user_id = ?`,
			attempts, ceilUnix(next), msg, userID)
		if err != nil {
			return fmt.Errorf("db: fail profile of user %d: %w", userID, err)
		}
		return nil
	})
}

// ceilUnix rounds t up to whole unix seconds, so a backoff is never cut short.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
