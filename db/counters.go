package db

import (
	"context"
	"fmt"
)

// Counter names kept in the counters table.
const (
	CounterTransactions      = "transactions"
	CounterEvents            = "events"
	CounterLastTransactionAt = "last_transaction_at"
)

// Counter reads one counter in O(1).
func (s *Store) Counter(ctx context.Context, name string) (int64, error) {
	var v int64
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = ?`, name).Scan(&v); err != nil {
		return 0, notFound(err, "read counter "+name)
	}
	return v, nil
}

// Counters reads every counter at once.
func (s *Store) Counters(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, value FROM counters`)
	if err != nil {
		return nil, fmt.Errorf("db: read counters: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("db: read counters: %w", err)
		}
		out[k] = v
	}
	return out, rows.Err()
}
