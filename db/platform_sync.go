package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The platform sync's runs (platform_sync_runs) and the read of the whole directory it
// compares a platform listing against. What a run writes goes through the directory's
// own transactions, in the file of each table (SyncPutCustomers, SyncPutUsers,
// SyncPutProjects, SyncRoles, ...).

// Sync run kinds.
const (
	SyncFull        = "full"
	SyncIncremental = "incremental"
)

// SyncCount is what one run did to one kind of row.
type SyncCount struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
	Removed int `json:"removed"`
}

// SyncCounts are a run's counts per kind: customers, users, projects, roles.
type SyncCounts struct {
	Customers SyncCount `json:"customers"`
	Users     SyncCount `json:"users"`
	Projects  SyncCount `json:"projects"`
	Roles     SyncCount `json:"roles"`
}

// Total is the number of rows the run changed.
func (c SyncCounts) Total() int {
	n := 0
	for _, k := range []SyncCount{c.Customers, c.Users, c.Projects, c.Roles} {
		n += k.Created + k.Updated + k.Removed
	}
	return n
}

// SyncRun is one run of the platform sync.
type SyncRun struct {
	ID         int64
	Kind       string // SyncFull or SyncIncremental
	StartedAt  time.Time
	FinishedAt time.Time // zero while running (or when the process died during it)
	OK         bool
	Error      string
	Counts     SyncCounts
	Requests   int64 // requests made to the platform
}

// Finished reports whether the run has ended.
func (r *SyncRun) Finished() bool { return !r.FinishedAt.IsZero() }

const syncRunColumns = `id, kind, started_at, finished_at, ok, error, counts, requests`

func scanSyncRun(row interface{ Scan(...any) error }) (*SyncRun, error) {
	var r SyncRun
	var started int64
	var finished sql.NullInt64
	var ok sql.NullBool
	var counts string
	if err := row.Scan(&r.ID, &r.Kind, &started, &finished, &ok, &r.Error, &counts, &r.Requests); err != nil {
		return nil, err
	}
	r.StartedAt = time.Unix(started, 0).UTC()
	if finished.Valid {
		r.FinishedAt = time.Unix(finished.Int64, 0).UTC()
	}
	r.OK = ok.Valid && ok.Bool
	if err := json.Unmarshal([]byte(counts), &r.Counts); err != nil {
		return nil, fmt.Errorf("counts of sync run %d: %w", r.ID, err)
	}
	return &r, nil
}

// StartSyncRun records the start of a run and returns its id.
func (s *Store) StartSyncRun(ctx context.Context, kind string, at time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO platform_sync_runs (kind, started_at) VALUES (?, ?)`, kind, at.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: start sync run: %w", err)
	}
	id, _ := res.LastInsertId()
	return id, nil
}

// FinishSyncRun records a run's outcome, and its kind (an incremental run that found
// too much to re-read listed everything: it ends as a full run).
func (s *Store) FinishSyncRun(ctx context.Context, id int64, kind string, at time.Time, runErr string, counts SyncCounts, requests int64) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return fmt.Errorf("db: finish sync run %d: %w", id, err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE platform_sync_runs SET kind = ?, finished_at = ?, ok = ?, error = ?, counts = ?, changes = ?, requests = ? WHERE id = ?`,
		kind, at.Unix(), runErr == "", runErr, string(b), counts.Total(), requests, id); err != nil {
		return fmt.Errorf("db: finish sync run %d: %w", id, err)
	}
	return nil
}

// AbandonSyncRuns marks runs left unfinished by a process that stopped as failed.
func (s *Store) AbandonSyncRuns(ctx context.Context, at time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE platform_sync_runs SET finished_at = ?, ok = 0, error = 'interrupted: the server stopped during the run'
		WHERE finished_at IS NULL`, at.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: abandon sync runs: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// LastSyncRun returns the newest run of the kind ("" = any kind); ErrNotFound when none.
func (s *Store) LastSyncRun(ctx context.Context, kind string) (*SyncRun, error) {
	q := `SELECT ` + syncRunColumns + ` FROM platform_sync_runs`
	var args []any
	if kind != "" {
		q += ` WHERE kind = ?`
		args = append(args, kind)
	}
	r, err := scanSyncRun(s.r.QueryRowContext(ctx, q+` ORDER BY id DESC LIMIT 1`, args...))
	if err != nil {
		return nil, notFound(err, "last sync run")
	}
	return r, nil
}

// LastOKSyncRun returns the newest successful run of the kind ("" = any); ErrNotFound
// when none.
func (s *Store) LastOKSyncRun(ctx context.Context, kind string) (*SyncRun, error) {
	q := `SELECT ` + syncRunColumns + ` FROM platform_sync_runs WHERE ok = 1`
	var args []any
	if kind != "" {
		q += ` AND kind = ?`
		args = append(args, kind)
	}
	r, err := scanSyncRun(s.r.QueryRowContext(ctx, q+` ORDER BY id DESC LIMIT 1`, args...))
	if err != nil {
		return nil, notFound(err, "last successful sync run")
	}
	return r, nil
}

// RecentSyncRuns returns the newest runs, newest first: every full run and only the
// incremental runs that changed something or failed, so that a minute-by-minute
// incremental run does not push the full runs off the list.
func (s *Store) RecentSyncRuns(ctx context.Context, limit int) ([]*SyncRun, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+syncRunColumns+` FROM platform_sync_runs
		WHERE kind = 'full' OR ok IS NOT 1 OR changes > 0 ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("db: recent sync runs: %w", err)
	}
	defer rows.Close()
	var out []*SyncRun
	for rows.Next() {
		r, err := scanSyncRun(rows)
		if err != nil {
			return nil, fmt.Errorf("db: recent sync runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PruneSyncRuns deletes runs that ended before the given time, keeping the newest
// full and the newest successful full run whatever their age.
func (s *Store) PruneSyncRuns(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM platform_sync_runs WHERE finished_at < ?
		AND id != (SELECT COALESCE(MAX(id), 0) FROM platform_sync_runs WHERE kind = 'full')
		AND id != (SELECT COALESCE(MAX(id), 0) FROM platform_sync_runs WHERE kind = 'full' AND ok = 1)`, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune sync runs: %w", err)
	}
	return res.RowsAffected()
}

// DirectoryReader receives the directory, row by row, from ReadDirectory; a nil field
// skips that table. UUIDs are 32 lowercase hex digits.
type DirectoryReader struct {
	Customer      func(uuid, name, abbreviation, source string) error
	User          func(u *User) error // staff accounts included (IsStaff), without password hash
	Project       func(uuid, name, description, customerUUID, source string) error
	ProjectRole   func(projectUUID, userUUID, role string) error
	CustomerOwner func(customerUUID, userUUID string) error
}

// ReadDirectory hands every directory row to r, all from one consistent snapshot of the
// database, streaming (nothing is held here), so that the platform sync can compare a
// platform of any size against it with memory of its own choosing.
func (s *Store) ReadDirectory(ctx context.Context, r DirectoryReader) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("db: read directory: %w", err)
	}
	defer tx.Rollback()
	each := func(what, q string, scan func(*sql.Rows) error) error {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("db: read %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("db: read %s: %w", what, err)
		}
		return nil
	}
	var steps []func() error
	if r.Customer != nil {
		steps = append(steps, func() error {
			return each("customers", `SELECT uuid, name, abbreviation, source FROM customers`, func(rows *sql.Rows) error {
				var u, n, a, src string
				if err := rows.Scan(&u, &n, &a, &src); err != nil {
					return fmt.Errorf("db: read customers: %w", err)
				}
				return r.Customer(u, n, a, src)
			})
		})
	}
	if r.User != nil {
		steps = append(steps, func() error {
			return each("users", `SELECT `+userColumns+` FROM users`, func(rows *sql.Rows) error {
				u, err := scanUser(rows)
				if err != nil {
					return fmt.Errorf("db: read users: %w", err)
				}
				u.PasswordHash = ""
				return r.User(u)
			})
		})
	}
	if r.Project != nil {
		steps = append(steps, func() error {
			return each("projects", `SELECT p.uuid, p.name, p.description, COALESCE(c.uuid, ''), p.source
				FROM projects p LEFT JOIN customers c ON c.id = p.customer_id`, func(rows *sql.Rows) error {
				var u, n, d, c, src string
				if err := rows.Scan(&u, &n, &d, &c, &src); err != nil {
					return fmt.Errorf("db: read projects: %w", err)
				}
				return r.Project(u, n, d, c, src)
			})
		})
	}
	if r.ProjectRole != nil {
		steps = append(steps, func() error {
			return each("project roles", `SELECT p.uuid, u.uuid, r.role FROM project_roles r
				JOIN projects p ON p.id = r.project_id JOIN users u ON u.id = r.user_id`, func(rows *sql.Rows) error {
				var p, u, role string
				if err := rows.Scan(&p, &u, &role); err != nil {
					return fmt.Errorf("db: read project roles: %w", err)
				}
				return r.ProjectRole(p, u, role)
			})
		})
	}
	if r.CustomerOwner != nil {
		steps = append(steps, func() error {
			return each("customer owners", `SELECT c.uuid, u.uuid FROM customer_roles r
				JOIN customers c ON c.id = r.customer_id JOIN users u ON u.id = r.user_id`, func(rows *sql.Rows) error {
				var c, u string
				if err := rows.Scan(&c, &u); err != nil {
					return fmt.Errorf("db: read customer owners: %w", err)
				}
				return r.CustomerOwner(c, u)
			})
		})
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// ErrSkipped marks a row a sync could not write (a username another account holds, a
// staff account's uuid): the rest of the run goes on without it.
var ErrSkipped = errors.New("skipped")

// LastFinishedSyncRun returns the newest run of the kind ("" = any) that has ended, ok
// or not; ErrNotFound when none.
func (s *Store) LastFinishedSyncRun(ctx context.Context, kind string) (*SyncRun, error) {
	r, err := scanSyncRun(s.r.QueryRowContext(ctx, `SELECT `+syncRunColumns+` FROM platform_sync_runs
		WHERE (kind = ?1 OR ?1 = '') AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1`, kind))
	if err != nil {
		return nil, notFound(err, "last finished sync run")
	}
	return r, nil
}
