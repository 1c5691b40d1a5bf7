package appservice

import (
	"sync"
	"time"
)

// ErrorWindow counts the 5xx answers this server gave the homeserver, minute by minute
// over the last hour, for the webhook_errors diagnostic. It is kept in memory, not in
// the database: the usual cause of a 5xx is a database that refuses writes, which could
// not record it either. A restart starts the count afresh, and Count says since when it
// counts.
type ErrorWindow struct {
	mu      sync.Mutex
	minutes [60]struct {
		minute int64 // unix minute the count is for
		n      int
	}
	started time.Time
}

// NewErrorWindow returns an empty window that counts from now.
func NewErrorWindow() *ErrorWindow { return &ErrorWindow{started: time.Now()} }

// Add counts one 5xx answer given at t.
func (e *ErrorWindow) Add(t time.Time) {
	m := t.Unix() / 60
	e.mu.Lock()
	defer e.mu.Unlock()
	b := &e.minutes[m%int64(len(e.minutes))]
	switch {
	case b.minute > m:
		return // an hour older than what the slot holds: out of the window anyway
	case b.minute < m:
		b.minute, b.n = m, 0
	}
	b.n++
}

// Count returns the 5xx answers given in the hour before now (by whole minutes), and
// since when they were counted: an hour ago, or when this server started if later.
func (e *ErrorWindow) Count(now time.Time) (n int, since time.Time) {
	from := now.Unix()/60 - int64(len(e.minutes)) + 1
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.minutes {
		if b.minute >= from && b.minute <= now.Unix()/60 {
			n += b.n
		}
	}
	since = now.Add(-time.Hour)
	if e.started.After(since) {
		since = e.started
	}
	return n, since
}
