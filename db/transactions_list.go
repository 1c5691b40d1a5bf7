package db

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// TxnRow is one recorded homeserver transaction, for the dashboard.
type TxnRow struct {
	TxnID       string
	EventCount  int
	ProcessedAt time.Time
}

// TxnCursor is a position in the newest-first list of transactions: the list continues
// with rows that arrived before it. The zero cursor starts at the newest.
type TxnCursor struct {
	Seq int64 // the row's arrival number (as_transactions.id)
}

// IsZero reports whether c is the start of the list.
func (c TxnCursor) IsZero() bool { return c.Seq == 0 }

// String encodes c for a URL query.
func (c TxnCursor) String() string {
	if c.IsZero() {
		return ""
	}
	return strconv.FormatInt(c.Seq, 10)
}

// ParseTxnCursor decodes TxnCursor.String; ok is false for anything else.
func ParseTxnCursor(s string) (c TxnCursor, ok bool) {
	if s == "" {
		return TxnCursor{}, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return TxnCursor{}, false
	}
	return TxnCursor{Seq: n}, true
}

// ListTransactions returns up to limit transactions that arrived before after (newest
// first), and the cursor of the next page (zero when this is the last). It seeks by
// rowid, so a deep page costs the same as the first.
func (s *Store) ListTransactions(ctx context.Context, after TxnCursor, limit int) ([]TxnRow, TxnCursor, error) {
	if limit <= 0 {
		limit = 50
	}
	q := `SELECT id, txn_id, event_count, processed_at FROM as_transactions ORDER BY id DESC LIMIT ?`
	args := []any{limit + 1}
	if !after.IsZero() {
		q = `SELECT id, txn_id, event_count, processed_at FROM as_transactions WHERE id < ? ORDER BY id DESC LIMIT ?`
		args = []any{after.Seq, limit + 1}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, TxnCursor{}, fmt.Errorf("db: list transactions: %w", err)
	}
	defer rows.Close()
	var out []TxnRow
	var last int64 // arrival number of the last row kept
	more := false  // the extra row came: there is a next page
	for rows.Next() {
		if len(out) == limit {
			more = true
			break
		}
		var r TxnRow
		var at int64
		if err := rows.Scan(&last, &r.TxnID, &r.EventCount, &at); err != nil {
			return nil, TxnCursor{}, fmt.Errorf("db: list transactions: %w", err)
		}
		r.ProcessedAt = time.Unix(at, 0).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, TxnCursor{}, fmt.Errorf("db: list transactions: %w", err)
	}
	var next TxnCursor
	if more {
		next = TxnCursor{Seq: last}
	}
	return out, next, nil
}
