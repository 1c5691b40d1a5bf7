package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/id"
)

// What the bot reads about a room's people to answer commands (package bot declares the
// interface). Rooms themselves come from RoomByID.

// BotMember is one person in a managed room as this server knows them.
type BotMember struct {
	UserID      id.UserID
	DisplayName string // the full name, else the username (what provisioning sets)
	PowerLevel  int
	Membership  string // last known: join, invite, leave, ban; "" = not synced yet
}

// BotRoomMembers lists the people of a room who have a Matrix account, by display name:
// the project's active role holders and anyone still in the room on the homeserver.
// PowerLevel is the level last synced, else the one the role grants.
func (s *Store) BotRoomMembers(ctx context.Context, roomPK int64) ([]BotMember, error) {
	rows, err := s.r.QueryContext(ctx, `WITH room AS (SELECT id, project_id FROM matrix_rooms WHERE id = ?),
		ids AS (SELECT user_id FROM project_members WHERE project_id = (SELECT project_id FROM room)
		        UNION SELECT user_id FROM matrix_room_members WHERE room_pk = (SELECT id FROM room))
		SELECT p.matrix_user_id, CASE WHEN u.full_name != '' THEN u.full_name ELSE u.username END,
		       COALESCE((SELECT r.role FROM project_members r WHERE r.user_id = u.id AND r.project_id = (SELECT project_id FROM room)), ''),
		       u.is_active, mm.power_level, COALESCE(mm.membership, '')
		FROM ids JOIN users u ON u.id = ids.user_id
		JOIN matrix_user_profiles p ON p.user_id = u.id
		LEFT JOIN matrix_room_members mm ON mm.user_id = u.id AND mm.room_pk = (SELECT id FROM room)
		ORDER BY 2, 1`, roomPK)
	if err != nil {
		return nil, fmt.Errorf("db: bot: members of room %d: %w", roomPK, err)
	}
	defer rows.Close()
	var out []BotMember
	for rows.Next() {
		var m BotMember
		var mxid, role string
		var active bool
		var pl sql.NullInt64
		if err := rows.Scan(&mxid, &m.DisplayName, &role, &active, &pl, &m.Membership); err != nil {
			return nil, fmt.Errorf("db: bot: members of room %d: %w", roomPK, err)
		}
		if !active {
			role = ""
		}
		if role == "" && m.Membership != "join" && m.Membership != "invite" {
			continue // gone, or never there
		}
		m.UserID = id.UserID(mxid)
		if pl.Valid && m.Membership != "" {
			m.PowerLevel = int(pl.Int64)
		} else {
			m.PowerLevel = RolePowerLevel(role)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SenderProjectRole returns the role in the project's room of the active user whose
// Matrix account is sender (a project role, or CUSTOMER.OWNER for an owner of the
// project's customer), "" when sender is no such user or has no role there.
func (s *Store) SenderProjectRole(ctx context.Context, projectID int64, sender id.UserID) (string, error) {
	var role string
	err := s.r.QueryRowContext(ctx, `SELECT r.role FROM matrix_user_profiles p
		JOIN users u ON u.id = p.user_id AND u.is_active = 1
		JOIN project_members r ON r.user_id = p.user_id AND r.project_id = ?
		WHERE p.matrix_user_id = ?`, projectID, string(sender)).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("db: bot: role of %s in project %d: %w", sender, projectID, err)
	}
	return role, nil
}
