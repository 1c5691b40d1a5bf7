package db

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// WriteHealth is what the store knows about its writes since the process started:
// whether the database refuses them now, and why. /readyz and the overview page show it,
// so a full disk or a read-only file is seen on the dashboard, not only in the log.
type WriteHealth struct {
	// Failing is true when the latest write failed for a storage reason and no write has
	// succeeded since.
	Failing bool
	// LastError is a short, fixed description of the latest storage failure ("the
	// database is read-only"); never the driver's text. "" when there was none.
	LastError   string
	LastErrorAt time.Time
	// RecoveredAt is when a write first succeeded after LastErrorAt; zero while failing.
	RecoveredAt time.Time
	// Failures counts the writes that failed for a storage reason since start.
	Failures int64
}

// writeHealth is the store's WriteHealth, updated by every write transaction. The
// atomic flag keeps the healthy path (nearly every commit) free of the mutex.
type writeHealth struct {
	failing atomic.Bool
	mu      sync.Mutex
	h       WriteHealth
}

// WriteHealth returns the current write health.
func (s *Store) WriteHealth() WriteHealth {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	return s.writes.h
}

// noteWrite records a write's outcome: nil is a success; an error counts only when it
// is the storage's fault (a constraint violation or a missing row says nothing about
// the disk, and neither does a cancelled request).
func (s *Store) noteWrite(err error) {
	wh := &s.writes
	if err == nil {
		if !wh.failing.Load() {
			return
		}
		wh.mu.Lock()
		if wh.h.Failing {
			wh.h.Failing = false
			wh.h.RecoveredAt = time.Now()
		}
		wh.failing.Store(false)
		wh.mu.Unlock()
		return
	}
	reason := StorageFailure(err)
	if reason == "" {
		return
	}
	wh.mu.Lock()
	wh.h.Failing = true
	wh.h.LastError = reason
	wh.h.LastErrorAt = time.Now()
	wh.h.RecoveredAt = time.Time{}
	wh.h.Failures++
	wh.failing.Store(true)
	wh.mu.Unlock()
}

// StorageFailure returns a short description of err when it means the database cannot
// store data (read-only, full, I/O error, corrupt, locked by another process), else "".
// The description is fixed text, safe to show on a page.
func StorageFailure(err error) string {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return ""
	}
	switch se.Code {
	case sqlite3.ErrReadonly:
		return "the database is read-only"
	case sqlite3.ErrFull:
		return "the database or disk is full"
	case sqlite3.ErrIoErr:
		return "disk I/O error"
	case sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
		return "the database file is damaged"
	case sqlite3.ErrCantOpen:
		return "the database file cannot be opened"
	case sqlite3.ErrPerm, sqlite3.ErrAuth:
		return "writing the database is not permitted"
	case sqlite3.ErrBusy, sqlite3.ErrLocked:
		return "the database is locked by another process"
	case sqlite3.ErrNomem:
		return "out of memory"
	}
	return ""
}

// WriteFault is a storage failure the writer connection can be made to simulate.
type WriteFault int

// The faults SimulateWriteFault knows.
const (
	// NoWriteFault is normal operation: it undoes the others.
	NoWriteFault WriteFault = iota
	// FaultReadOnly makes every write fail with SQLITE_READONLY (PRAGMA query_only).
	FaultReadOnly
	// FaultDiskFull makes every write that needs a new page fail with SQLITE_FULL
	// (PRAGMA max_page_count pinned to the current size), as a full disk does.
	FaultDiskFull
)

// maxPageCount is SQLite's largest max_page_count; asking for it restores the default.
const maxPageCount = 4294967294

// SimulateWriteFault makes the writer connection fail writes the way a read-only
// database or a full disk does, until it is called again with NoWriteFault. It exists
// for fault tests and drills: the real failures cannot be provoked portably (root
// ignores file modes, and filling a disk harms the machine). Reads are unaffected.
func (s *Store) SimulateWriteFault(ctx context.Context, f WriteFault) error {
	conn, err := s.w.Conn(ctx) // the one writer connection: the pragmas stick to it
	if err != nil {
		return fmt.Errorf("db: simulate write fault: %w", err)
	}
	defer conn.Close()
	queryOnly, maxPages := 0, int64(maxPageCount)
	switch f {
	case NoWriteFault:
	case FaultReadOnly:
		queryOnly = 1
	case FaultDiskFull:
		if err := conn.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&maxPages); err != nil {
			return fmt.Errorf("db: simulate write fault: %w", err)
		}
	default:
		return fmt.Errorf("db: simulate write fault: unknown fault %d", f)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA query_only = %d`, queryOnly)); err != nil {
		return fmt.Errorf("db: simulate write fault: %w", err)
	}
	var got int64
	if err := conn.QueryRowContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, maxPages)).Scan(&got); err != nil {
		return fmt.Errorf("db: simulate write fault: %w", err)
	}
	return nil
}
