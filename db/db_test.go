package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"matrixas/settings"
)

// openMigrated opens a fresh, fully migrated store in a temp folder.
func openMigrated(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sub", "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPragmasOnBothPools checks that every connection, the writer and each reader the
// pool hands out, runs with WAL, foreign keys, synchronous=NORMAL and the busy timeout,
// and that only the writer may write.
func TestPragmasOnBothPools(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)

	type pragmas struct {
		journal                   string
		foreignKeys, sync, busyMS int
		queryOnly                 int
	}
	read := func(t *testing.T, c *sql.Conn) pragmas {
		t.Helper()
		var p pragmas
		for _, q := range []struct {
			sql string
			dst any
		}{
			{`PRAGMA journal_mode`, &p.journal},
			{`PRAGMA foreign_keys`, &p.foreignKeys},
			{`PRAGMA synchronous`, &p.sync},
			{`PRAGMA busy_timeout`, &p.busyMS},
			{`PRAGMA query_only`, &p.queryOnly},
		} {
			if err := c.QueryRowContext(ctx, q.sql).Scan(q.dst); err != nil {
				t.Fatalf("%s: %v", q.sql, err)
			}
		}
		return p
	}
	want := pragmas{journal: "wal", foreignKeys: 1, sync: 1 /* NORMAL */, busyMS: 10000}

	t.Run("writer", func(t *testing.T) {
		c, err := s.w.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := read(t, c); got != want {
			t.Errorf("writer pragmas %+v, want %+v", got, want)
		}
	})

	t.Run("readers", func(t *testing.T) {
		// Hold several connections at once so the pool must open distinct ones.
		wantR := want
		wantR.queryOnly = 1
		var conns []*sql.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := range 4 {
			c, err := s.r.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if got := read(t, c); got != wantR {
				t.Errorf("reader %d pragmas %+v, want %+v", i, got, wantR)
			}
		}
	})

	t.Run("readers cannot write", func(t *testing.T) {
		_, err := s.r.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES ('x', 'y', 0)`)
		if err == nil {
			t.Fatal("a write through the read pool succeeded")
		}
	})

	t.Run("foreign keys are enforced", func(t *testing.T) {
		_, err := s.w.ExecContext(ctx, `INSERT INTO api_tokens (user_id, prefix, token_hash, created_at) VALUES (424242, 'abc', 'h', 0)`)
		if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Fatalf("insert with a dangling user_id: %v, want a FOREIGN KEY error", err)
		}
	})
}

// TestOldDatabaseMigratesForward builds a database at schema version 1 with rows in it,
// as an older release left it, and migrates it to the latest version.
func TestOldDatabaseMigratesForward(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := OpenNoMigrate(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.MigrateTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if v, _ := old.Version(ctx); v != 1 {
		t.Fatalf("version %d after MigrateTo(1)", v)
	}
	// Rows written with version 1's columns only, the way release 1 wrote them.
	if _, err := old.w.ExecContext(ctx, `INSERT INTO users (uuid, username, email, full_name, is_staff, is_active, password_hash, created_at, modified_at)
		VALUES ('0123456789abcdef0123456789abcdef', 'olduser', 'old@example.org', 'Old User', 1, 1, 'hash', 1700000000, 1700000001)`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.w.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES ('homeserver_url', 'https://matrix.example.org', 1700000000)`); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	// The next release opens it: Open migrates.
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("open old database: %v", err)
	}
	defer s.Close()
	if v, err := s.Version(ctx); err != nil || v != LatestVersion() {
		t.Fatalf("version %d (%v), want %d", v, err, LatestVersion())
	}
	u, err := s.UserByUsername(ctx, "olduser")
	if err != nil {
		t.Fatalf("user lost in migration: %v", err)
	}
	if u.UUID != "0123456789abcdef0123456789abcdef" || u.Email != "old@example.org" || !u.IsStaff || u.PasswordHash != "hash" || u.CreatedAt.Unix() != 1700000000 {
		t.Errorf("user changed in migration: %+v", u)
	}
	st := NewSettings(s, nil)
	if v, err := st.Get(ctx, settings.HomeserverURL.Key); err != nil || v != "https://matrix.example.org" {
		t.Errorf("setting after migration: %q, %v", v, err)
	}
	// A migrated database takes the newer tables' rows (the counters seeded by 0002).
	if _, err := s.Counter(ctx, CounterTransactions); err != nil {
		t.Errorf("counter after migration: %v", err)
	}
	// Migrating again is a no-op.
	if err := s.Migrate(ctx); err != nil {
		t.Errorf("second migrate: %v", err)
	}
}

// TestMigrateStepByStep applies the migrations one at a time, as successive releases
// would, and checks each step lands on its version.
func TestMigrateStepByStep(t *testing.T) {
	ctx := context.Background()
	s, err := OpenNoMigrate(filepath.Join(t.TempDir(), "steps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.Version(ctx); v != 0 {
		t.Fatalf("new database at version %d", v)
	}
	if LatestVersion() < 1 {
		t.Fatal("no migrations found")
	}
	for v := 1; v <= LatestVersion(); v++ {
		if err := s.MigrateTo(ctx, v); err != nil {
			t.Fatalf("migrate to %d: %v", v, err)
		}
		if got, _ := s.Version(ctx); got != v {
			t.Fatalf("after MigrateTo(%d): version %d", v, got)
		}
	}
}

func TestNewerDatabaseIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "future.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	future := LatestVersion() + 1
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, future)); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Errorf("Migrate on a newer database: %v, want a refusal", err)
	}
	s.Close()

	if s, err := Open(ctx, path); err == nil {
		s.Close()
		t.Fatal("Open accepted a database newer than the binary")
	} else if !strings.Contains(err.Error(), fmt.Sprint(future)) {
		t.Errorf("error %q does not name the version", err)
	}
	// The refusal changed nothing.
	s, err = OpenNoMigrate(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.Version(ctx); v != future {
		t.Errorf("version %d after refusal, want %d", v, future)
	}
}

// TestFailedMigrationRollsBack checks that a migration that fails leaves the database at
// its previous version with nothing half-applied.
func TestFailedMigrationRollsBack(t *testing.T) {
	ctx := context.Background()
	s, err := OpenNoMigrate(filepath.Join(t.TempDir(), "fail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.MigrateTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Make migration 2 fail half-way: its second table already exists.
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE counters (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if err := s.MigrateTo(ctx, 2); err == nil || !strings.Contains(err.Error(), "0002") {
		t.Fatalf("migration over a clashing table: %v, want an error naming 0002", err)
	}
	if v, _ := s.Version(ctx); v != 1 {
		t.Errorf("version %d after a failed migration, want 1", v)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'as_transactions'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("migration 2's first table exists after the rollback (%d, %v)", n, err)
	}
}

// TestMigrationFilesArePurposeCommented enforces the house rule: each migration starts
// with a one-line comment saying what it is for.
func TestMigrationFilesArePurposeCommented(t *testing.T) {
	err := fs.WalkDir(migrationFiles, "migrations", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := migrationFiles.ReadFile(path)
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(string(b), "\n")
		if !strings.HasPrefix(first, "-- ") || len(first) < 10 {
			t.Errorf("%s: first line %q is not a '-- purpose' comment", path, first)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNotFoundWrapsErrNoRows(t *testing.T) {
	s := openMigrated(t)
	_, err := s.UserByUsername(context.Background(), "nobody")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("missing user: %v, want ErrNotFound naming the user", err)
	}
}

// TestTransactionsMigrateToArrivalOrder: transactions recorded at schema 5 (keyed by
// txn_id) keep their ids, counts and times in 0006's table, listed in time order, and a
// repeated txnId is still refused.
func TestTransactionsMigrateToArrivalOrder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v5.db")
	old, err := OpenNoMigrate(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.MigrateTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		id string
		at int64
	}{{"b", 200}, {"a", 100}, {"c", 300}, {"a2", 100}} {
		if _, err := old.w.ExecContext(ctx, `INSERT INTO as_transactions (txn_id, event_count, processed_at) VALUES (?, ?, ?)`, r.id, len(r.id), r.at); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, _, err := s.ListTransactions(ctx, TxnCursor{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s/%d/%d", r.TxnID, r.EventCount, r.ProcessedAt.Unix()))
	}
	if want := "[c/1/300 b/1/200 a2/2/100 a/1/100]"; fmt.Sprint(got) != want {
		t.Errorf("after migration: %v, want %s", got, want)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO as_transactions (txn_id, event_count, processed_at) VALUES ('b', 1, 400)`); err == nil {
		t.Error("a repeated txn_id was accepted after migration")
	}
}
