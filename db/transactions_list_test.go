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
	// 7 transactions over 4 seconds, arriving a to g; several share a second, and the
	// ids are not in arrival order ("x9" after "x10"), so the list follows arrival.
	order := []string{"a", "x10", "c", "x9", "e", "f", "b"}
	stamps := map[string]int64{"a": 100, "x10": 101, "c": 101, "x9": 102, "e": 102, "f": 102, "b": 103}
	for _, id := range order {
		at := stamps[id]
		if _, err := s.w.ExecContext(ctx, `INSERT INTO as_transactions (txn_id, event_count, processed_at) VALUES (?, ?, ?)`, id, len(id)+int(at%3), at); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"b", "f", "e", "x9", "c", "x10", "a"}

	tests := []struct {
		name  string
		limit int
		pages [][]string
	}{
		{"one page", 10, [][]string{want}},
		{"exact fit", 7, [][]string{want}},
		{"pages of 3", 3, [][]string{{"b", "f", "e"}, {"x9", "c", "x10"}, {"a"}}},
		{"pages of 1", 1, [][]string{{"b"}, {"f"}, {"e"}, {"x9"}, {"c"}, {"x10"}, {"a"}}},
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
	for _, s := range []string{"x", ".abc", "-5", "0", "12.", "1e3", "17.abc", " 5", "99999999999999999999"} {
		if _, ok := ParseTxnCursor(s); ok {
			t.Errorf("ParseTxnCursor(%q) accepted", s)
		}
	}
	if c, ok := ParseTxnCursor("17"); !ok || c.Seq != 17 {
		t.Errorf("ParseTxnCursor(17) = %v %v", c, ok)
	}
}

// The list must seek with the processed_at index, not sort the table.
// TestListTransactionsSeeksByRowid: a deep page is a seek on the rowid, not a sort.
func TestListTransactionsSeeksByRowid(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT id, txn_id, event_count, processed_at FROM as_transactions
		WHERE id < ? ORDER BY id DESC LIMIT ?`, 5, 10)
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
	if !strings.Contains(p, "SEARCH as_transactions USING INTEGER PRIMARY KEY") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("query plan does not seek the rowid:\n%s", p)
	}
}
