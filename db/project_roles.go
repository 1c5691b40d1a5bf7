package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Project roles; rolePowerLevels says what each may do in the project's room.
const (
	RoleAdmin   = "admin"
	RoleManager = "manager"
	RoleMember  = "member"
)

// The power levels of a project's room, the one place that says who may do what there
// (the README's "Roles and power levels" shows the same table): the bot, which follows
// the project, may do everything; project admins and managers moderate, and so do
// staff who joined through the room's join action (MemberPowerLevel); members talk.
// Sending messages needs 0; invite, kick, ban, redact and state events need the bot's.
const BotPowerLevel = 100

var rolePowerLevels = map[string]int{
	RoleAdmin:   50,
	RoleManager: 50,
	RoleMember:  0,
}

// ValidRole reports whether role is one of the project roles.
func ValidRole(role string) bool {
	_, ok := rolePowerLevels[role]
	return ok
}

// RolePowerLevel is the room power level a project role grants (0 for no role).
func RolePowerLevel(role string) int { return rolePowerLevels[role] }

// StaffJoinedPowerLevel is the power level of a staff member who joined a project's room
// through its join action: a moderator, whatever role (if any) they hold in the project.
const StaffJoinedPowerLevel = 50

// MemberPowerLevel is the power level of a room member: their project role's, raised to
// StaffJoinedPowerLevel for staff who joined through the join action.
func MemberPowerLevel(role string, staffJoined bool) int {
	pl := RolePowerLevel(role)
	if staffJoined {
		pl = max(pl, StaffJoinedPowerLevel)
	}
	return pl
}

// ProjectRole is one user's role in a project.
type ProjectRole struct {
	UserID    int64
	UserUUID  string
	Username  string
	FullName  string
	IsActive  bool
	Role      string
	CreatedAt time.Time
}

// RoleInput is one entry of a project's member list, by user uuid.
type RoleInput struct {
	UserUUID string
	Role     string
}

// UnknownUserError names a user uuid that does not exist.
type UnknownUserError struct{ UUID string }

func (e *UnknownUserError) Error() string { return "no user with uuid " + e.UUID }

// ListRoles lists a project's roles by username.
func (s *Store) ListRoles(ctx context.Context, projectID int64) ([]*ProjectRole, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT u.id, u.uuid, u.username, u.full_name, u.is_active, r.role, r.created_at
		FROM project_roles r JOIN users u ON u.id = r.user_id WHERE r.project_id = ? ORDER BY u.username`, projectID)
	if err != nil {
		return nil, fmt.Errorf("db: list roles of project %d: %w", projectID, err)
	}
	defer rows.Close()
	var out []*ProjectRole
	for rows.Next() {
		var r ProjectRole
		var created int64
		if err := rows.Scan(&r.UserID, &r.UserUUID, &r.Username, &r.FullName, &r.IsActive, &r.Role, &created); err != nil {
			return nil, fmt.Errorf("db: list roles of project %d: %w", projectID, err)
		}
		r.CreatedAt = time.Unix(created, 0).UTC()
		out = append(out, &r)
	}
	return out, rows.Err()
}

func userIDByUUID(ctx context.Context, tx *sql.Tx, uuid string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE uuid = ?`, uuid).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, &UnknownUserError{UUID: uuid}
	}
	if err != nil {
		return 0, fmt.Errorf("db: get user %s: %w", uuid, err)
	}
	return id, nil
}

// putRoleTx sets one role and reports whether it created the row and whether anything changed.
func putRoleTx(ctx context.Context, tx *sql.Tx, projectID, userID int64, role string, rules ProfileRules) (created, changed bool, err error) {
	var old string
	err = tx.QueryRowContext(ctx, `SELECT role FROM project_roles WHERE project_id = ? AND user_id = ?`, projectID, userID).Scan(&old)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO project_roles (project_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`,
			projectID, userID, role, now()); err != nil {
			return false, false, fmt.Errorf("db: add role: %w", err)
		}
		if _, err := ensureProfileTx(ctx, tx, userID, rules); err != nil {
			return false, false, err
		}
		return true, true, nil
	case err != nil:
		return false, false, fmt.Errorf("db: get role: %w", err)
	case old == role:
		return false, false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE project_roles SET role = ? WHERE project_id = ? AND user_id = ?`, role, projectID, userID); err != nil {
		return false, false, fmt.Errorf("db: update role: %w", err)
	}
	return false, true, nil
}

// PutRole gives a user a role in a project (adding or changing it) and queues the room's
// member sync when anything changed; created reports a new member.
func (s *Store) PutRole(ctx context.Context, projectID int64, in RoleInput, rules ProfileRules) (created bool, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		userID, err := userIDByUUID(ctx, tx, in.UserUUID)
		if err != nil {
			return err
		}
		var changed bool
		created, changed, err = putRoleTx(ctx, tx, projectID, userID, in.Role, rules)
		if err != nil || !changed {
			return err
		}
		_, err = tx.ExecContext(ctx, sqlDirtyRoomOfProject, projectID)
		return err
	})
	return created, err
}

// SetRoles replaces a project's whole member list in one transaction (users not listed
// lose their role) and queues the room's member sync when anything changed. Entries must
// name distinct users; an unknown uuid is *UnknownUserError and changes nothing.
func (s *Store) SetRoles(ctx context.Context, projectID int64, in []RoleInput, rules ProfileRules) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		keep := map[int64]bool{}
		changed := false
		for _, r := range in {
			userID, err := userIDByUUID(ctx, tx, r.UserUUID)
			if err != nil {
				return err
			}
			keep[userID] = true
			_, c, err := putRoleTx(ctx, tx, projectID, userID, r.Role, rules)
			if err != nil {
				return err
			}
			changed = changed || c
		}
		rows, err := tx.QueryContext(ctx, `SELECT user_id FROM project_roles WHERE project_id = ?`, projectID)
		if err != nil {
			return fmt.Errorf("db: list roles of project %d: %w", projectID, err)
		}
		var drop []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("db: list roles of project %d: %w", projectID, err)
			}
			if !keep[id] {
				drop = append(drop, id)
			}
		}
		rows.Close()
		for _, id := range drop {
			if _, err := tx.ExecContext(ctx, `DELETE FROM project_roles WHERE project_id = ? AND user_id = ?`, projectID, id); err != nil {
				return fmt.Errorf("db: remove role: %w", err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
		_, err = tx.ExecContext(ctx, sqlDirtyRoomOfProject, projectID)
		return err
	})
}

// DeleteRole removes a user's role in a project and queues the room's member sync (the
// worker kicks the user with "Role removed"). No such role is ErrNotFound.
func (s *Store) DeleteRole(ctx context.Context, projectID int64, userUUID string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM project_roles WHERE project_id = ? AND user_id = (SELECT id FROM users WHERE uuid = ?)`,
			projectID, userUUID)
		if err != nil {
			return fmt.Errorf("db: remove role: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("db: remove role of %s in project %d: %w", userUUID, projectID, ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, sqlDirtyRoomOfProject, projectID)
		return err
	})
}
