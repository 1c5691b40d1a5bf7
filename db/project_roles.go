package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"
)

// The roles, by the platform's names (the reference's role model): three project roles,
// and the owners of a customer, who belong in every room of its projects.
const (
	RoleAdmin         = "PROJECT.ADMIN"
	RoleManager       = "PROJECT.MANAGER"
	RoleMember        = "PROJECT.MEMBER"
	RoleCustomerOwner = "CUSTOMER.OWNER"
)

// The power levels of a project's room, the one place that says who may do what there
// (the README's "Roles and power levels" shows the same table): the bot, which follows
// the project, may do everything; project admins and the owners of the project's
// customer moderate (50), and so do staff who joined through the room's join action
// (MemberPowerLevel); managers and members talk (0), as in the reference. Sending
// messages needs 0; invite, kick, ban, redact and state events need the bot's.
const BotPowerLevel = 100

var rolePowerLevels = map[string]int{
	RoleAdmin:         50,
	RoleCustomerOwner: 50,
	RoleManager:       0,
	RoleMember:        0,
}

// shortRoles are the project roles' names before the platform's were adopted ("admin",
// "manager", "member"): the directory API still accepts them.
var shortRoles = map[string]string{
	"admin":   RoleAdmin,
	"manager": RoleManager,
	"member":  RoleMember,
}

// ProjectRoles lists the project roles, strongest first.
var ProjectRoles = []string{RoleAdmin, RoleManager, RoleMember}

// ParseProjectRole reads a project role in either spelling, the platform's
// ("PROJECT.ADMIN") or the short one the directory API took before ("admin"), in any
// case, and returns the platform's; ok is false for anything else (CUSTOMER.OWNER is not
// a project role).
func ParseProjectRole(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if r, ok := shortRoles[strings.ToLower(s)]; ok {
		return r, true
	}
	up := strings.ToUpper(s)
	for _, r := range ProjectRoles {
		if up == r {
			return r, true
		}
	}
	return "", false
}

// ValidRole reports whether role names a project role (in either spelling).
func ValidRole(role string) bool {
	_, ok := ParseProjectRole(role)
	return ok
}

// RolePowerLevel is the room power level a role grants (0 for no role). The short
// spellings of the project roles count as their platform names.
func RolePowerLevel(role string) int {
	if r, ok := shortRoles[role]; ok {
		role = r
	}
	return rolePowerLevels[role]
}

// roleRank orders roles by what they give in a room: a person holding several keeps the
// one with the lowest rank (PROJECT.ADMIN, then CUSTOMER.OWNER, then the others). The
// project_members view applies the same order.
func roleRank(role string) int {
	switch role {
	case RoleAdmin:
		return 0
	case RoleCustomerOwner:
		return 1
	case RoleManager:
		return 2
	case RoleMember:
		return 3
	}
	return 4
}

// StrongerRole reports whether role a weighs more in a room than role b.
func StrongerRole(a, b string) bool { return roleRank(a) < roleRank(b) }

// RoleNotices words the room notifications of role changes. The texts live in package
// bot, which imports this one; the server hands them to the store (SetRoleNotices).
type RoleNotices interface {
	RoleGranted(name, role string) string
	RoleRevoked(name, role string) string
}

// SetRoleNotices makes every write of a role (the directory API's and the platform
// sync's) queue its notification into the project's room, in the same transaction. Nil
// turns them off (the default: a store without a bot announces nothing).
func (s *Store) SetRoleNotices(n RoleNotices) {
	if n == nil {
		s.notices.Store(nil)
		return
	}
	s.notices.Store(&n)
}

func (s *Store) roleNotices() RoleNotices {
	if p := s.notices.Load(); p != nil {
		return *p
	}
	return nil
}

// announceRoleTx queues the notification of userID gaining (granted) or losing role into
// the active room of each project: one for a project role, the customer's projects for
// CUSTOMER.OWNER. Inactive users are not in the rooms and are not announced.
func (s *Store) announceRoleTx(ctx context.Context, tx *sql.Tx, projectIDs []int64, userID int64, role string, granted bool) (int, error) {
	n := s.roleNotices()
	if n == nil || len(projectIDs) == 0 {
		return 0, nil
	}
	name := ""
	queued := 0
	cache := cacheOf(ctx, tx)
	for _, pid := range projectIDs {
		roomPK, known := int64(0), false
		if cache != nil {
			roomPK, known = cache.rooms[pid]
		}
		if !known {
			err := queryRowTx(ctx, tx, `SELECT id FROM matrix_rooms WHERE project_id = ? AND state = 'active' AND room_id != ''`, pid).Scan(&roomPK)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return queued, fmt.Errorf("db: room of project %d: %w", pid, err)
			}
			if cache != nil {
				cache.rooms[pid] = roomPK
			}
		}
		if roomPK == 0 {
			continue
		}
		if name == "" {
			var full, username string
			var active bool
			if err := queryRowTx(ctx, tx, `SELECT full_name, username, is_active FROM users WHERE id = ?`, userID).Scan(&full, &username, &active); err != nil {
				return queued, notFound(err, fmt.Sprintf("get user %d", userID))
			}
			if !active {
				return queued, nil
			}
			name = full
			if strings.TrimSpace(name) == "" {
				name = username
			}
		}
		text := n.RoleRevoked(name, role)
		if granted {
			text = n.RoleGranted(name, role)
		}
		if _, err := s.QueueNotificationTx(ctx, tx, roomPK, text); err != nil {
			return queued, err
		}
		queued++
	}
	return queued, nil
}

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

// RoleInput is one entry of a project's member list, by user uuid. Role may be given in
// either spelling (ParseProjectRole).
type RoleInput struct {
	UserUUID string
	Role     string
}

// UnknownUserError names a user uuid that does not exist.
type UnknownUserError struct{ UUID string }

func (e *UnknownUserError) Error() string { return "no user with uuid " + e.UUID }

// ErrBadRole is a role write naming something that is not a project role.
var ErrBadRole = errors.New("not a project role")

// ListRoles lists a project's roles by username (its project roles only; the owners of
// its customer are listed with the customer).
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

// putRoleTx sets one role and reports whether it created the row and whether anything
// changed. A change is announced in the project's room: the role granted, or the old
// role lost and the new one granted.
func (s *Store) putRoleTx(ctx context.Context, tx *sql.Tx, projectID, userID int64, role string, rules ProfileRules) (created, changed bool, err error) {
	role, ok := ParseProjectRole(role)
	if !ok {
		return false, false, fmt.Errorf("db: set role: %w", ErrBadRole)
	}
	var old string
	err = queryRowTx(ctx, tx, `SELECT role FROM project_roles WHERE project_id = ? AND user_id = ?`, projectID, userID).Scan(&old)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := execTx(ctx, tx, `INSERT INTO project_roles (project_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`,
			projectID, userID, role, now()); err != nil {
			return false, false, fmt.Errorf("db: add role: %w", err)
		}
		if err := ensureProfileOnceTx(ctx, tx, userID, rules); err != nil {
			return false, false, err
		}
		_, err := s.announceRoleTx(ctx, tx, []int64{projectID}, userID, role, true)
		return true, true, err
	case err != nil:
		return false, false, fmt.Errorf("db: get role: %w", err)
	case old == role:
		return false, false, nil
	}
	if _, err := execTx(ctx, tx, `UPDATE project_roles SET role = ? WHERE project_id = ? AND user_id = ?`, role, projectID, userID); err != nil {
		return false, false, fmt.Errorf("db: update role: %w", err)
	}
	if _, err := s.announceRoleTx(ctx, tx, []int64{projectID}, userID, old, false); err != nil {
		return false, false, err
	}
	_, err = s.announceRoleTx(ctx, tx, []int64{projectID}, userID, role, true)
	return false, true, err
}

// deleteRoleTx removes a user's role in a project, announcing it; false when there was none.
func (s *Store) deleteRoleTx(ctx context.Context, tx *sql.Tx, projectID, userID int64) (bool, error) {
	var old string
	err := queryRowTx(ctx, tx, `DELETE FROM project_roles WHERE project_id = ? AND user_id = ? RETURNING role`, projectID, userID).Scan(&old)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("db: remove role: %w", err)
	}
	_, err = s.announceRoleTx(ctx, tx, []int64{projectID}, userID, old, false)
	return true, err
}

// PutRole gives a user a role in a project (adding or changing it, in either spelling)
// and queues the room's member sync and the change's notification when anything changed;
// created reports a new member.
func (s *Store) PutRole(ctx context.Context, projectID int64, in RoleInput, rules ProfileRules) (created bool, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		userID, err := userIDByUUID(ctx, tx, in.UserUUID)
		if err != nil {
			return err
		}
		var changed bool
		created, changed, err = s.putRoleTx(ctx, tx, projectID, userID, in.Role, rules)
		if err != nil || !changed {
			return err
		}
		_, err = tx.ExecContext(ctx, sqlDirtyRoomOfProject, projectID)
		return err
	})
	return created, err
}

// SetRoles replaces a project's whole member list in one transaction (users not listed
// lose their role) and queues the room's member sync and the notifications when anything
// changed. Entries must name distinct users; an unknown uuid is *UnknownUserError and
// changes nothing.
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
			_, c, err := s.putRoleTx(ctx, tx, projectID, userID, r.Role, rules)
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
			if _, err := s.deleteRoleTx(ctx, tx, projectID, id); err != nil {
				return err
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
// worker kicks the user with "Role removed") and the notification. No such role is
// ErrNotFound.
func (s *Store) DeleteRole(ctx context.Context, projectID int64, userUUID string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var userID int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE uuid = ?`, userUUID).Scan(&userID); err != nil {
			return notFound(err, fmt.Sprintf("remove role of %s in project %d", userUUID, projectID))
		}
		gone, err := s.deleteRoleTx(ctx, tx, projectID, userID)
		if err != nil {
			return err
		}
		if !gone {
			return fmt.Errorf("db: remove role of %s in project %d: %w", userUUID, projectID, ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, sqlDirtyRoomOfProject, projectID)
		return err
	})
}

// RoleChange is one difference the platform sync found: the role a user should now
// hold in a project (ProjectUUID set; Role a project role) or on a customer
// (CustomerUUID set; Role CUSTOMER.OWNER), "" for none (revoked).
type RoleChange struct {
	ProjectUUID  string
	CustomerUUID string
	UserUUID     string
	Role         string
}

// SyncRoles applies the role changes the platform sync found (taken one at a time, so a
// large run never holds them all in the store's form), in one transaction: each
// announced in the rooms it concerns, each room whose members changed queued for a
// member sync. Created counts grants, Updated changed roles, Removed revocations;
// skipped counts changes naming a user, project or customer the store does not have.
func (s *Store) SyncRoles(ctx context.Context, changes iter.Seq[RoleChange], rules ProfileRules) (n SyncCount, skipped int, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		ctx, done := withTxCache(ctx, tx)
		defer done()
		n, skipped = SyncCount{}, 0
		ids := map[string]int64{} // "u"+uuid, "p"+uuid, "c"+uuid -> row id; 0 = none
		lookup := func(kind, table, uuid string) (int64, error) {
			if id, ok := ids[kind+uuid]; ok {
				return id, nil
			}
			var id int64
			err := queryRowTx(ctx, tx, `SELECT id FROM `+table+` WHERE uuid = ?`, uuid).Scan(&id)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return 0, fmt.Errorf("db: get %s %s: %w", table, uuid, err)
			}
			ids[kind+uuid] = id
			return id, nil
		}
		dirty := map[int64]bool{}
		for c := range changes {
			uid, err := lookup("u", "users", c.UserUUID)
			if err != nil {
				return err
			}
			if uid == 0 {
				skipped++
				continue
			}
			if c.CustomerUUID != "" {
				cid, err := lookup("c", "customers", c.CustomerUUID)
				if err != nil {
					return err
				}
				if cid == 0 {
					skipped++
					continue
				}
				var done bool
				if c.Role == "" {
					done, err = s.deleteOwnerTx(ctx, tx, cid, uid)
					if done {
						n.Removed++
					}
				} else {
					done, err = s.putOwnerTx(ctx, tx, cid, uid, rules)
					if done {
						n.Created++
					}
				}
				if err != nil {
					return err
				}
				continue
			}
			pid, err := lookup("p", "projects", c.ProjectUUID)
			if err != nil {
				return err
			}
			if pid == 0 {
				skipped++
				continue
			}
			if c.Role == "" {
				gone, err := s.deleteRoleTx(ctx, tx, pid, uid)
				if err != nil {
					return err
				}
				if gone {
					n.Removed++
					dirty[pid] = true
				}
				continue
			}
			created, changed, err := s.putRoleTx(ctx, tx, pid, uid, c.Role, rules)
			if err != nil {
				return err
			}
			switch {
			case created:
				n.Created++
			case changed:
				n.Updated++
			}
			if changed {
				dirty[pid] = true
			}
		}
		for pid := range dirty {
			if _, err := execTx(ctx, tx, sqlDirtyRoomOfProject, pid); err != nil {
				return fmt.Errorf("db: queue room of project %d: %w", pid, err)
			}
		}
		return nil
	})
	return n, skipped, err
}

// RolesOfUser returns a user's project roles (by project uuid) and the customers they
// own (uuids), for the platform sync's comparison of one user's roles. An unknown user
// has none.
func (s *Store) RolesOfUser(ctx context.Context, userUUID string) (projects map[string]string, customers []string, err error) {
	projects = map[string]string{}
	rows, err := s.r.QueryContext(ctx, `SELECT p.uuid, r.role FROM project_roles r JOIN projects p ON p.id = r.project_id
		WHERE r.user_id = (SELECT id FROM users WHERE uuid = ?)`, userUUID)
	if err != nil {
		return nil, nil, fmt.Errorf("db: roles of user %s: %w", userUUID, err)
	}
	for rows.Next() {
		var p, role string
		if err := rows.Scan(&p, &role); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("db: roles of user %s: %w", userUUID, err)
		}
		projects[p] = role
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("db: roles of user %s: %w", userUUID, err)
	}
	rows, err = s.r.QueryContext(ctx, `SELECT c.uuid FROM customer_roles r JOIN customers c ON c.id = r.customer_id
		WHERE r.user_id = (SELECT id FROM users WHERE uuid = ?)`, userUUID)
	if err != nil {
		return nil, nil, fmt.Errorf("db: customers of user %s: %w", userUUID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, nil, fmt.Errorf("db: customers of user %s: %w", userUUID, err)
		}
		customers = append(customers, c)
	}
	return projects, customers, rows.Err()
}

// ensureProfileOnceTx is ensureProfileTx, skipped for a user this transaction already
// made sure of (a bulk write gives one user many roles).
func ensureProfileOnceTx(ctx context.Context, tx *sql.Tx, userID int64, rules ProfileRules) error {
	c := cacheOf(ctx, tx)
	if c != nil && c.ensured[userID] {
		return nil
	}
	if _, err := ensureProfileTx(ctx, tx, userID, rules); err != nil {
		return err
	}
	if c != nil {
		c.ensured[userID] = true
	}
	return nil
}
