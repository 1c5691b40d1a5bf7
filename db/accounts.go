package db

// The account columns of matrix_user_profiles (migration 0009): who made each Matrix
// account, so that an existing account is never silently taken over, and the homeserver
// side of a user's deactivation.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/id"
)

// Registration says who made a profile's Matrix account, as far as this server knows;
// it decides whether an existing account with the profile's ID may be used.
type Registration string

// The registrations. A registration request is recorded as sent before it leaves, so an
// answer lost to a crash or a timeout is told apart from an account that was there first:
// M_USER_IN_USE after a sent one is our own account; on the first attempt it is not.
const (
	RegistrationNone    Registration = ""        // never asked for
	RegistrationSent    Registration = "sent"    // asked; the answer never came
	RegistrationCreated Registration = "created" // made by this server
	RegistrationLinked  Registration = "linked"  // an existing account, linked on purpose by staff
	RegistrationRefused Registration = "refused" // existed before this server asked: not used until linked
)

// Ours reports whether the account is one this server may act for.
func (r Registration) Ours() bool { return r == RegistrationCreated || r == RegistrationLinked }

// ErrMatrixIDTaken is returned for a link that names a Matrix ID another user's profile has.
var ErrMatrixIDTaken = errors.New("the Matrix ID belongs to another user")

// ErrHasAccount is returned for a link that would replace a user's working account
// (provisioned, made or linked by this server) with another one.
var ErrHasAccount = errors.New("the user already has a working Matrix account")

// RegistrationStart is what BeginRegistration found before this attempt.
type RegistrationStart struct {
	Prior  Registration
	Locked bool // a lock was sent to the homeserver and not lifted since
}

// BeginRegistration is called before a registration request for the user's account is
// sent: a profile never asked for becomes RegistrationSent, committed before the request
// leaves. It returns the state found, which says how to read M_USER_IN_USE: ours when
// Prior is sent (an earlier answer was lost), created or linked; someone else's when it
// was none.
func (s *Store) BeginRegistration(ctx context.Context, userID int64) (RegistrationStart, error) {
	var st RegistrationStart
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT registration, locked FROM matrix_user_profiles WHERE user_id = ?`, userID).
			Scan(&st.Prior, &st.Locked); err != nil {
			return notFound(err, fmt.Sprintf("begin registration of user %d", userID))
		}
		if st.Prior != RegistrationNone {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE matrix_user_profiles SET registration = 'sent' WHERE user_id = ?`, userID); err != nil {
			return fmt.Errorf("db: begin registration of user %d: %w", userID, err)
		}
		return nil
	})
	return st, err
}

// FinishRegistration records the homeserver's answer to a registration begun with
// BeginRegistration: RegistrationCreated (made now, or found after a lost answer),
// RegistrationRefused (it existed before; msg, the way to link it, becomes the profile's
// error) or RegistrationNone (refused in a way that shows no account was made). Only a
// sent registration changes, so a link made meanwhile wins; it returns the state after.
func (s *Store) FinishRegistration(ctx context.Context, userID int64, to Registration, msg string) (Registration, error) {
	var after Registration
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE matrix_user_profiles SET registration = ?,
			last_error = CASE WHEN ? = 'refused' THEN ? ELSE last_error END WHERE user_id = ? AND registration = 'sent'`,
			to, to, msg, userID)
		if err != nil {
			return fmt.Errorf("db: finish registration of user %d: %w", userID, err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT registration FROM matrix_user_profiles WHERE user_id = ?`, userID).Scan(&after); err != nil {
			return notFound(err, fmt.Sprintf("finish registration of user %d", userID))
		}
		return nil
	})
	return after, err
}

// LinkAccount links the existing Matrix account mxid to the user on purpose (staff's
// link-matrix-account): the user's profile takes that ID (one is made when there is
// none), is marked linked and queued, and the user's rooms are queued for a member sync.
// Linking the ID the profile already has and uses changes nothing. Refused: the bot's ID
// (ErrMatrixIDTaken), an ID another user's profile has (ErrMatrixIDTaken), a different
// ID while the user's own account works (ErrHasAccount).
func (s *Store) LinkAccount(ctx context.Context, userID int64, mxid, botID id.UserID) (*Profile, error) {
	if mxid == botID {
		return nil, fmt.Errorf("db: link %s: it is the bot's: %w", mxid, ErrMatrixIDTaken)
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var other int64
		err := tx.QueryRowContext(ctx, `SELECT user_id FROM matrix_user_profiles WHERE matrix_user_id = ? AND user_id != ?`, mxid, userID).Scan(&other)
		switch {
		case err == nil:
			return fmt.Errorf("db: link %s to user %d: user %d has it: %w", mxid, userID, other, ErrMatrixIDTaken)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("db: link %s: %w", mxid, err)
		}
		var cur id.UserID
		var reg Registration
		var provisioned bool
		err = tx.QueryRowContext(ctx, `SELECT matrix_user_id, registration, provisioned FROM matrix_user_profiles WHERE user_id = ?`, userID).
			Scan(&cur, &reg, &provisioned)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO matrix_user_profiles (user_id, matrix_user_id, registration, created_at) VALUES (?, ?, 'linked', ?)`,
				userID, mxid, now()); err != nil {
				return fmt.Errorf("db: link %s to user %d: %w", mxid, userID, err)
			}
		case err != nil:
			return fmt.Errorf("db: link %s: %w", mxid, err)
		case cur == mxid && reg.Ours():
			return nil // already this user's, in use: nothing to do
		case cur != mxid && reg.Ours() && provisioned:
			return fmt.Errorf("db: link %s to user %d, who uses %s: %w", mxid, userID, cur, ErrHasAccount)
		default:
			if _, err := tx.ExecContext(ctx, `UPDATE matrix_user_profiles SET matrix_user_id = ?, registration = 'linked',
				provisioned = 0, attempts = 0, next_attempt_at = 0, last_error = '' WHERE user_id = ?`, mxid, userID); err != nil {
				return fmt.Errorf("db: link %s to user %d: %w", mxid, userID, err)
			}
		}
		if _, err := tx.ExecContext(ctx, sqlDirtyRoomsOfUser, userID); err != nil {
			return fmt.Errorf("db: queue rooms of user %d: %w", userID, err)
		}
		return nil
	})
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("db: link %s to user %d: %w", mxid, userID, ErrMatrixIDTaken)
	}
	if err != nil {
		return nil, err
	}
	return s.ProfileByUserID(ctx, userID)
}

// RefusedProfiles lists the profiles whose existing account was refused, by username
// (what link-matrix-account --all links).
func (s *Store) RefusedProfiles(ctx context.Context) ([]*Profile, error) {
	return s.queryProfiles(ctx, "refused profiles", `SELECT `+profileColumns+` FROM matrix_user_profiles p
		JOIN users u ON u.id = p.user_id WHERE p.registration = 'refused' ORDER BY u.username`)
}

// DueDeactivations returns up to limit profiles of deactivated users whose devices are
// still to be signed out and whose next attempt is due at unix time at. Only accounts
// this server made or was given are touched; a refused one is not ours to lock.
func (s *Store) DueDeactivations(ctx context.Context, at int64, limit int) ([]*Profile, error) {
	return s.queryProfiles(ctx, "due deactivations", `SELECT `+profileColumns+` FROM matrix_user_profiles p
		JOIN users u ON u.id = p.user_id
		WHERE p.deactivation = 1 AND p.next_attempt_at <= ? ORDER BY p.next_attempt_at, p.user_id LIMIT ?`, at, limit)
}

func (s *Store) queryProfiles(ctx context.Context, what, query string, args ...any) ([]*Profile, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("db: %s: %w", what, err)
	}
	defer rows.Close()
	var out []*Profile
	for rows.Next() {
		p, err := scanProfile(rows)
		if err != nil {
			return nil, fmt.Errorf("db: %s: %w", what, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// BeginLock records, before a lock is sent to the homeserver, that one is being sent;
// false means the user was reactivated meanwhile and nothing should be locked.
func (s *Store) BeginLock(ctx context.Context, userID int64) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE matrix_user_profiles SET locked = 1 WHERE user_id = ? AND deactivation = 1`, userID)
	if err != nil {
		return false, fmt.Errorf("db: begin lock of user %d: %w", userID, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// LockUnsupported records that the homeserver has no lock the bot may use: nothing was
// locked.
func (s *Store) LockUnsupported(ctx context.Context, userID int64) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE matrix_user_profiles SET locked = 0 WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("db: record no lock for user %d: %w", userID, err)
	}
	return nil
}

// MarkSignedOut records that a deactivated user's devices were signed out (and the
// account locked, when BeginLock said so). When the user was reactivated meanwhile and a
// lock was sent, the profile is queued again, so that provisioning lifts the lock.
func (s *Store) MarkSignedOut(ctx context.Context, userID int64) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE matrix_user_profiles SET deactivation = 2, attempts = 0, next_attempt_at = 0, last_error = ''
			WHERE user_id = ? AND deactivation = 1`, userID)
		if err != nil {
			return fmt.Errorf("db: mark user %d signed out: %w", userID, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE matrix_user_profiles SET provisioned = 0, attempts = 0, next_attempt_at = 0
			WHERE user_id = ? AND locked = 1`, userID); err != nil {
			return fmt.Errorf("db: re-queue user %d: %w", userID, err)
		}
		return nil
	})
}

// accountActiveChangedTx applies a user's (de)activation to their Matrix account: a
// deactivated user's own account (created or linked) is queued for signing out and
// locking; a reactivated user's account that was signed out or locked is queued for
// provisioning again, which lifts the lock.
func accountActiveChangedTx(ctx context.Context, tx *sql.Tx, userID int64, active bool) error {
	q := `UPDATE matrix_user_profiles SET deactivation = 1, attempts = 0, next_attempt_at = 0, last_error = ''
		WHERE user_id = ? AND registration IN ('created', 'linked') AND deactivation = 0`
	if active {
		q = `UPDATE matrix_user_profiles SET provisioned = CASE WHEN deactivation = 2 OR locked = 1 THEN 0 ELSE provisioned END,
			deactivation = 0, attempts = 0, next_attempt_at = 0, last_error = '' WHERE user_id = ?`
	}
	if _, err := tx.ExecContext(ctx, q, userID); err != nil {
		return fmt.Errorf("db: queue the account of user %d: %w", userID, err)
	}
	return nil
}
