package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"
)

// The provisioning queue is the tables themselves: rooms in creating or disabling, rooms
// with members_dirty = 1, and profiles with provisioned = 0, each due at next_attempt_at.
// members_dirty is 0 (clean), 1 (needs a sync) or 2 (a sync is under way): the worker
// claims 1 -> 2 and, when done, clears only a 2, so a write that marks the room again
// (setting 1) while the sync runs is never lost. Claims left by a crash are put back
// at start by RecoverClaims.

// releaseClaim is the SQL that ends a claim: a 2 becomes 0, a fresh 1 stays.
const releaseClaim = `members_dirty = CASE WHEN members_dirty = 2 THEN 0 ELSE members_dirty END`

// DueRooms returns the ids of up to limit rooms with work due at unix time at.
func (s *Store) DueRooms(ctx context.Context, at int64, limit int) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM matrix_rooms
		WHERE (state IN ('creating', 'disabling') OR members_dirty = 1)
		  AND state IN ('creating', 'active', 'disabling') AND next_attempt_at <= ?
		ORDER BY next_attempt_at, id LIMIT ?`, at, limit)
	if err != nil {
		return nil, fmt.Errorf("db: due rooms: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("db: due rooms: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// NextDue returns the earliest unix time at which queued work falls due, and false when
// nothing is queued.
func (s *Store) NextDue(ctx context.Context) (int64, bool, error) {
	var at sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT MIN(t) FROM (
		SELECT MIN(next_attempt_at) AS t FROM matrix_rooms
		  WHERE (state IN ('creating', 'disabling') OR members_dirty = 1) AND state IN ('creating', 'active', 'disabling')
		UNION ALL
		SELECT MIN(p.next_attempt_at) FROM matrix_user_profiles p JOIN users u ON u.id = p.user_id
		  WHERE p.provisioned = 0 AND u.is_active = 1 AND p.registration != 'refused'
		UNION ALL
		SELECT MIN(next_attempt_at) FROM matrix_user_profiles WHERE deactivation = 1)`).Scan(&at)
	if err != nil {
		return 0, false, fmt.Errorf("db: next due: %w", err)
	}
	return at.Int64, at.Valid, nil
}

// RecoverClaims puts back the member syncs a crashed process had under way.
func (s *Store) RecoverClaims(ctx context.Context) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE matrix_rooms SET members_dirty = 1 WHERE members_dirty = 2`)
	if err != nil {
		return 0, fmt.Errorf("db: recover claims: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ClaimRoom takes a due room for work: a pending member sync is claimed (1 -> 2). It
// returns ErrRoomNotQueued when the room has nothing to do any more.
func (s *Store) ClaimRoom(ctx context.Context, id int64) (*Room, error) {
	var room *Room
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		r, err := scanRoom(tx.QueryRowContext(ctx, `SELECT `+roomColumns+roomFrom+` WHERE m.id = ?`, id))
		if err != nil {
			return notFound(err, fmt.Sprintf("claim room %d", id))
		}
		var dirty int
		if err := tx.QueryRowContext(ctx, `SELECT members_dirty FROM matrix_rooms WHERE id = ?`, id).Scan(&dirty); err != nil {
			return fmt.Errorf("db: claim room %d: %w", id, err)
		}
		switch r.State {
		case RoomCreating, RoomDisabling:
		case RoomActive:
			if dirty != 1 {
				return ErrRoomNotQueued
			}
		default:
			return ErrRoomNotQueued
		}
		if dirty == 1 {
			if _, err := tx.ExecContext(ctx, `UPDATE matrix_rooms SET members_dirty = 2 WHERE id = ?`, id); err != nil {
				return fmt.Errorf("db: claim room %d: %w", id, err)
			}
		}
		room = r
		return nil
	})
	return room, err
}

// SetCreateStarted records that a createRoom is about to be sent for the room (true), so
// that if its answer never comes the next attempt looks for the room it may have left; or
// that the homeserver refused it outright, so there is nothing to look for (false).
func (s *Store) SetCreateStarted(ctx context.Context, id int64, started bool) error {
	at := int64(0)
	if started {
		at = now()
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE matrix_rooms SET create_started_at = ? WHERE id = ?`, at, id); err != nil {
		return fmt.Errorf("db: mark creation of room %d: %w", id, err)
	}
	return nil
}

// DeferRoom puts a claimed room back in the queue until the given time without counting a
// failure (the worker waits for something on the homeserver to settle).
func (s *Store) DeferRoom(ctx context.Context, id int64, until time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE matrix_rooms SET next_attempt_at = ?,
		members_dirty = CASE WHEN members_dirty = 2 THEN 1 ELSE members_dirty END WHERE id = ?`, ceilUnix(until), id)
	if err != nil {
		return fmt.Errorf("db: defer room %d: %w", id, err)
	}
	return nil
}

// KnownRoomIDs returns which of the given homeserver room ids some managed room records.
func (s *Store) KnownRoomIDs(ctx context.Context, roomIDs []id.RoomID) (map[id.RoomID]bool, error) {
	out := map[id.RoomID]bool{}
	for len(roomIDs) > 0 {
		chunk := roomIDs[:min(len(roomIDs), 500)]
		roomIDs = roomIDs[len(chunk):]
		args := make([]any, len(chunk))
		for i, r := range chunk {
			args[i] = r
		}
		rows, err := s.r.QueryContext(ctx, `SELECT room_id FROM matrix_rooms WHERE room_id IN (?`+strings.Repeat(",?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("db: known room ids: %w", err)
		}
		for rows.Next() {
			var r id.RoomID
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return nil, fmt.Errorf("db: known room ids: %w", err)
			}
			out[r] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("db: known room ids: %w", err)
		}
	}
	return out, nil
}

// SetRoomHomeserverID records the room's id (and alias) on the homeserver as soon as it
// exists, before members are synced, so a crash after this point never creates it twice.
func (s *Store) SetRoomHomeserverID(ctx context.Context, roomPK int64, roomID id.RoomID, alias id.RoomAlias, notice string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE matrix_rooms SET room_id = ?, room_alias = ?, notice = ?, create_started_at = 0, modified_at = ? WHERE id = ?`,
		roomID, alias, notice, now(), roomPK)
	if err != nil {
		return fmt.Errorf("db: set room id of room %d: %w", roomPK, err)
	}
	return nil
}

// DesiredMember is a user who should be in a room: active, with a role in the project or
// owning its customer (Role is then CUSTOMER.OWNER), or, for staff, joined through the
// room's join action.
type DesiredMember struct {
	UserID       int64
	UserUUID     string
	Username     string
	FullName     string
	Role         string // "" for staff who joined without a role
	StaffJoined  bool
	MatrixUserID id.UserID // "" when the user has no profile yet
	Provisioned  bool
	Registration Registration // who made the account; refused ones are left out of the room
}

// PowerLevel is the member's power level in the room (MemberPowerLevel).
func (m *DesiredMember) PowerLevel() int { return MemberPowerLevel(m.Role, m.StaffJoined) }

// DisplayName is the member's Matrix display name: the platform's full name, else the
// username.
func (m *DesiredMember) DisplayName() string { return DisplayName(m.FullName, m.Username) }

// DisplayName is a user's Matrix display name: the full name (trimmed), else the username.
func DisplayName(fullName, username string) string {
	if n := strings.TrimSpace(fullName); n != "" {
		return n
	}
	return username
}

// DesiredMembers lists the users who should be in the room, by username: active users
// with a role in the project, and active staff who joined through the join action.
func (s *Store) DesiredMembers(ctx context.Context, roomPK int64) ([]*DesiredMember, error) {
	rows, err := s.r.QueryContext(ctx, `WITH room AS (SELECT id, project_id FROM matrix_rooms WHERE id = ?),
		ids AS (SELECT user_id FROM project_members WHERE project_id = (SELECT project_id FROM room)
		        UNION SELECT user_id FROM matrix_room_members WHERE room_pk = (SELECT id FROM room) AND staff_joined = 1)
		SELECT u.id, u.uuid, u.username, u.full_name, COALESCE(r.role, ''), COALESCE(mm.staff_joined, 0) = 1 AND u.is_staff = 1,
		       COALESCE(p.matrix_user_id, ''), COALESCE(p.provisioned, 0), COALESCE(p.registration, '')
		FROM ids JOIN users u ON u.id = ids.user_id AND u.is_active = 1
		LEFT JOIN project_members r ON r.user_id = u.id AND r.project_id = (SELECT project_id FROM room)
		LEFT JOIN matrix_room_members mm ON mm.user_id = u.id AND mm.room_pk = (SELECT id FROM room)
		LEFT JOIN matrix_user_profiles p ON p.user_id = u.id
		WHERE r.role IS NOT NULL OR (COALESCE(mm.staff_joined, 0) = 1 AND u.is_staff = 1)
		ORDER BY u.username`, roomPK)
	if err != nil {
		return nil, fmt.Errorf("db: desired members of room %d: %w", roomPK, err)
	}
	defer rows.Close()
	var out []*DesiredMember
	for rows.Next() {
		var m DesiredMember
		if err := rows.Scan(&m.UserID, &m.UserUUID, &m.Username, &m.FullName, &m.Role, &m.StaffJoined, &m.MatrixUserID, &m.Provisioned,
			&m.Registration); err != nil {
			return nil, fmt.Errorf("db: desired members of room %d: %w", roomPK, err)
		}
		out = append(out, &m)
	}
	return out, rows.Err()
}

// StaffLeaving returns the users (row ids) who left the room through the leave action
// and whom the worker has still to take out: they leave as themselves, not kicked.
func (s *Store) StaffLeaving(ctx context.Context, roomPK int64) (map[int64]bool, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT user_id FROM matrix_room_members WHERE room_pk = ? AND staff_joined = 2`, roomPK)
	if err != nil {
		return nil, fmt.Errorf("db: staff leaving room %d: %w", roomPK, err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("db: staff leaving room %d: %w", roomPK, err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// ManagedUsers returns, of the given Matrix user ids, those that belong to a profile
// (accounts this appservice manages), mapped to their user's row id. A refused account
// (someone else's, never linked) is not managed: it is never kicked nor given a level.
func (s *Store) ManagedUsers(ctx context.Context, mxids []id.UserID) (map[id.UserID]int64, error) {
	out := map[id.UserID]int64{}
	for len(mxids) > 0 {
		chunk := mxids[:min(len(mxids), 500)]
		mxids = mxids[len(chunk):]
		args := make([]any, len(chunk))
		for i, m := range chunk {
			args[i] = m
		}
		rows, err := s.r.QueryContext(ctx, `SELECT matrix_user_id, user_id FROM matrix_user_profiles WHERE registration != 'refused' AND matrix_user_id IN (?`+
			strings.Repeat(",?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("db: managed users: %w", err)
		}
		for rows.Next() {
			var m id.UserID
			var userPK int64
			if err := rows.Scan(&m, &userPK); err != nil {
				rows.Close()
				return nil, fmt.Errorf("db: managed users: %w", err)
			}
			out[m] = userPK
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("db: managed users: %w", err)
		}
	}
	return out, nil
}

// MemberSync is the outcome of syncing one member of a room.
type MemberSync struct {
	UserID     int64
	Membership string
	PowerLevel int
	LastError  string
}

// SaveMembers records the members' state after a sync. Rows of anyone else are dropped
// (removed, or gone on their own), except pending: former members still in the room
// because removing them failed, kept so the room's detail shows them until they are out;
// and active staff who joined through the join action after the sync read who belongs.
func (s *Store) SaveMembers(ctx context.Context, roomPK int64, synced []MemberSync, pending []int64) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		t := now()
		keep := map[int64]bool{}
		for _, m := range synced {
			keep[m.UserID] = true
			if _, err := tx.ExecContext(ctx, `INSERT INTO matrix_room_members (room_pk, user_id, membership, power_level, synced_at, last_error)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room_pk, user_id) DO UPDATE SET membership = excluded.membership,
				power_level = excluded.power_level, synced_at = excluded.synced_at, last_error = excluded.last_error`,
				roomPK, m.UserID, m.Membership, m.PowerLevel, t, m.LastError); err != nil {
				return fmt.Errorf("db: save member %d of room %d: %w", m.UserID, roomPK, err)
			}
		}
		for _, id := range pending {
			keep[id] = true
		}
		rows, err := tx.QueryContext(ctx, `SELECT mm.user_id FROM matrix_room_members mm JOIN users u ON u.id = mm.user_id
			WHERE mm.room_pk = ? AND NOT (mm.staff_joined = 1 AND u.is_staff = 1 AND u.is_active = 1)`, roomPK)
		if err != nil {
			return fmt.Errorf("db: members of room %d: %w", roomPK, err)
		}
		var drop []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("db: members of room %d: %w", roomPK, err)
			}
			if !keep[id] {
				drop = append(drop, id)
			}
		}
		rows.Close()
		for _, id := range drop {
			if _, err := tx.ExecContext(ctx, `DELETE FROM matrix_room_members WHERE room_pk = ? AND user_id = ?`, roomPK, id); err != nil {
				return fmt.Errorf("db: forget member %d of room %d: %w", id, roomPK, err)
			}
		}
		return nil
	})
}

// FinishRoomSync ends a successful creation or member sync: a creating room becomes
// active; attempts and the error are cleared and the claim released. A room whose state
// staff changed meanwhile (disabled, say) keeps its new state. A room made for a project
// deleted meanwhile goes on to disabling at once, with the project's deletion notice.
func (s *Store) FinishRoomSync(ctx context.Context, id int64, roomName string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var state, notice string
		var deleting int64
		if err := tx.QueryRowContext(ctx, `SELECT m.state, p.deleting_at, p.deletion_notice FROM matrix_rooms m
			JOIN projects p ON p.id = m.project_id WHERE m.id = ?`, id).Scan(&state, &deleting, &notice); err != nil {
			return notFound(err, fmt.Sprintf("finish room %d", id))
		}
		set := `room_name = ?, error_message = '', attempts = 0, next_attempt_at = 0, ` + releaseClaim
		if RoomState(state) == RoomCreating {
			if err := transitionTx(ctx, tx, id, RoomActive, set, roomName); err != nil {
				return err
			}
			if deleting != 0 {
				return beginDisableTx(ctx, tx, s, id, false, notice)
			}
			return nil
		}
		var err error
		if RoomState(state) == RoomActive {
			_, err = tx.ExecContext(ctx, `UPDATE matrix_rooms SET `+set+` WHERE id = ?`, roomName, id)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE matrix_rooms SET `+releaseClaim+` WHERE id = ?`, id)
		}
		if err != nil {
			return fmt.Errorf("db: finish room %d: %w", id, err)
		}
		return nil
	})
}

// RecheckRoom queues a member sync of an active room at the given time, unless one is
// queued or under way already (which looks at the room anyway).
func (s *Store) RecheckRoom(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE matrix_rooms SET members_dirty = 1, next_attempt_at = ?
		WHERE id = ? AND state = 'active' AND members_dirty = 0`, ceilUnix(at), id); err != nil {
		return fmt.Errorf("db: queue a look at room %d: %w", id, err)
	}
	return nil
}

// FinishRoomDisable archives a room the worker emptied: its members are recorded as gone
// (staff who joined included), the disable path's progress is cleared, and the Matrix
// room keeps its id and alias, with the bot in it, for a reactivation. A room whose
// project is being deleted is deleted with its project now (projectDeleted); its
// history exports stay, with the room's Matrix id and name.
func (s *Store) FinishRoomDisable(ctx context.Context, id int64) (projectDeleted bool, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		if err := transitionTx(ctx, tx, id, RoomArchived, `error_message = '', attempts = 0, next_attempt_at = 0, members_dirty = 0,
			disable_notice = '', disable_export = '', disable_export_at = 0, delete_history = 0`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE matrix_room_members SET membership = 'leave', staff_joined = 0, synced_at = ? WHERE room_pk = ?`,
			now(), id); err != nil {
			return fmt.Errorf("db: archive members of room %d: %w", id, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE deleting_at != 0 AND id = (SELECT project_id FROM matrix_rooms WHERE id = ?)`, id)
		if err != nil {
			return fmt.Errorf("db: delete the project of room %d: %w", id, err)
		}
		n, _ := res.RowsAffected()
		projectDeleted = n > 0
		return nil
	})
	return projectDeleted, err
}

// FailRoomDisable ends a disable that cannot go on by itself (its history export failed
// or did not finish in time): the room goes to state error with msg, keeping what was
// done (the notice is not posted again) but not the export, so that disabling it again
// makes a new one.
func (s *Store) FailRoomDisable(ctx context.Context, id int64, msg string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		return transitionTx(ctx, tx, id, RoomError, `error_message = ?, attempts = 0, next_attempt_at = 0, members_dirty = 0, disable_export = '', disable_export_at = 0`, msg)
	})
}

// SetDisableExport records the history export the room's archive waits for, and that
// the wait starts now.
func (s *Store) SetDisableExport(ctx context.Context, id int64, exportUUID string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE matrix_rooms SET disable_export = ?, disable_export_at = ? WHERE id = ?`, exportUUID, now(), id); err != nil {
		return fmt.Errorf("db: record the export of room %d: %w", id, err)
	}
	return nil
}

// DeleteUncreatedRoom deletes the project (and with it the room) of a room still in
// creating that never reached the homeserver (no room id, no creation under way),
// when its project is being deleted; deleted is false, and nothing changes, otherwise.
// The worker calls it holding the room, so nothing is creating it meanwhile.
func (s *Store) DeleteUncreatedRoom(ctx context.Context, id int64) (deleted bool, err error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM projects WHERE deleting_at != 0 AND id = (SELECT project_id FROM matrix_rooms
		WHERE id = ? AND state = 'creating' AND room_id = '' AND create_started_at = 0)`, id)
	if err != nil {
		return false, fmt.Errorf("db: delete the project of room %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// RecreateRoom sends an active room whose homeserver room cannot be used any more (the
// bot is no longer in it, as after an archive made before rooms were kept) back to
// creating, with its room id and alias cleared, so the worker creates a new one.
func (s *Store) RecreateRoom(ctx context.Context, id int64, notice string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if err := transitionTx(ctx, tx, id, RoomCreating, `room_id = '', room_alias = '', notice = ?, next_attempt_at = 0, members_dirty = 1`, notice); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE matrix_room_members SET membership = '', synced_at = NULL WHERE room_pk = ?`, id); err != nil {
			return fmt.Errorf("db: reset members of room %d: %w", id, err)
		}
		return nil
	})
}

// FailRoom records a failed attempt at a room's work. Below maxAttempts the room is
// retried after backoff(attempts), keeping msg as its error message; at maxAttempts it
// goes to state error with msg, until staff retry it. gaveUp reports the latter.
func (s *Store) FailRoom(ctx context.Context, id int64, msg string, maxAttempts int, backoff func(attempts int) time.Duration) (gaveUp bool, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		var attempts int
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT attempts, state FROM matrix_rooms WHERE id = ?`, id).Scan(&attempts, &state); err != nil {
			return notFound(err, fmt.Sprintf("fail room %d", id))
		}
		attempts++
		if attempts >= maxAttempts && RoomState(state) != RoomError {
			gaveUp = true
			return transitionTx(ctx, tx, id, RoomError, `error_message = ?, attempts = ?, next_attempt_at = 0, members_dirty = 0`, msg, attempts)
		}
		next := ceilUnix(time.Now().Add(backoff(attempts)))
		_, err := tx.ExecContext(ctx, `UPDATE matrix_rooms SET error_message = ?, attempts = ?, next_attempt_at = ?,
			members_dirty = CASE WHEN members_dirty = 2 THEN 1 ELSE members_dirty END WHERE id = ?`, msg, attempts, next, id)
		if err != nil {
			return fmt.Errorf("db: fail room %d: %w", id, err)
		}
		return nil
	})
	return gaveUp, err
}
