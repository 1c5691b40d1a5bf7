package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// scratchStore is a migrated store with a table the tests may fill freely.
func scratchStore(t *testing.T) *Store {
	t.Helper()
	s := openMigrated(t)
	err := s.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TABLE scratch (id INTEGER PRIMARY KEY, v BLOB NOT NULL)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// insertScratch writes one row of n bytes in its own transaction.
func insertScratch(s *Store, n int) error {
	return s.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO scratch (v) VALUES (?)`, make([]byte, n))
		return err
	})
}

func scratchRows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.r.QueryRow(`SELECT COUNT(*) FROM scratch`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWriteFaults simulates a read-only database and a full disk on the writer: writes
// fail with the storage's reason, nothing half-written stays, reads go on, the store's
// write health says so, and the same store writes again once the fault is gone.
func TestWriteFaults(t *testing.T) {
	tests := []struct {
		fault  WriteFault
		reason string
	}{
		{FaultReadOnly, "the database is read-only"},
		{FaultDiskFull, "the database or disk is full"},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			ctx := context.Background()
			s := scratchStore(t)
			if err := insertScratch(s, 100); err != nil {
				t.Fatal(err)
			}
			if h := s.WriteHealth(); h.Failing || h.LastError != "" || h.Failures != 0 {
				t.Fatalf("health before any fault: %+v", h)
			}
			if err := s.SimulateWriteFault(ctx, tt.fault); err != nil {
				t.Fatal(err)
			}

			// A full disk still takes rows that fit in free space: write until it refuses,
			// with a bound so a fault that does not bite fails the test instead of looping.
			acked := 1
			var werr error
			for range 2000 {
				if werr = insertScratch(s, 2000); werr != nil {
					break
				}
				acked++
			}
			if werr == nil {
				t.Fatalf("2000 writes under the fault all succeeded")
			}
			if got := StorageFailure(werr); got != tt.reason {
				t.Errorf("StorageFailure(%v) = %q, want %q", werr, got, tt.reason)
			}
			if got := scratchRows(t, s); got != acked {
				t.Errorf("%d rows stored, %d writes acknowledged", got, acked)
			}
			h := s.WriteHealth()
			if !h.Failing || h.LastError != tt.reason || h.LastErrorAt.IsZero() || !h.RecoveredAt.IsZero() || h.Failures != 1 {
				t.Errorf("health under the fault: %+v", h)
			}
			if strings.Contains(h.LastError, "sqlite") || strings.Contains(h.LastError, "INSERT") {
				t.Errorf("health carries the driver's text: %q", h.LastError)
			}
			if err := s.Ping(ctx); err != nil {
				t.Errorf("reads fail under a write fault: %v", err)
			}
			// Another failure counts; the store stays failing.
			if err := insertScratch(s, 8000); err == nil {
				t.Fatal("a write succeeded under the fault")
			}
			if h := s.WriteHealth(); !h.Failing || h.Failures != 2 {
				t.Errorf("health after a second failure: %+v", h)
			}

			// The cause goes away: the same store writes again, and says it recovered.
			if err := s.SimulateWriteFault(ctx, NoWriteFault); err != nil {
				t.Fatal(err)
			}
			if err := insertScratch(s, 8000); err != nil {
				t.Fatalf("write after the fault was lifted: %v", err)
			}
			h = s.WriteHealth()
			if h.Failing || h.RecoveredAt.IsZero() || h.RecoveredAt.Before(h.LastErrorAt) || h.LastError != tt.reason {
				t.Errorf("health after recovery: %+v", h)
			}
			if got := scratchRows(t, s); got != acked+1 {
				t.Errorf("%d rows after recovery, want %d", got, acked+1)
			}
		})
	}
}

// TestWriteHealthIgnoresApplicationErrors: a constraint violation, a missing row or a
// cancelled context is not the storage failing, and a failure is not cleared by them.
func TestWriteHealthIgnoresApplicationErrors(t *testing.T) {
	s := scratchStore(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	errs := []func() error{
		func() error { // UNIQUE constraint
			return s.Tx(context.Background(), func(tx *sql.Tx) error {
				if _, err := tx.Exec(`INSERT INTO scratch (id, v) VALUES (1, x'00')`); err != nil {
					return err
				}
				_, err := tx.Exec(`INSERT INTO scratch (id, v) VALUES (1, x'00')`)
				return err
			})
		},
		func() error {
			return s.Tx(context.Background(), func(*sql.Tx) error { return fmt.Errorf("lookup: %w", ErrNotFound) })
		},
		func() error { return s.Tx(cancelled, func(*sql.Tx) error { return nil }) },
	}
	for i, f := range errs {
		if err := f(); err == nil {
			t.Fatalf("case %d did not fail", i)
		} else if StorageFailure(err) != "" {
			t.Errorf("case %d: %v classified as a storage failure %q", i, err, StorageFailure(err))
		}
		if h := s.WriteHealth(); h.Failing || h.Failures != 0 {
			t.Errorf("case %d changed the write health: %+v", i, h)
		}
	}
}

// TestRecorderUnderWriteFault: with the database refusing writes, concurrent Record
// calls all fail (none is acknowledged) and store nothing; the recorder keeps running,
// and once the fault is gone the same transactions are recorded exactly once.
func TestRecorderUnderWriteFault(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := openMigrated(t)
	rec := s.NewRecorder(16)
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	recordAll := func(n int) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = rec.Record(context.Background(), TxnRecord{TxnID: fmt.Sprintf("fault-%03d", i), EventCount: 2})
			})
		}
		wg.Wait()
		return errs
	}
	count := func() (rows int, counter int64) {
		if err := s.r.QueryRow(`SELECT COUNT(*) FROM as_transactions WHERE txn_id LIKE 'fault-%'`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if err := s.r.QueryRow(`SELECT value FROM counters WHERE name = 'transactions'`).Scan(&counter); err != nil {
			t.Fatal(err)
		}
		return rows, counter
	}

	if err := s.SimulateWriteFault(ctx, FaultReadOnly); err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i, err := range recordAll(n) {
		if err == nil {
			t.Errorf("transaction %d acknowledged while the database is read-only", i)
		}
	}
	if rows, counter := count(); rows != 0 || counter != 0 {
		t.Errorf("under the fault: %d rows, counter %d; want nothing stored", rows, counter)
	}
	if !s.WriteHealth().Failing {
		t.Errorf("write health does not show the recorder's failures")
	}

	if err := s.SimulateWriteFault(ctx, NoWriteFault); err != nil {
		t.Fatal(err)
	}
	for i, err := range recordAll(n) {
		if err != nil {
			t.Errorf("transaction %d after recovery: %v", i, err)
		}
	}
	// The homeserver retries some again: no double counting.
	for i, err := range recordAll(n / 2) {
		if err != nil {
			t.Errorf("retried transaction %d: %v", i, err)
		}
	}
	if rows, counter := count(); rows != n || counter != n {
		t.Errorf("after recovery: %d rows, counter %d; want %d each", rows, counter, n)
	}
	if s.WriteHealth().Failing {
		t.Errorf("write health still failing after successful writes")
	}
}
