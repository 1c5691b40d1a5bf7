package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"
)

// Room is a project's managed Matrix room and its place in the provisioning queue.
type Room struct {
	ID            int64
	UUID          string
	ProjectID     int64
	ProjectUUID   string
	ProjectName   string
	RoomID        id.RoomID    // "" until created on the homeserver
	RoomAlias     id.RoomAlias // "" when the room has none (yet)
	RoomName      string
	State         RoomState
	ErrorMessage  string // the last failure, kept while retrying and in state error
	Notice        string // something staff should know, e.g. created without its alias
	Attempts      int    // failures since the last success
	NextAttemptAt time.Time
	MembersDirty  bool // a member sync is queued or under way
	// MembersSyncing: a member sync is under way (a worker claimed it).
	MembersSyncing bool
	// CreateStartedAt is when a createRoom was sent for this room whose result was never
	// recorded (a crash, a timeout): the homeserver may hold a room the worker must adopt.
	// Zero when there is none.
	CreateStartedAt time.Time
	// DisableNotice and DisableExport are the disable path's progress: the outbox
	// message announcing it and the history export the archive waits for ("" = none).
	DisableNotice string
	DisableExport string
	// DisableExportAt is when the disable started waiting for DisableExport.
	DisableExportAt time.Time
	// DeleteHistory: the disable deletes the room's history exports instead of making one.
	DeleteHistory bool
	// ProjectDeleting: the project was deleted; it goes, with this row, once the room is
	// archived.
	ProjectDeleting bool
	CreatedAt       time.Time
	ModifiedAt      time.Time
}

// RoomMember is one member of a managed room: a user with a role in the project, or a
// former member the worker has not removed yet (Role "").
type RoomMember struct {
	UserID       int64
	UserUUID     string
	Username     string
	FullName     string
	MatrixUserID id.UserID // "" when the user has no profile yet
	Role         string
	// StaffJoined: a staff member who joined through the room's join action (they hold
	// no role, or hold one and moderate all the same).
	StaffJoined bool
	PowerLevel  int
	Membership  string // last known on the homeserver: join, invite, leave, ban; "" = not synced yet
	LastError   string
	SyncedAt    time.Time // zero when never
}

const roomColumns = `m.id, m.uuid, m.project_id, p.uuid, p.name, m.room_id, m.room_alias, m.room_name, m.state,
	m.error_message, m.notice, m.attempts, m.next_attempt_at, m.members_dirty, m.create_started_at,
	m.disable_notice, m.disable_export, m.disable_export_at, m.delete_history, p.deleting_at, m.created_at, m.modified_at`

const roomFrom = ` FROM matrix_rooms m JOIN projects p ON p.id = m.project_id`

func scanRoom(row interface{ Scan(...any) error }) (*Room, error) {
	var r Room
	var state string
	var next, createStarted, exportAt, deleting, created, modified int64
	var dirty int
	if err := row.Scan(&r.ID, &r.UUID, &r.ProjectID, &r.ProjectUUID, &r.ProjectName, &r.RoomID, &r.RoomAlias, &r.RoomName,
		&state, &r.ErrorMessage, &r.Notice, &r.Attempts, &next, &dirty, &createStarted,
		&r.DisableNotice, &r.DisableExport, &exportAt, &r.DeleteHistory, &deleting, &created, &modified); err != nil {
		return nil, err
	}
	r.State = RoomState(state)
	r.MembersDirty = dirty != 0
	r.MembersSyncing = dirty == 2
	r.ProjectDeleting = deleting != 0
	if exportAt != 0 {
		r.DisableExportAt = time.Unix(exportAt, 0).UTC()
	}
	if createStarted != 0 {
		r.CreateStartedAt = time.Unix(createStarted, 0).UTC()
	}
	if next > 0 {
		r.NextAttemptAt = time.Unix(next, 0).UTC()
	}
	r.CreatedAt = time.Unix(created, 0).UTC()
	r.ModifiedAt = time.Unix(modified, 0).UTC()
	return &r, nil
}

// createRoomTx queues a room for a project; a second room for a project is ErrConflict.
func createRoomTx(ctx context.Context, tx *sql.Tx, projectID int64) (string, error) {
	uuid := NewUUID()
	t := now()
	_, err := tx.ExecContext(ctx, `INSERT INTO matrix_rooms (uuid, project_id, room_name, state, members_dirty, created_at, modified_at)
		SELECT ?, id, name, 'creating', 1, ?, ? FROM projects WHERE id = ?`, uuid, t, t, projectID)
	if isUniqueViolation(err) {
		return "", fmt.Errorf("db: create room for project %d: %w", projectID, ErrConflict)
	}
	if err != nil {
		return "", fmt.Errorf("db: create room for project %d: %w", projectID, err)
	}
	return uuid, nil
}

// CreateRoom queues the creation of a project's room (state creating). A project has at
// most one room: a second is ErrConflict.
func (s *Store) CreateRoom(ctx context.Context, projectID int64) (*Room, error) {
	var uuid string
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		uuid, err = createRoomTx(ctx, tx, projectID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.RoomByUUID(ctx, uuid)
}

// CreateMissingRooms queues a room for every project that has none (AUTO_CREATE_ROOMS)
// and returns how many it queued.
func (s *Store) CreateMissingRooms(ctx context.Context) (int, error) {
	var n int
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM projects p WHERE NOT EXISTS (SELECT 1 FROM matrix_rooms m WHERE m.project_id = p.id)`)
		if err != nil {
			return fmt.Errorf("db: find projects without room: %w", err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("db: find projects without room: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			if _, err := createRoomTx(ctx, tx, id); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// RoomByUUID returns the room with the given uuid.
func (s *Store) RoomByUUID(ctx context.Context, uuid string) (*Room, error) {
	r, err := scanRoom(s.r.QueryRowContext(ctx, `SELECT `+roomColumns+roomFrom+` WHERE m.uuid = ?`, uuid))
	if err != nil {
		return nil, notFound(err, "get room "+uuid)
	}
	return r, nil
}

// RoomByID returns the room with the given row id.
func (s *Store) RoomByID(ctx context.Context, id int64) (*Room, error) {
	r, err := scanRoom(s.r.QueryRowContext(ctx, `SELECT `+roomColumns+roomFrom+` WHERE m.id = ?`, id))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("get room %d", id))
	}
	return r, nil
}

// RoomFilter selects rooms for ListRooms; zero fields do not filter.
type RoomFilter struct {
	State       RoomState
	ProjectUUID string
	Search      string // substring of room name, room id, alias or project name
	// MemberUserID keeps the rooms this user is in or invited to (?member=true).
	MemberUserID int64
	Page         Page
}

// ListRooms returns one page of rooms ordered by creation (oldest first), and the total count.
func (s *Store) ListRooms(ctx context.Context, f RoomFilter) ([]*Room, int, error) {
	where := []string{"1 = 1"}
	var args []any
	if f.State != "" {
		where = append(where, `m.state = ?`)
		args = append(args, string(f.State))
	}
	if f.ProjectUUID != "" {
		where = append(where, `p.uuid = ?`)
		args = append(args, f.ProjectUUID)
	}
	if f.Search != "" {
		where = append(where, `(m.room_name LIKE ? ESCAPE '\' OR m.room_id LIKE ? ESCAPE '\' OR m.room_alias LIKE ? ESCAPE '\' OR p.name LIKE ? ESCAPE '\')`)
		pat := likePattern(f.Search)
		args = append(args, pat, pat, pat, pat)
	}
	if f.MemberUserID != 0 {
		where = append(where, `EXISTS (SELECT 1 FROM matrix_room_members mm WHERE mm.room_pk = m.id AND mm.user_id = ?
			AND mm.membership IN ('join', 'invite'))`)
		args = append(args, f.MemberUserID)
	}
	cond := ` WHERE ` + strings.Join(where, " AND ")
	var total int
	if f.ProjectUUID == "" && f.Search == "" && f.MemberUserID == 0 {
		// Filtered by state at most: the trigger-kept counts answer in O(1) what a COUNT
		// over every room of the state would scan for.
		q, qargs := `SELECT COALESCE(SUM(n), 0) FROM room_state_counts`, []any{}
		if f.State != "" {
			q, qargs = q+` WHERE state = ?`, []any{string(f.State)}
		}
		if err := s.r.QueryRowContext(ctx, q, qargs...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("db: count rooms: %w", err)
		}
	} else if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)`+roomFrom+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("db: count rooms: %w", err)
	}
	limit, offset := f.Page.limitOffset()
	rows, err := s.r.QueryContext(ctx, `SELECT `+roomColumns+roomFrom+cond+` ORDER BY m.id LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list rooms: %w", err)
	}
	defer rows.Close()
	var out []*Room
	for rows.Next() {
		r, err := scanRoom(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("db: list rooms: %w", err)
		}
		out = append(out, r)
	}
	return out, total, rows.Err()
}

// RoomStateCounts counts rooms per state (every state present, zero when none).
func (s *Store) RoomStateCounts(ctx context.Context) (map[RoomState]int, error) {
	out := map[RoomState]int{}
	for _, st := range RoomStates {
		out[st] = 0
	}
	rows, err := s.r.QueryContext(ctx, `SELECT state, n FROM room_state_counts`) // kept by triggers
	if err != nil {
		return nil, fmt.Errorf("db: count rooms by state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st RoomState
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("db: count rooms by state: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}

// roomMembersQuery selects a room's members (see RoomMembers) from the ids CTE (role
// holders and the owners of the project's customer: project_members, and anyone with a
// membership row); the filter in SQL keeps pagination and counting exact. Its ? is the
// room's row id.
const roomMembersQuery = `WITH room AS (SELECT id, project_id FROM matrix_rooms WHERE id = ?),
	ids AS (SELECT user_id FROM project_members WHERE project_id = (SELECT project_id FROM room)
	        UNION SELECT user_id FROM matrix_room_members WHERE room_pk = (SELECT id FROM room)),
	rows AS (
		SELECT u.id, u.uuid, u.username, u.full_name, COALESCE(pr.matrix_user_id, '') AS mxid,
		       CASE WHEN u.is_active = 1 THEN COALESCE(r.role, '') ELSE '' END AS role,
		       COALESCE(mm.staff_joined, 0) = 1 AND u.is_staff = 1 AND u.is_active = 1 AS staff,
		       mm.power_level, COALESCE(mm.membership, '') AS membership, COALESCE(mm.last_error, '') AS last_error, mm.synced_at
		FROM ids JOIN users u ON u.id = ids.user_id
		LEFT JOIN project_members r ON r.user_id = u.id AND r.project_id = (SELECT project_id FROM room)
		LEFT JOIN matrix_room_members mm ON mm.user_id = u.id AND mm.room_pk = (SELECT id FROM room)
		LEFT JOIN matrix_user_profiles pr ON pr.user_id = u.id)
	SELECT %s FROM rows WHERE role != '' OR staff OR membership IN ('join', 'invite')`

// RoomMembers lists a room's members by username: every active user with a role in the
// project or owning its customer, staff who joined through the join action, and former members still joined or
// invited on the homeserver (Role "", to be removed). A deactivated user is on the way
// out whatever their role.
func (s *Store) RoomMembers(ctx context.Context, roomPK int64) ([]*RoomMember, error) {
	out, _, err := s.RoomMembersPage(ctx, roomPK, Page{Size: -1})
	return out, err
}

// RoomMembersPage is one page of RoomMembers and the total count; a Page with a negative
// Size is every member.
func (s *Store) RoomMembersPage(ctx context.Context, roomPK int64, p Page) ([]*RoomMember, int, error) {
	var total int
	if err := s.r.QueryRowContext(ctx, fmt.Sprintf(roomMembersQuery, `COUNT(*)`), roomPK).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("db: count members of room %d: %w", roomPK, err)
	}
	q := fmt.Sprintf(roomMembersQuery, `id, uuid, username, full_name, mxid, role, staff, power_level, membership, last_error, synced_at`) +
		` ORDER BY username, id`
	args := []any{roomPK}
	if p.Size >= 0 {
		limit, offset := p.limitOffset()
		q += ` LIMIT ? OFFSET ?`
		args = append(args, limit, offset)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list members of room %d: %w", roomPK, err)
	}
	defer rows.Close()
	var out []*RoomMember
	for rows.Next() {
		var m RoomMember
		var pl, synced sql.NullInt64
		if err := rows.Scan(&m.UserID, &m.UserUUID, &m.Username, &m.FullName, &m.MatrixUserID, &m.Role, &m.StaffJoined, &pl,
			&m.Membership, &m.LastError, &synced); err != nil {
			return nil, 0, fmt.Errorf("db: list members of room %d: %w", roomPK, err)
		}
		if pl.Valid && m.Membership != "" {
			m.PowerLevel = int(pl.Int64)
		} else {
			m.PowerLevel = MemberPowerLevel(m.Role, m.StaffJoined)
		}
		if synced.Valid {
			m.SyncedAt = time.Unix(synced.Int64, 0).UTC()
		}
		out = append(out, &m)
	}
	return out, total, rows.Err()
}

// transitionTx moves a room to state `to` through the state machine, applying set (extra
// "col = ?" assignments, with args) in the same statement. A forbidden move is
// *TransitionError; a missing room ErrNotFound.
func transitionTx(ctx context.Context, tx *sql.Tx, roomPK int64, to RoomState, set string, args ...any) error {
	var from string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM matrix_rooms WHERE id = ?`, roomPK).Scan(&from); err != nil {
		return notFound(err, fmt.Sprintf("get room %d", roomPK))
	}
	if !CanTransition(RoomState(from), to) {
		return &TransitionError{From: RoomState(from), To: to}
	}
	if set != "" {
		set = ", " + set
	}
	q := `UPDATE matrix_rooms SET state = ?, modified_at = ?` + set + ` WHERE id = ?`
	all := append([]any{string(to), now()}, args...)
	if _, err := tx.ExecContext(ctx, q, append(all, roomPK)...); err != nil {
		return fmt.Errorf("db: room %d to %s: %w", roomPK, to, err)
	}
	return nil
}

// ErrRoomNotQueued is returned by ClaimRoom when the room has nothing to do any more.
var ErrRoomNotQueued = errors.New("db: room has nothing to do")
