package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"matrixas/db"
)

// TestSeedCountsMatch: the scale scenarios' seeded database says, through the store's
// O(1) reads, what its rows say (the transactions counter and the minute marks).
func TestSeedCountsMatch(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "seed.db")
	if _, err := seed(ctx, path, 2000, 5, 5); err != nil {
		t.Fatal(err)
	}
	store, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	d, err := store.DiagnosticStats(ctx, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := store.CountTransactionRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.TransactionsTotal != 2000 || rows != 2000 || d.TransactionsSince != 2000 {
		t.Errorf("counter %d, rows %d, in the last hour %d; want 2000 each", d.TransactionsTotal, rows, d.TransactionsSince)
	}
}
