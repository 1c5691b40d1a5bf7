package db

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TxnRow is one recorded homeserver transaction, for the dashboard.
type TxnRow struct {
	TxnID       string
	EventCount  int
	ProcessedAt time.Time
}

// TxnCursor is a position in the newest-first list of transactions: the list continues
// with rows strictly older than it. The zero cursor starts at the newest.
type TxnCursor struct {
	ProcessedAt int64
	TxnID       string
}

// IsZero reports whether c is the start of the list.
func (c TxnCursor) IsZero() bool { return c.ProcessedAt == 0 && c.TxnID == "" }

// String encodes c for a URL query ("<unix seconds>.<txn id>").
func (c TxnCursor) String() string {
	if c.IsZero() {
		return ""
	}
	return strconv.FormatInt(c.ProcessedAt, 10) + "." + c.TxnID
}

// ParseTxnCursor decodes TxnCursor.String; ok is false for anything else.
func ParseTxnCursor(s string) (c TxnCursor, ok bool) {
	if s == "" {
		return TxnCursor{}, true
	}
	ts, id, found := strings.Cut(s, ".")
	n, err := strconv.ParseInt(ts, 10, 64)
	if !found || err != nil || n <= 0 || id == "" {
		return TxnCursor{}, false
	}
	return TxnCursor{ProcessedAt: n, TxnID: id}, true
}

// ListTransactions returns up to limit transactions older than after (newest first),
// and the cursor of the next page ("" when this is the last). It seeks with the
// as_transactions_processed_at index, whose entries carry the txn_id primary key, so a
// deep page costs the same as the first.
func (s *Store) ListTransactions(ctx context.Context, after TxnCursor, limit int) ([]TxnRow, TxnCursor, error) {
	if limit <= 0 {
		limit = 50
	}
	q := `SELECT txn_id, event_count, processed_at FROM as_transactions
		ORDER BY processed_at DESC, txn_id DESC LIMIT ?`
	args := []any{limit + 1}
	if !after.IsZero() {
		q = `SELECT txn_id, event_count, processed_at FROM as_transactions
			WHERE (processed_at, txn_id) < (?, ?)
			ORDER BY processed_at DESC, txn_id DESC LIMIT ?`
		args = []any{after.ProcessedAt, after.TxnID, limit + 1}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, TxnCursor{}, fmt.Errorf("db: list transactions: %w", err)
	}
	defer rows.Close()
	var out []TxnRow
	for rows.Next() {
		var r TxnRow
		var at int64
		if err := rows.Scan(&r.TxnID, &r.EventCount, &at); err != nil {
			return nil, TxnCursor{}, fmt.Errorf("db: list transactions: %w", err)
		}
		r.ProcessedAt = time.Unix(at, 0).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, TxnCursor{}, fmt.Errorf("db: list transactions: %w", err)
	}
	var next TxnCursor
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = TxnCursor{ProcessedAt: last.ProcessedAt.Unix(), TxnID: last.TxnID}
	}
	return out, next, nil
}
