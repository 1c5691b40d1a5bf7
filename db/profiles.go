package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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
	// Registration says who made the account (accounts.go).
	Registration Registration
	// SignedOut: the user is deactivated and their devices were signed out on the
	// homeserver; Locked: a lock of the account was sent there and not lifted since.
	SignedOut bool
	Locked    bool
}

// maxUserIDLen is the Matrix limit on a user id's length, sigil and domain included.
const maxUserIDLen = 255

// The values of MATRIX_USER_ID_FORMAT: what a user's localpart is made from.
const (
	FormatUsername   = "username"    // the username (the uuid when it is empty)
	FormatUUID       = "uuid"        // the uuid, 32 hex digits
	FormatEmailLocal = "email_local" // the email address before the @ (the username when there is none)
)

// Localpart derives a Matrix localpart for a platform user in the given format
// (FormatUsername when empty or unknown), escaped as the reference escapes it:
// lowercased; a-z, 0-9 and . _ - / + kept; "=" written "=3d"; any other ASCII
// character "_"; each UTF-8 byte of any other character "=xx" (lowercase hex), as is
// each byte that is not valid UTF-8. The result always matches the Matrix user-id
// grammar. Two users may derive the same localpart ("Bob" and "bob", "a b" and "a_b"):
// AssignMatrixID resolves that with a suffix, never here.
func Localpart(format, username, uuid, email string) string {
	src := username
	switch format {
	case FormatUUID:
		src = strings.ReplaceAll(strings.ToLower(uuid), "-", "")
	case FormatEmailLocal:
		if at := strings.LastIndexByte(email, '@'); at > 0 {
			src = email[:at]
		}
	}
	if src == "" {
		src = strings.ReplaceAll(strings.ToLower(uuid), "-", "")
	}
	if src == "" {
		src = "user"
	}
	return escapeLocalpart(src)
}

// escapeLocalpart applies Localpart's escaping to s.
func escapeLocalpart(s string) string {
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	escape := func(c byte) { b.WriteByte('='); b.WriteByte(hexDigits[c>>4]); b.WriteByte(hexDigits[c&0xf]) }
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			escape(s[i]) // not UTF-8: the byte itself
			i++
			continue
		}
		i += size
		r = unicode.ToLower(r)
		if r >= utf8.RuneSelf {
			var buf [utf8.UTFMax]byte
			for _, c := range buf[:utf8.EncodeRune(buf[:], r)] {
				escape(c)
			}
			continue
		}
		switch c := byte(r); {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-', c == '/', c == '+':
			b.WriteByte(c)
		case c == '=':
			b.WriteString("=3d")
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// ProfileRules are what deriving a Matrix user id needs from the settings
// (MatrixSettings.ProfileRules).
type ProfileRules struct {
	Domain       string // homeserver server_name; no profile can be made without it
	BotLocalpart string // never given to a user
	Format       string // MATRIX_USER_ID_FORMAT; "" = FormatUsername
}

// assignMatrixID picks "@<localpart>:<domain>" for a user: the derived localpart, or with
// a numeric suffix (_2, _3, ...) when that id is taken by another profile or is the bot's.
func assignMatrixID(ctx context.Context, tx *sql.Tx, base string, rules ProfileRules) (id.UserID, error) {
	// Leave room for "@", ":<domain>" and a suffix within the 255-character limit,
	// without cutting an "=xx" escape in two.
	if room := maxUserIDLen - len(rules.Domain) - 2 - 8; len(base) > room {
		base = base[:max(room, 1)]
		if i := strings.LastIndexByte(base, '='); i > 0 && i >= len(base)-2 {
			base = base[:i]
		}
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
	var username, uuid, email string
	err := queryRowTx(ctx, tx, `SELECT COALESCE(p.matrix_user_id, ''), u.username, u.uuid, u.email FROM users u
		LEFT JOIN matrix_user_profiles p ON p.user_id = u.id WHERE u.id = ?`, userID).Scan(&mxid, &username, &uuid, &email)
	if err != nil {
		return "", notFound(err, fmt.Sprintf("get profile of user %d", userID))
	}
	if mxid != "" || rules.Domain == "" {
		return mxid, nil
	}
	mxid, err = assignMatrixID(ctx, tx, Localpart(rules.Format, username, uuid, email), rules)
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
	p.provisioned_at, p.last_synced_at, p.attempts, p.last_error, p.created_at, p.registration, p.deactivation = 2, p.locked`

func scanProfile(row interface{ Scan(...any) error }) (*Profile, error) {
	var p Profile
	var provAt, syncAt sql.NullInt64
	var created int64
	if err := row.Scan(&p.UserID, &p.UserUUID, &p.Username, &p.FullName, &p.IsActive, &p.MatrixUserID, &p.Provisioned,
		&provAt, &syncAt, &p.Attempts, &p.LastError, &created, &p.Registration, &p.SignedOut, &p.Locked); err != nil {
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
		WHERE p.provisioned = 0 AND p.next_attempt_at <= ? AND u.is_active = 1 AND p.registration != 'refused'
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
// displayName (and, after a reactivation, is unlocked). If the user's full name changed
// meanwhile, the profile stays pending so the new name is pushed too, and a user
// deactivated meanwhile is left to the deactivation; ok reports whether it was marked.
func (s *Store) MarkProfileProvisioned(ctx context.Context, userID int64, displayName string) (bool, error) {
	t := now()
	res, err := s.w.ExecContext(ctx, `UPDATE matrix_user_profiles
		SET provisioned = 1, provisioned_at = COALESCE(provisioned_at, ?), last_synced_at = ?, attempts = 0, next_attempt_at = 0, last_error = '',
			locked = 0
		WHERE user_id = ? AND (SELECT full_name = ? AND is_active = 1 FROM users WHERE id = ?)`, t, t, userID, displayName, userID)
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
