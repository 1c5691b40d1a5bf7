package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"maunium.net/go/mautrix/id"
)

// DiagnosticStats is what the diagnostics checks read from the database: rooms, user
// profiles, the provisioning queue and the transaction log, in one consistent snapshot.
type DiagnosticStats struct {
	// Rooms counts managed rooms by state; absent = 0.
	Rooms map[RoomState]int

	ProfilesTotal       int
	ProfilesProvisioned int

	// PendingRooms are rooms waiting to be created or disabled; PendingUsers are active
	// users waiting to be registered on the homeserver.
	PendingRooms int
	PendingUsers int
	// Retrying counts pending items that already failed at least once.
	Retrying int
	// MemberSyncs counts active rooms whose members need a re-sync: routine work, not
	// counted as pending, since the rooms table keeps no time for it.
	MemberSyncs int
	// OldestPending is when the oldest pending item entered the queue (a room's last
	// state change, a user profile's creation); zero when nothing is pending.
	OldestPending time.Time

	// TransactionsTotal and LastTransactionAt come from the counters (zero time = never);
	// TransactionsSince counts the transactions recorded from the start of the since
	// argument's minute (per-minute counts kept for two hours, read in O(1)).
	TransactionsTotal int64
	LastTransactionAt time.Time
	TransactionsSince int

	// ProvisionedUser is the Matrix user ID of the most recently provisioned user, ""
	// when none is: a real namespaced user for the appservice to act as.
	ProvisionedUser id.UserID
}

// Pending is the number of rooms and users waiting in the provisioning queue.
func (d *DiagnosticStats) Pending() int { return d.PendingRooms + d.PendingUsers }

// DiagnosticStats reads the diagnostics' numbers in one read transaction; since bounds
// the recent-transactions count.
func (s *Store) DiagnosticStats(ctx context.Context, since time.Time) (*DiagnosticStats, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("db: diagnostics: begin: %w", err)
	}
	defer tx.Rollback()
	d := &DiagnosticStats{Rooms: map[RoomState]int{}}
	wrap := func(what string, err error) error { return fmt.Errorf("db: diagnostics: %s: %w", what, err) }

	rows, err := tx.QueryContext(ctx, `SELECT state, n FROM room_state_counts WHERE n != 0`) // kept by triggers
	if err != nil {
		return nil, wrap("count rooms", err)
	}
	for rows.Next() {
		var state RoomState
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			rows.Close()
			return nil, wrap("count rooms", err)
		}
		d.Rooms[state] = n
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, wrap("count rooms", err)
	}

	if err := tx.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT value FROM counters WHERE name = 'profiles'), 0),
		COALESCE((SELECT value FROM counters WHERE name = 'profiles_provisioned'), 0)`).
		Scan(&d.ProfilesTotal, &d.ProfilesProvisioned); err != nil {
		return nil, wrap("count user profiles", err)
	}

	var roomOldest, userOldest sql.NullInt64
	var roomRetrying, userRetrying int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(attempts > 0), 0), MIN(modified_at)
		FROM matrix_rooms WHERE state IN ('creating', 'disabling')`).Scan(&d.PendingRooms, &roomRetrying, &roomOldest); err != nil {
		return nil, wrap("read room queue", err)
	}
	// Inactive users are never provisioned, so they are not waiting.
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(p.attempts > 0), 0), MIN(p.created_at)
		FROM matrix_user_profiles p JOIN users u ON u.id = p.user_id
		WHERE p.provisioned = 0 AND u.is_active = 1`).Scan(&d.PendingUsers, &userRetrying, &userOldest); err != nil {
		return nil, wrap("read user queue", err)
	}
	d.Retrying = roomRetrying + userRetrying
	for _, v := range []sql.NullInt64{roomOldest, userOldest} {
		if v.Valid && (d.OldestPending.IsZero() || v.Int64 < d.OldestPending.Unix()) {
			d.OldestPending = time.Unix(v.Int64, 0)
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM matrix_rooms WHERE state = 'active' AND members_dirty != 0`).
		Scan(&d.MemberSyncs); err != nil {
		return nil, wrap("count member syncs", err)
	}

	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT value FROM counters WHERE name = ?), 0),
		COALESCE((SELECT value FROM counters WHERE name = ?), 0)`, CounterTransactions, CounterLastTransactionAt).
		Scan(&d.TransactionsTotal, &last); err != nil {
		return nil, wrap("read transaction counters", err)
	}
	if last > 0 {
		d.LastTransactionAt = time.Unix(last, 0)
	}
	// The recorder's minute marks: the window starts at since's minute, whose mark (or the
	// next minute's with transactions) is the counter before it.
	if err := tx.QueryRowContext(ctx, `SELECT ?1 - COALESCE((SELECT before FROM txn_marks WHERE minute >= ?2 ORDER BY minute LIMIT 1), ?1)`,
		d.TransactionsTotal, since.Unix()/60).Scan(&d.TransactionsSince); err != nil {
		return nil, wrap("count recent transactions", err)
	}

	err = tx.QueryRowContext(ctx, `SELECT matrix_user_id FROM matrix_user_profiles
		WHERE provisioned != 0 ORDER BY provisioned_at DESC, user_id DESC LIMIT 1`).Scan(&d.ProvisionedUser)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, wrap("pick a provisioned user", err)
	}
	return d, nil
}

// ProfileCounts is how many Matrix user profiles exist and how many are provisioned.
type ProfileCounts struct {
	Total       int
	Provisioned int
}

// ProfileCounts counts the Matrix user profiles (the overview's status card).
func (s *Store) ProfileCounts(ctx context.Context) (ProfileCounts, error) {
	var c ProfileCounts
	err := s.r.QueryRowContext(ctx,
		`SELECT COUNT(*), COALESCE(SUM(provisioned != 0), 0) FROM matrix_user_profiles`).Scan(&c.Total, &c.Provisioned)
	if err != nil {
		return ProfileCounts{}, fmt.Errorf("db: count user profiles: %w", err)
	}
	return c, nil
}
