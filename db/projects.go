package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Project is a platform project; its managed Matrix room (if any) is summarised.
type Project struct {
	ID          int64
	UUID        string
	Name        string
	Description string
	CreatedAt   time.Time
	ModifiedAt  time.Time

	// CustomerUUID and CustomerName are the project's customer ("" when none): its
	// owners are members of the project's room.
	CustomerUUID string
	CustomerName string
	Source       string // SourceAPI or SourceWaldur (the platform sync owns it)

	RoomUUID    string    // "" when the project has no room
	RoomState   RoomState // "" when the project has no room
	MemberCount int       // project roles held
}

// DirectoryProject is a project as the platform's automation pushes it (or the platform
// sync writes it).
type DirectoryProject struct {
	UUID         string // 32 hex digits; "" = generate one
	Name         string
	Description  string
	CustomerUUID string // "" = no customer
}

// ProjectHasRoomError refuses to delete a project whose Matrix room still exists on the
// homeserver with members in it: it must be disabled (archived) first.
type ProjectHasRoomError struct{ State RoomState }

func (e *ProjectHasRoomError) Error() string {
	return fmt.Sprintf("the project's Matrix room is %s", e.State)
}

const projectColumns = `p.id, p.uuid, p.name, p.description, p.created_at, p.modified_at,
	COALESCE(c.uuid, ''), COALESCE(c.name, ''), p.source,
	COALESCE(m.uuid, ''), COALESCE(m.state, ''), (SELECT COUNT(*) FROM project_roles r WHERE r.project_id = p.id)`

const projectFrom = ` FROM projects p LEFT JOIN matrix_rooms m ON m.project_id = p.id LEFT JOIN customers c ON c.id = p.customer_id`

func scanProject(row interface{ Scan(...any) error }) (*Project, error) {
	var p Project
	var created, modified int64
	var state string
	if err := row.Scan(&p.ID, &p.UUID, &p.Name, &p.Description, &created, &modified,
		&p.CustomerUUID, &p.CustomerName, &p.Source, &p.RoomUUID, &state, &p.MemberCount); err != nil {
		return nil, err
	}
	p.RoomState = RoomState(state)
	p.CreatedAt = time.Unix(created, 0).UTC()
	p.ModifiedAt = time.Unix(modified, 0).UTC()
	return &p, nil
}

// sqlDirtyRoomOfProject queues a re-sync of the project's room (members, name).
const sqlDirtyRoomOfProject = `UPDATE matrix_rooms SET members_dirty = 1, next_attempt_at = 0
	WHERE project_id = ? AND state IN ('creating', 'active')`

// putProjectTx creates or updates the project with in.UUID as source writes it, and
// reports whether it created one and whether anything changed. A changed name queues the
// room for a re-sync (the room's name follows the project's); a changed customer too (its
// owners are members). With autoRoom a project without a room gets one queued. A write
// from the API to a project the sync owns is *OwnedError; an unknown customer
// *UnknownCustomerError.
func putProjectTx(ctx context.Context, tx *sql.Tx, in DirectoryProject, autoRoom bool, source string) (id int64, created, changed bool, err error) {
	if in.UUID == "" {
		in.UUID = NewUUID()
	}
	customer, err := customerIDByUUID(ctx, tx, in.CustomerUUID)
	if err != nil {
		return 0, false, false, err
	}
	var name, desc, oldSource string
	var oldCustomer sql.NullInt64
	err = queryRowTx(ctx, tx, `SELECT id, name, description, customer_id, source FROM projects WHERE uuid = ?`, in.UUID).
		Scan(&id, &name, &desc, &oldCustomer, &oldSource)
	t := now()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		created, changed = true, true
		res, err := execTx(ctx, tx, `INSERT INTO projects (uuid, name, description, customer_id, source, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			in.UUID, in.Name, in.Description, customer, source, t, t)
		if err != nil {
			return 0, false, false, fmt.Errorf("db: create project %s: %w", in.UUID, err)
		}
		id, _ = res.LastInsertId()
	case err != nil:
		return 0, false, false, fmt.Errorf("db: get project %s: %w", in.UUID, err)
	case oldSource != SourceAPI && source == SourceAPI:
		return 0, false, false, &OwnedError{Kind: "project", UUID: in.UUID, Source: oldSource}
	case name != in.Name || desc != in.Description || oldCustomer != customer || oldSource != source:
		changed = true
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET name = ?, description = ?, customer_id = ?, source = ?, modified_at = ? WHERE id = ?`,
			in.Name, in.Description, customer, source, t, id); err != nil {
			return 0, false, false, fmt.Errorf("db: update project %s: %w", in.UUID, err)
		}
		if name != in.Name || oldCustomer != customer {
			if _, err := tx.ExecContext(ctx, sqlDirtyRoomOfProject, id); err != nil {
				return 0, false, false, fmt.Errorf("db: queue room of project %s: %w", in.UUID, err)
			}
		}
	}
	if !autoRoom {
		return id, created, changed, nil
	}
	var hasRoom bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM matrix_rooms WHERE project_id = ?)`, id).Scan(&hasRoom); err != nil {
		return 0, false, false, fmt.Errorf("db: room of project %s: %w", in.UUID, err)
	}
	if !hasRoom {
		if _, err := createRoomTx(ctx, tx, id); err != nil {
			return 0, false, false, err
		}
	}
	return id, created, changed, nil
}

// PutProject creates the project with in.UUID, or updates the project that has it, for
// the directory API, and reports whether it created one; writing the same values twice
// changes nothing. With autoRoom a project without a room gets one queued in the same
// transaction. A project the platform sync owns is *OwnedError; an unknown customer
// *UnknownCustomerError.
func (s *Store) PutProject(ctx context.Context, in DirectoryProject, autoRoom bool) (*Project, bool, error) {
	var created bool
	if in.UUID == "" {
		in.UUID = NewUUID()
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		_, created, _, err = putProjectTx(ctx, tx, in, autoRoom, SourceAPI)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	p, err := s.ProjectByUUID(ctx, in.UUID)
	return p, created, err
}

// ProjectByUUID returns the project with the given uuid (32 hex digits).
func (s *Store) ProjectByUUID(ctx context.Context, uuid string) (*Project, error) {
	p, err := scanProject(s.r.QueryRowContext(ctx, `SELECT `+projectColumns+projectFrom+` WHERE p.uuid = ?`, uuid))
	if err != nil {
		return nil, notFound(err, "get project "+uuid)
	}
	return p, nil
}

// ProjectFilter selects projects for ListProjects.
type ProjectFilter struct {
	Search       string // substring of name or description
	CustomerUUID string // only this customer's projects
	Page         Page
}

// ListProjects returns one page of projects ordered by name, and the total count.
func (s *Store) ListProjects(ctx context.Context, f ProjectFilter) ([]*Project, int, error) {
	where := []string{"1 = 1"}
	var args []any
	if f.Search != "" {
		where = append(where, `(p.name LIKE ? ESCAPE '\' OR p.description LIKE ? ESCAPE '\')`)
		pat := likePattern(f.Search)
		args = append(args, pat, pat)
	}
	if f.CustomerUUID != "" {
		where = append(where, `p.customer_id = (SELECT id FROM customers WHERE uuid = ?)`)
		args = append(args, f.CustomerUUID)
	}
	cond := ` WHERE ` + strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects p`+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("db: count projects: %w", err)
	}
	limit, offset := f.Page.limitOffset()
	rows, err := s.r.QueryContext(ctx, `SELECT `+projectColumns+projectFrom+cond+` ORDER BY p.name, p.id LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list projects: %w", err)
	}
	defer rows.Close()
	var out []*Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("db: list projects: %w", err)
		}
		out = append(out, p)
	}
	return out, total, rows.Err()
}

// DeleteProject deletes a project with its roles. A project whose room may still exist
// on the homeserver with members in it is refused with *ProjectHasRoomError: the room must
// be disabled first (a room that never got a room id, or is archived, goes with it).
func (s *Store) DeleteProject(ctx context.Context, uuid string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM projects WHERE uuid = ?`, uuid).Scan(&id); err != nil {
			return notFound(err, "delete project "+uuid)
		}
		var state, roomID string
		err := tx.QueryRowContext(ctx, `SELECT state, room_id FROM matrix_rooms WHERE project_id = ?`, id).Scan(&state, &roomID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("db: delete project %s: %w", uuid, err)
		case RoomState(state) != RoomArchived && roomID != "":
			return &ProjectHasRoomError{State: RoomState(state)}
		case RoomState(state) == RoomCreating || RoomState(state) == RoomDisabling:
			// The worker may be creating it right now; wait until it settles.
			return &ProjectHasRoomError{State: RoomState(state)}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE id = ?`, id); err != nil {
			return fmt.Errorf("db: delete project %s: %w", uuid, err)
		}
		return nil
	})
}

// SyncPutProjects writes the projects the platform sync found new or changed as rows it
// owns (adopting rows the API made with the same uuid), in one transaction; with
// autoRoom (AUTO_CREATE_ROOMS) every one of them without a room gets one queued. A
// project naming a customer the store does not have is written without one.
func (s *Store) SyncPutProjects(ctx context.Context, in []DirectoryProject, autoRoom bool) (SyncCount, error) {
	var n SyncCount
	if len(in) == 0 {
		return n, nil
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		ctx, done := withTxCache(ctx, tx)
		defer done()
		n = SyncCount{}
		for _, p := range in {
			_, created, changed, err := putProjectTx(ctx, tx, p, autoRoom, SourceWaldur)
			var uc *UnknownCustomerError
			if errors.As(err, &uc) {
				p.CustomerUUID = ""
				_, created, changed, err = putProjectTx(ctx, tx, p, autoRoom, SourceWaldur)
			}
			if err != nil {
				return err
			}
			switch {
			case created:
				n.Created++
			case changed:
				n.Updated++
			}
		}
		return nil
	})
	return n, err
}
