package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/id"
)

// The room actions of the rooms API and the dashboard (RoomAction): each loads the room,
// checks the action against its state through the state machine (a refusal is
// *ActionError, which the API answers with 409 and the state), and makes its change in
// one transaction, together with the notification that announces it, if any: a
// notification is never lost once its cause is committed, and never sent for a change
// that was rolled back. The texts come from the caller (package bot words them).

// ErrNoMatrixID is returned by StaffJoinRoom when the staff member cannot get a Matrix
// account: the homeserver's domain is not configured yet.
var ErrNoMatrixID = errors.New("db: no Matrix user id can be derived yet (the homeserver domain is not configured)")

// ErrNotJoined is returned by StaffLeaveRoom for a staff member who did not join the
// room through the join action.
var ErrNotJoined = errors.New("db: not joined through the join action")

// actionRoomTx loads the room with the given uuid for action a and checks that its state
// allows it; it returns the room's row id and state.
func actionRoomTx(ctx context.Context, tx *sql.Tx, uuid string, a RoomAction) (int64, RoomState, error) {
	var id int64
	var state string
	if err := tx.QueryRowContext(ctx, `SELECT id, state FROM matrix_rooms WHERE uuid = ?`, uuid).Scan(&id, &state); err != nil {
		return 0, "", notFound(err, "get room "+uuid)
	}
	if !a.Allowed(RoomState(state)) {
		return 0, "", &ActionError{Action: a, State: RoomState(state)}
	}
	return id, RoomState(state), nil
}

// roomAction runs fn on the room with the given uuid, inside a transaction, once a has
// been checked against its state, and returns the room as it then is.
func (s *Store) roomAction(ctx context.Context, uuid string, a RoomAction, fn func(tx *sql.Tx, id int64, state RoomState) error) (*Room, error) {
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		id, state, err := actionRoomTx(ctx, tx, uuid, a)
		if err != nil {
			return err
		}
		return fn(tx, id, state)
	})
	if err != nil {
		return nil, err
	}
	return s.RoomByUUID(ctx, uuid)
}

// queueRoomNoticeTx queues notice into the room when it has a Matrix room; a room
// without one has nobody to tell ("" and no error).
func (s *Store) queueRoomNoticeTx(ctx context.Context, tx *sql.Tx, roomPK int64, notice string) (string, error) {
	if notice == "" {
		return "", nil
	}
	uuid, err := s.QueueNotificationTx(ctx, tx, roomPK, notice)
	if errors.Is(err, ErrNoMatrixRoom) {
		return "", nil
	}
	return uuid, err
}

// clearDisable is what ends the disable path's progress.
const clearDisable = `disable_notice = '', disable_export = '', disable_export_at = 0, delete_history = 0`

// RetryRoom is the retry action: a room in error goes back to creating with its error
// and attempts cleared (the worker creates it, or rejoins the Matrix room it already
// has); a room in creating or disabling is worked on again at once, its failures
// forgotten.
func (s *Store) RetryRoom(ctx context.Context, uuid string) (*Room, error) {
	return s.roomAction(ctx, uuid, ActionRetry, func(tx *sql.Tx, id int64, state RoomState) error {
		if state == RoomError {
			return transitionTx(ctx, tx, id, RoomCreating, `error_message = '', attempts = 0, next_attempt_at = 0, members_dirty = 1, `+clearDisable)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE matrix_rooms SET attempts = 0, next_attempt_at = 0, modified_at = ? WHERE id = ?`, now(), id); err != nil {
			return fmt.Errorf("db: retry room %s: %w", uuid, err)
		}
		return nil
	})
}

// beginDisableTx moves a room to disabling and queues notice, the announcement its
// members read before they are removed, unless the room has no Matrix room or a notice
// from an earlier disable of it was queued already (a disable that failed and is tried
// again). deleteHistory makes the disable delete the room's history exports instead
// of making one. The wait for an export starts afresh (a pending one is waited for again).
func beginDisableTx(ctx context.Context, tx *sql.Tx, s *Store, roomPK int64, deleteHistory bool, notice string) error {
	if err := transitionTx(ctx, tx, roomPK, RoomDisabling, `attempts = 0, next_attempt_at = 0, delete_history = ?, disable_export = '', disable_export_at = 0`,
		boolInt(deleteHistory)); err != nil {
		return err
	}
	var current string
	if err := tx.QueryRowContext(ctx, `SELECT disable_notice FROM matrix_rooms WHERE id = ?`, roomPK).Scan(&current); err != nil {
		return fmt.Errorf("db: disable room %d: %w", roomPK, err)
	}
	if current != "" {
		return nil
	}
	queued, err := s.queueRoomNoticeTx(ctx, tx, roomPK, notice)
	if err != nil || queued == "" {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE matrix_rooms SET disable_notice = ? WHERE id = ?`, queued, roomPK); err != nil {
		return fmt.Errorf("db: disable room %d: %w", roomPK, err)
	}
	return nil
}

// DisableRoom is the disable action: active or error -> disabling, with notice
// (bot.RoomDeactivated) queued in the same transaction. The worker then waits for the
// notice to be sent, removes every member, exports the history (or, with deleteHistory,
// deletes the room's exports) and archives the room, which keeps its Matrix room.
func (s *Store) DisableRoom(ctx context.Context, uuid string, deleteHistory bool, notice string) (*Room, error) {
	return s.roomAction(ctx, uuid, ActionDisable, func(tx *sql.Tx, id int64, _ RoomState) error {
		return beginDisableTx(ctx, tx, s, id, deleteHistory, notice)
	})
}

// ReactivateRoom is the reactivate action: archived -> active in the same Matrix room,
// with notice (bot.RoomReactivated) queued in the same transaction; the worker invites
// the members back and restores their power levels.
func (s *Store) ReactivateRoom(ctx context.Context, uuid, notice string) (*Room, error) {
	return s.roomAction(ctx, uuid, ActionReactivate, func(tx *sql.Tx, id int64, _ RoomState) error {
		if err := transitionTx(ctx, tx, id, RoomActive, `error_message = '', attempts = 0, next_attempt_at = 0, members_dirty = 1, `+clearDisable); err != nil {
			return err
		}
		_, err := s.queueRoomNoticeTx(ctx, tx, id, notice)
		return err
	})
}

// SyncRoomMembers is the sync_members action: the room's members are synced now (after
// the sync under way, if one is).
func (s *Store) SyncRoomMembers(ctx context.Context, uuid string) (*Room, error) {
	return s.roomAction(ctx, uuid, ActionSyncMembers, func(tx *sql.Tx, id int64, _ RoomState) error {
		if _, err := tx.ExecContext(ctx, `UPDATE matrix_rooms SET members_dirty = 1, next_attempt_at = 0 WHERE id = ?`, id); err != nil {
			return fmt.Errorf("db: queue member sync of room %s: %w", uuid, err)
		}
		return nil
	})
}

// StaffJoinRoom is the join action of the staff member user: they get a Matrix account
// (a profile, provisioned by the worker like a member's) and a place in the room with
// power level StaffJoinedPowerLevel, kept by member syncs whatever their project role;
// notice (bot.StaffJoined) is queued in the same transaction. Joining again changes
// nothing and announces nothing (joined false). ErrNoMatrixID when no Matrix id can be
// derived yet.
func (s *Store) StaffJoinRoom(ctx context.Context, uuid string, user *User, rules ProfileRules, notice string) (room *Room, joined bool, err error) {
	room, err = s.roomAction(ctx, uuid, ActionJoin, func(tx *sql.Tx, id int64, _ RoomState) error {
		mxid, err := ensureProfileTx(ctx, tx, user.ID, rules)
		if err != nil {
			return err
		}
		if mxid == "" {
			return ErrNoMatrixID
		}
		var cur int
		err = tx.QueryRowContext(ctx, `SELECT staff_joined FROM matrix_room_members WHERE room_pk = ? AND user_id = ?`, id, user.ID).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("db: staff join of room %s: %w", uuid, err)
		}
		if cur == 1 {
			return nil
		}
		joined = true
		if _, err := tx.ExecContext(ctx, `INSERT INTO matrix_room_members (room_pk, user_id, staff_joined) VALUES (?, ?, 1)
			ON CONFLICT (room_pk, user_id) DO UPDATE SET staff_joined = 1`, id, user.ID); err != nil {
			return fmt.Errorf("db: staff join of room %s: %w", uuid, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE matrix_rooms SET members_dirty = 1, next_attempt_at = 0 WHERE id = ?`, id); err != nil {
			return fmt.Errorf("db: staff join of room %s: %w", uuid, err)
		}
		_, err = s.queueRoomNoticeTx(ctx, tx, id, notice)
		return err
	})
	return room, joined, err
}

// StaffLeaveRoom is the leave action of a staff member who joined through the join
// action: the worker makes them leave the room (as themselves, not kicked; a project
// role they hold keeps them in), and notice (bot.StaffLeft) is queued in the same
// transaction. ErrNotJoined when they had not joined that way.
func (s *Store) StaffLeaveRoom(ctx context.Context, uuid string, userID int64, notice string) (*Room, error) {
	return s.roomAction(ctx, uuid, ActionLeave, func(tx *sql.Tx, id int64, _ RoomState) error {
		res, err := tx.ExecContext(ctx, `UPDATE matrix_room_members SET staff_joined = 2 WHERE room_pk = ? AND user_id = ? AND staff_joined = 1`, id, userID)
		if err != nil {
			return fmt.Errorf("db: staff leave of room %s: %w", uuid, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotJoined
		}
		if _, err := tx.ExecContext(ctx, `UPDATE matrix_rooms SET members_dirty = 1, next_attempt_at = 0 WHERE id = ?`, id); err != nil {
			return fmt.Errorf("db: staff leave of room %s: %w", uuid, err)
		}
		_, err = s.queueRoomNoticeTx(ctx, tx, id, notice)
		return err
	})
}

// DeleteRoom is the delete action: the room's record goes (error, creating or archived
// only), with its members' rows and outbox messages; its history exports stay, with the
// room's Matrix id and name. The Matrix room itself is left as it is: a room created for
// the project again adopts it through its alias when the bot is still in it. A room of a
// project being deleted takes its project with it (projectDeleted).
func (s *Store) DeleteRoom(ctx context.Context, uuid string) (projectDeleted bool, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		id, _, err := actionRoomTx(ctx, tx, uuid, ActionDelete)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE deleting_at != 0 AND id = (SELECT project_id FROM matrix_rooms WHERE id = ?)`, id)
		if err != nil {
			return fmt.Errorf("db: delete room %s: %w", uuid, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			projectDeleted = true
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM matrix_rooms WHERE id = ?`, id); err != nil {
			return fmt.Errorf("db: delete room %s: %w", uuid, err)
		}
		return nil
	})
	return projectDeleted, err
}

// RoomAccess is what a user may do with a room's conversation (the open action).
type RoomAccess struct {
	Room *Room
	// Member: the user belongs in the room (active, with a role in the project, or staff
	// who joined through the join action).
	Member       bool
	MatrixUserID id.UserID // "" when the user has no profile
	Membership   string    // last known on the homeserver; "" = not synced yet
}

// RoomAccessOf returns the user's access to the room with the given uuid.
func (s *Store) RoomAccessOf(ctx context.Context, uuid string, userID int64) (*RoomAccess, error) {
	room, err := s.RoomByUUID(ctx, uuid)
	if err != nil {
		return nil, err
	}
	a := &RoomAccess{Room: room}
	err = s.r.QueryRowContext(ctx, `SELECT u.is_active = 1 AND (
			EXISTS (SELECT 1 FROM project_roles r WHERE r.project_id = ? AND r.user_id = u.id)
			OR (u.is_staff = 1 AND EXISTS (SELECT 1 FROM matrix_room_members x WHERE x.room_pk = ? AND x.user_id = u.id AND x.staff_joined = 1))),
		COALESCE((SELECT matrix_user_id FROM matrix_user_profiles WHERE user_id = u.id), ''),
		COALESCE((SELECT membership FROM matrix_room_members WHERE room_pk = ? AND user_id = u.id), '')
		FROM users u WHERE u.id = ?`, room.ProjectID, room.ID, room.ID, userID).Scan(&a.Member, &a.MatrixUserID, &a.Membership)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("access of user %d to room %s", userID, uuid))
	}
	return a, nil
}

// MarkMemberJoined records that the user joined the room (the open action accepted their
// invite); a membership the worker changed meanwhile to something else than an invite
// is left alone.
func (s *Store) MarkMemberJoined(ctx context.Context, roomPK, userID int64) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE matrix_room_members SET membership = 'join', synced_at = ?
		WHERE room_pk = ? AND user_id = ? AND membership IN ('invite', '')`, now(), roomPK, userID); err != nil {
		return fmt.Errorf("db: mark user %d joined in room %d: %w", userID, roomPK, err)
	}
	return nil
}
