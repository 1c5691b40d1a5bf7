package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"maunium.net/go/mautrix/id"
)

// CustomerOwner is an owner of a customer (CUSTOMER.OWNER): a member, at power level
// 50, of every room of the customer's projects.
type CustomerOwner struct {
	UserID    int64
	UserUUID  string
	Username  string
	FullName  string
	IsActive  bool
	CreatedAt time.Time
}

// projectIDsOfCustomer lists the customer's projects.
func projectIDsOfCustomer(ctx context.Context, tx *sql.Tx, customerID int64) ([]int64, error) {
	ids, err := queryIDs(ctx, tx, `SELECT id FROM projects WHERE customer_id = ?`, customerID)
	if err != nil {
		return nil, fmt.Errorf("db: projects of customer %d: %w", customerID, err)
	}
	return ids, nil
}

// putOwnerTx makes a user an owner of a customer, announcing it in the rooms of its
// projects and queuing their member sync; false when they already were.
func (s *Store) putOwnerTx(ctx context.Context, tx *sql.Tx, customerID, userID int64, rules ProfileRules) (bool, error) {
	res, err := execTx(ctx, tx, `INSERT INTO customer_roles (customer_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (customer_id, user_id) DO NOTHING`, customerID, userID, RoleCustomerOwner, now())
	if err != nil {
		return false, fmt.Errorf("db: add owner of customer %d: %w", customerID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if err := ensureProfileOnceTx(ctx, tx, userID, rules); err != nil {
		return false, err
	}
	projects, err := projectIDsOfCustomer(ctx, tx, customerID)
	if err != nil {
		return false, err
	}
	if _, err := s.announceRoleTx(ctx, tx, projects, userID, RoleCustomerOwner, true); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, sqlDirtyRoomsOfCustomer, customerID); err != nil {
		return false, fmt.Errorf("db: queue rooms of customer %d: %w", customerID, err)
	}
	return true, nil
}

// deleteOwnerTx ends a user's ownership of a customer, announcing it and queuing the
// rooms' member sync; false when they were no owner.
func (s *Store) deleteOwnerTx(ctx context.Context, tx *sql.Tx, customerID, userID int64) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM customer_roles WHERE customer_id = ? AND user_id = ?`, customerID, userID)
	if err != nil {
		return false, fmt.Errorf("db: remove owner of customer %d: %w", customerID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	projects, err := projectIDsOfCustomer(ctx, tx, customerID)
	if err != nil {
		return false, err
	}
	if _, err := s.announceRoleTx(ctx, tx, projects, userID, RoleCustomerOwner, false); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, sqlDirtyRoomsOfCustomer, customerID); err != nil {
		return false, fmt.Errorf("db: queue rooms of customer %d: %w", customerID, err)
	}
	return true, nil
}

// writableCustomerTx returns the id of a customer the directory API may change:
// ErrNotFound when missing, *OwnedError when the platform sync owns it.
func writableCustomerTx(ctx context.Context, tx *sql.Tx, uuid string) (int64, error) {
	var id int64
	var source string
	if err := tx.QueryRowContext(ctx, `SELECT id, source FROM customers WHERE uuid = ?`, uuid).Scan(&id, &source); err != nil {
		return 0, notFound(err, "get customer "+uuid)
	}
	if source != SourceAPI {
		return 0, &OwnedError{Kind: "customer", UUID: uuid, Source: source}
	}
	return id, nil
}

// ListCustomerOwners lists a customer's owners by username.
func (s *Store) ListCustomerOwners(ctx context.Context, customerID int64) ([]*CustomerOwner, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT u.id, u.uuid, u.username, u.full_name, u.is_active, r.created_at
		FROM customer_roles r JOIN users u ON u.id = r.user_id WHERE r.customer_id = ? ORDER BY u.username`, customerID)
	if err != nil {
		return nil, fmt.Errorf("db: owners of customer %d: %w", customerID, err)
	}
	defer rows.Close()
	var out []*CustomerOwner
	for rows.Next() {
		var o CustomerOwner
		var created int64
		if err := rows.Scan(&o.UserID, &o.UserUUID, &o.Username, &o.FullName, &o.IsActive, &created); err != nil {
			return nil, fmt.Errorf("db: owners of customer %d: %w", customerID, err)
		}
		o.CreatedAt = time.Unix(created, 0).UTC()
		out = append(out, &o)
	}
	return out, rows.Err()
}

// PutCustomerOwner makes a user an owner of a customer pushed through the directory API
// (created reports a new owner). An unknown user is *UnknownUserError; a customer the
// sync owns *OwnedError; a missing one ErrNotFound.
func (s *Store) PutCustomerOwner(ctx context.Context, customerUUID, userUUID string, rules ProfileRules) (created bool, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		cid, err := writableCustomerTx(ctx, tx, customerUUID)
		if err != nil {
			return err
		}
		uid, err := userIDByUUID(ctx, tx, userUUID)
		if err != nil {
			return err
		}
		created, err = s.putOwnerTx(ctx, tx, cid, uid, rules)
		return err
	})
	return created, err
}

// SetCustomerOwners replaces a customer's owners (pushed through the directory API) in
// one transaction: users not listed stop being owners. Errors as PutCustomerOwner; an
// unknown user changes nothing.
func (s *Store) SetCustomerOwners(ctx context.Context, customerUUID string, userUUIDs []string, rules ProfileRules) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		cid, err := writableCustomerTx(ctx, tx, customerUUID)
		if err != nil {
			return err
		}
		keep := map[int64]bool{}
		for _, u := range userUUIDs {
			uid, err := userIDByUUID(ctx, tx, u)
			if err != nil {
				return err
			}
			keep[uid] = true
			if _, err := s.putOwnerTx(ctx, tx, cid, uid, rules); err != nil {
				return err
			}
		}
		old, err := queryIDs(ctx, tx, `SELECT user_id FROM customer_roles WHERE customer_id = ?`, cid)
		if err != nil {
			return fmt.Errorf("db: owners of customer %s: %w", customerUUID, err)
		}
		for _, uid := range old {
			if !keep[uid] {
				if _, err := s.deleteOwnerTx(ctx, tx, cid, uid); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// DeleteCustomerOwner ends a user's ownership of a customer pushed through the directory
// API. ErrNotFound when the customer, the user or the ownership does not exist.
func (s *Store) DeleteCustomerOwner(ctx context.Context, customerUUID, userUUID string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		cid, err := writableCustomerTx(ctx, tx, customerUUID)
		if err != nil {
			return err
		}
		var uid int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM users WHERE uuid = ?`, userUUID).Scan(&uid)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("db: owner %s of customer %s: %w", userUUID, customerUUID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("db: get user %s: %w", userUUID, err)
		}
		gone, err := s.deleteOwnerTx(ctx, tx, cid, uid)
		if err != nil {
			return err
		}
		if !gone {
			return fmt.Errorf("db: owner %s of customer %s: %w", userUUID, customerUUID, ErrNotFound)
		}
		return nil
	})
}

// IsCustomerOwner reports whether sender's Matrix account belongs to an active owner of
// the customer of the project (the bot answers owners like project members).
func (s *Store) IsCustomerOwner(ctx context.Context, projectUUID string, sender id.UserID) (bool, error) {
	var ok bool
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM matrix_user_profiles p
		JOIN users u ON u.id = p.user_id AND u.is_active = 1
		JOIN customer_roles r ON r.user_id = p.user_id
		JOIN projects pr ON pr.customer_id = r.customer_id AND pr.uuid = ?
		WHERE p.matrix_user_id = ?)`, projectUUID, string(sender)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("db: is %s an owner of project %s's customer: %w", sender, projectUUID, err)
	}
	return ok, nil
}
