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
	// Deleting: the project was deleted while its room had to be disabled first; it goes
	// once the room is archived.
	Deleting bool
}

// DirectoryProject is a project as the platform's automation pushes it (or the platform
// sync writes it).
type DirectoryProject struct {
	UUID         string // 32 hex digits; "" = generate one
	Name         string
	Description  string
	CustomerUUID string // "" = no customer
}

const projectColumns = `p.id, p.uuid, p.name, p.description, p.created_at, p.modified_at,
	COALESCE(c.uuid, ''), COALESCE(c.name, ''), p.source,
	COALESCE(m.uuid, ''), COALESCE(m.state, ''), (SELECT COUNT(*) FROM project_roles r WHERE r.project_id = p.id), p.deleting_at != 0`

const projectFrom = ` FROM projects p LEFT JOIN matrix_rooms m ON m.project_id = p.id LEFT JOIN customers c ON c.id = p.customer_id`

func scanProject(row interface{ Scan(...any) error }) (*Project, error) {
	var p Project
	var created, modified int64
	var state string
	if err := row.Scan(&p.ID, &p.UUID, &p.Name, &p.Description, &created, &modified,
		&p.CustomerUUID, &p.CustomerName, &p.Source, &p.RoomUUID, &state, &p.MemberCount, &p.Deleting); err != nil {
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
// owners are members). With autoRoom a project without a room gets one queued. A
// project being deleted (DeleteProject) that is put again is not deleted after all: its
// room finishes what it was doing and stays (archived, once disabled). A write from the
// API to a project the sync owns is *OwnedError; an unknown customer
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
	var deleting int64
	err = queryRowTx(ctx, tx, `SELECT id, name, description, customer_id, source, deleting_at FROM projects WHERE uuid = ?`, in.UUID).
		Scan(&id, &name, &desc, &oldCustomer, &oldSource, &deleting)
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
	if deleting != 0 {
		changed = true
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET deleting_at = 0, deletion_notice = '', modified_at = ? WHERE id = ?`, t, id); err != nil {
			return 0, false, false, fmt.Errorf("db: keep project %s: %w", in.UUID, err)
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

// DeleteProject deletes a project (the directory API's DELETE, and a project removed on
// the platform). A project whose room has nothing on the homeserver to close (no room,
// an archived room, a room that never got a Matrix room and is not being created) is
// deleted at once with its roles and room record (also a room still queued for creation
// that no worker holds): deleted is true. Otherwise the room
// takes the disable path first, with notice (bot.RoomDeactivated(true): "... due to
// project termination") posted before anyone is kicked, and the project is kept, marked
// deleting, until the worker has archived the room; then the worker deletes both
// (deleted false). A room being created is disabled as soon as it exists; one being
// disabled already finishes as it started. Asking again while it is pending changes
// nothing. The room's history exports outlive it. A missing project is ErrNotFound.
func (s *Store) DeleteProject(ctx context.Context, uuid, notice string) (deleted bool, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM projects WHERE uuid = ?`, uuid).Scan(&id); err != nil {
			return notFound(err, "delete project "+uuid)
		}
		var roomPK, createStarted, dirty int64
		var state, roomID string
		err := tx.QueryRowContext(ctx, `SELECT id, state, room_id, create_started_at, members_dirty FROM matrix_rooms WHERE project_id = ?`, id).
			Scan(&roomPK, &state, &roomID, &createStarted, &dirty)
		st := RoomState(state)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			deleted = true
		case err != nil:
			return fmt.Errorf("db: delete project %s: %w", uuid, err)
		case st == RoomArchived, st == RoomError && roomID == "":
			deleted = true
		case st == RoomCreating && roomID == "" && createStarted == 0 && dirty != 2:
			// Queued, not reached the homeserver, and no worker holds it (a claim sets 2).
			deleted = true
		case st == RoomActive, st == RoomError:
			if err := beginDisableTx(ctx, tx, s, roomPK, false, notice); err != nil {
				return err
			}
		}
		if deleted {
			if _, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE id = ?`, id); err != nil {
				return fmt.Errorf("db: delete project %s: %w", uuid, err)
			}
			return nil
		}
		// creating (the worker disables it once made, or deletes it if it never reaches
		// the homeserver) or disabling: the worker deletes the project after the archive.
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET deleting_at = CASE WHEN deleting_at = 0 THEN ? ELSE deleting_at END,
			deletion_notice = ? WHERE id = ?`, now(), notice, id); err != nil {
			return fmt.Errorf("db: mark project %s deleting: %w", uuid, err)
		}
		return nil
	})
	return deleted, err
}

// EligibleProjects returns one page of the projects that have no room and are not being
// deleted (a room may be created for them), by name, and the total count.
func (s *Store) EligibleProjects(ctx context.Context, p Page) ([]*Project, int, error) {
	cond := ` WHERE m.id IS NULL AND p.deleting_at = 0`
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)`+projectFrom+cond).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("db: count projects without a room: %w", err)
	}
	limit, offset := p.limitOffset()
	rows, err := s.r.QueryContext(ctx, `SELECT `+projectColumns+projectFrom+cond+` ORDER BY p.name, p.id LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list projects without a room: %w", err)
	}
	defer rows.Close()
	var out []*Project
	for rows.Next() {
		pr, err := scanProject(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("db: list projects without a room: %w", err)
		}
		out = append(out, pr)
	}
	return out, total, rows.Err()
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
