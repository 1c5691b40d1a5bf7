package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Sources of directory rows: who owns a user, customer or project.
const (
	// SourceAPI rows were pushed through the directory API (the default).
	SourceAPI = ""
	// SourceWaldur rows are mirrored from the platform (Waldur) by the platform sync,
	// which owns them: the directory API refuses to change them (*OwnedError).
	SourceWaldur = "waldur"
)

// OwnedError refuses a directory API write to a row the platform sync owns: the change
// belongs on the platform, and the next sync would undo it here anyway.
type OwnedError struct {
	Kind   string // "user", "project", "customer"
	UUID   string
	Source string // SourceWaldur
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("%s %s is owned by the platform sync (%s)", e.Kind, e.UUID, e.Source)
}

// Customer is an organisation of the platform; its projects' rooms hold its owners.
type Customer struct {
	ID           int64
	UUID         string
	Name         string
	Abbreviation string
	Source       string // SourceAPI or SourceWaldur
	CreatedAt    time.Time
	ModifiedAt   time.Time

	ProjectCount int
	OwnerCount   int
}

// DirectoryCustomer is a customer as the directory API (or the sync) writes it.
type DirectoryCustomer struct {
	UUID         string // 32 hex digits; "" = generate one
	Name         string
	Abbreviation string
}

// UnknownCustomerError names a customer uuid that does not exist.
type UnknownCustomerError struct{ UUID string }

func (e *UnknownCustomerError) Error() string { return "no customer with uuid " + e.UUID }

const customerColumns = `c.id, c.uuid, c.name, c.abbreviation, c.source, c.created_at, c.modified_at,
	(SELECT COUNT(*) FROM projects p WHERE p.customer_id = c.id),
	(SELECT COUNT(*) FROM customer_roles r WHERE r.customer_id = c.id)`

func scanCustomer(row interface{ Scan(...any) error }) (*Customer, error) {
	var c Customer
	var created, modified int64
	if err := row.Scan(&c.ID, &c.UUID, &c.Name, &c.Abbreviation, &c.Source, &created, &modified, &c.ProjectCount, &c.OwnerCount); err != nil {
		return nil, err
	}
	c.CreatedAt = time.Unix(created, 0).UTC()
	c.ModifiedAt = time.Unix(modified, 0).UTC()
	return &c, nil
}

// sqlDirtyRoomsOfCustomer queues a member re-sync of the rooms of the customer's
// projects (its owners are their members).
const sqlDirtyRoomsOfCustomer = `UPDATE matrix_rooms SET members_dirty = 1, next_attempt_at = 0
	WHERE state IN ('creating', 'active') AND project_id IN (SELECT id FROM projects WHERE customer_id = ?)`

// putCustomerTx creates or updates the customer with in.UUID as source writes it and
// reports whether it created one and whether anything changed. A write from the API
// (SourceAPI) to a row the sync owns is *OwnedError; the sync adopts rows the API made.
func putCustomerTx(ctx context.Context, tx *sql.Tx, in DirectoryCustomer, source string) (id int64, created, changed bool, err error) {
	if in.UUID == "" {
		in.UUID = NewUUID()
	}
	var name, abbr, oldSource string
	err = tx.QueryRowContext(ctx, `SELECT id, name, abbreviation, source FROM customers WHERE uuid = ?`, in.UUID).Scan(&id, &name, &abbr, &oldSource)
	t := now()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res, err := tx.ExecContext(ctx, `INSERT INTO customers (uuid, name, abbreviation, source, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?)`,
			in.UUID, in.Name, in.Abbreviation, source, t, t)
		if err != nil {
			return 0, false, false, fmt.Errorf("db: create customer %s: %w", in.UUID, err)
		}
		id, _ = res.LastInsertId()
		return id, true, true, nil
	case err != nil:
		return 0, false, false, fmt.Errorf("db: get customer %s: %w", in.UUID, err)
	case oldSource != SourceAPI && source == SourceAPI:
		return 0, false, false, &OwnedError{Kind: "customer", UUID: in.UUID, Source: oldSource}
	case name == in.Name && abbr == in.Abbreviation && oldSource == source:
		return id, false, false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE customers SET name = ?, abbreviation = ?, source = ?, modified_at = ? WHERE id = ?`,
		in.Name, in.Abbreviation, source, t, id); err != nil {
		return 0, false, false, fmt.Errorf("db: update customer %s: %w", in.UUID, err)
	}
	return id, false, true, nil
}

// PutCustomer creates the customer with in.UUID, or updates the one that has it, for the
// directory API, and reports whether it created one. A customer the platform sync owns
// is *OwnedError.
func (s *Store) PutCustomer(ctx context.Context, in DirectoryCustomer) (*Customer, bool, error) {
	var created bool
	if in.UUID == "" {
		in.UUID = NewUUID()
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		_, created, _, err = putCustomerTx(ctx, tx, in, SourceAPI)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	c, err := s.CustomerByUUID(ctx, in.UUID)
	return c, created, err
}

// CustomerByUUID returns the customer with the given uuid (32 hex digits).
func (s *Store) CustomerByUUID(ctx context.Context, uuid string) (*Customer, error) {
	c, err := scanCustomer(s.r.QueryRowContext(ctx, `SELECT `+customerColumns+` FROM customers c WHERE c.uuid = ?`, uuid))
	if err != nil {
		return nil, notFound(err, "get customer "+uuid)
	}
	return c, nil
}

// CustomerFilter selects customers for ListCustomers.
type CustomerFilter struct {
	Search string // substring of name or abbreviation
	Page   Page
}

// ListCustomers returns one page of customers ordered by name, and the total count.
func (s *Store) ListCustomers(ctx context.Context, f CustomerFilter) ([]*Customer, int, error) {
	cond := ` WHERE 1 = 1`
	var args []any
	if f.Search != "" {
		cond += ` AND (c.name LIKE ? ESCAPE '\' OR c.abbreviation LIKE ? ESCAPE '\')`
		pat := likePattern(f.Search)
		args = append(args, pat, pat)
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM customers c`+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("db: count customers: %w", err)
	}
	limit, offset := f.Page.limitOffset()
	rows, err := s.r.QueryContext(ctx, `SELECT `+customerColumns+` FROM customers c`+cond+` ORDER BY c.name, c.id LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("db: list customers: %w", err)
	}
	defer rows.Close()
	var out []*Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("db: list customers: %w", err)
		}
		out = append(out, c)
	}
	return out, total, rows.Err()
}

// deleteCustomerTx deletes a customer: its owners lose their place in its projects'
// rooms (announced there, the rooms re-synced), its projects stay without a customer.
func (s *Store) deleteCustomerTx(ctx context.Context, tx *sql.Tx, id int64) error {
	owners, err := queryIDs(ctx, tx, `SELECT user_id FROM customer_roles WHERE customer_id = ?`, id)
	if err != nil {
		return fmt.Errorf("db: owners of customer %d: %w", id, err)
	}
	for _, u := range owners {
		if _, err := s.deleteOwnerTx(ctx, tx, id, u); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, sqlDirtyRoomsOfCustomer, id); err != nil {
		return fmt.Errorf("db: queue rooms of customer %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM customers WHERE id = ?`, id); err != nil {
		return fmt.Errorf("db: delete customer %d: %w", id, err)
	}
	return nil
}

// DeleteCustomer deletes a customer pushed through the directory API: its owners leave
// its projects' rooms, its projects stay (without a customer). A customer the platform
// sync owns is *OwnedError; a missing one ErrNotFound.
func (s *Store) DeleteCustomer(ctx context.Context, uuid string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var id int64
		var source string
		if err := tx.QueryRowContext(ctx, `SELECT id, source FROM customers WHERE uuid = ?`, uuid).Scan(&id, &source); err != nil {
			return notFound(err, "delete customer "+uuid)
		}
		if source != SourceAPI {
			return &OwnedError{Kind: "customer", UUID: uuid, Source: source}
		}
		return s.deleteCustomerTx(ctx, tx, id)
	})
}

// queryIDs runs a query of one integer column and returns its values.
func queryIDs(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// customerIDByUUID resolves a customer uuid inside a transaction ("" is no customer: 0).
func customerIDByUUID(ctx context.Context, tx *sql.Tx, uuid string) (sql.NullInt64, error) {
	if uuid == "" {
		return sql.NullInt64{}, nil
	}
	var id int64
	err := queryRowTx(ctx, tx, `SELECT id FROM customers WHERE uuid = ?`, uuid).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return sql.NullInt64{}, &UnknownCustomerError{UUID: uuid}
	}
	if err != nil {
		return sql.NullInt64{}, fmt.Errorf("db: get customer %s: %w", uuid, err)
	}
	return sql.NullInt64{Int64: id, Valid: true}, nil
}

// SyncPutCustomers writes the customers the platform sync found new or changed as rows
// it owns (adopting rows the API made with the same uuid), in one transaction.
func (s *Store) SyncPutCustomers(ctx context.Context, in []DirectoryCustomer) (SyncCount, error) {
	var n SyncCount
	if len(in) == 0 {
		return n, nil
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		n = SyncCount{}
		for _, c := range in {
			_, created, changed, err := putCustomerTx(ctx, tx, c, SourceWaldur)
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

// SyncRemoveCustomers deletes the customers the platform no longer has, in one
// transaction: only rows the sync owns; their owners leave the rooms of their projects.
func (s *Store) SyncRemoveCustomers(ctx context.Context, uuids []string) (int, error) {
	n := 0
	if len(uuids) == 0 {
		return 0, nil
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		for _, u := range uuids {
			var id int64
			err := tx.QueryRowContext(ctx, `SELECT id FROM customers WHERE uuid = ? AND source = ?`, u, SourceWaldur).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("db: get customer %s: %w", u, err)
			}
			if err := s.deleteCustomerTx(ctx, tx, id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
