package db

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestListTransactionsPagesNewestFirst(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// 7 transactions over 4 seconds; several share a second, so the txn id breaks ties.
	stamps := map[string]int64{"a": 100, "b": 101, "c": 101, "d": 102, "e": 102, "f": 102, "g": 103}
	for id, at := range stamps {
		if _, err := s.w.ExecContext(ctx, `INSERT INTO as_transactions (txn_id, event_count, processed_at) VALUES (?, ?, ?)`, id, len(id)+int(at%3), at); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"g", "f", "e", "d", "c", "b", "a"}

	tests := []struct {
		name  string
		limit int
		pages [][]string
	}{
		{"one page", 10, [][]string{want}},
		{"exact fit", 7, [][]string{want}},
		{"pages of 3", 3, [][]string{{"g", "f", "e"}, {"d", "c", "b"}, {"a"}}},
		{"pages of 1", 1, [][]string{{"g"}, {"f"}, {"e"}, {"d"}, {"c"}, {"b"}, {"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cur TxnCursor
			for i, wantPage := range tt.pages {
				rows, next, err := s.ListTransactions(ctx, cur, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range rows {
					got = append(got, r.TxnID)
					if r.ProcessedAt.Unix() != stamps[r.TxnID] {
						t.Errorf("%s processed_at %d, want %d", r.TxnID, r.ProcessedAt.Unix(), stamps[r.TxnID])
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(wantPage) {
					t.Fatalf("page %d = %v, want %v", i+1, got, wantPage)
				}
				last := i == len(tt.pages)-1
				if next.IsZero() != last {
					t.Fatalf("page %d: next cursor %q, last page %v", i+1, next, last)
				}
				// The cursor survives a trip through a URL.
				parsed, ok := ParseTxnCursor(next.String())
				if !ok || parsed != next {
					t.Fatalf("cursor %q parsed as %v %v", next, parsed, ok)
				}
				cur = parsed
			}
		})
	}
}

func TestParseTxnCursorRefusesGarbage(t *testing.T) {
	for _, s := range []string{"x", "12", ".abc", "-5.abc", "0.abc", "12.", "1e3.abc"} {
		if _, ok := ParseTxnCursor(s); ok {
			t.Errorf("ParseTxnCursor(%q) accepted", s)
		}
	}
	if c, ok := ParseTxnCursor("17.a.b"); !ok || c.TxnID != "a.b" || c.ProcessedAt != 17 {
		t.Errorf("a txn id with dots: %v %v", c, ok)
	}
}

// The list must seek with the processed_at index, not sort the table.
func TestListTransactionsUsesTheIndex(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT txn_id, event_count, processed_at FROM as_transactions
		WHERE (processed_at, txn_id) < (?, ?) ORDER BY processed_at DESC, txn_id DESC LIMIT ?`, 5, "x", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	p := strings.Join(plan, "\n")
	t.Logf("plan: %s", p)
	if !strings.Contains(p, "as_transactions_processed_at") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("query plan does not seek the index:\n%s", p)
	}
}
