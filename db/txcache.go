package db

import (
	"context"
	"database/sql"
)

// txCache lets a write transaction that repeats the same few statements thousands of
// times (the platform sync's bulk writes) prepare each statement once, and remember what
// it already looked up. It travels in the context so that the row-level helpers keep
// their signatures: without one in the context they run the statements as they come.
type txCache struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	// ensured are the users whose Matrix profile this transaction already made sure of.
	ensured map[int64]bool
	// rooms are the projects' active rooms (0: none) looked up for notifications.
	rooms map[int64]int64
}

type txCacheKey struct{}

// withTxCache returns a context carrying a statement cache for tx, and the function
// that closes its statements (call it before the transaction ends).
func withTxCache(ctx context.Context, tx *sql.Tx) (context.Context, func()) {
	c := &txCache{tx: tx, stmts: map[string]*sql.Stmt{}, ensured: map[int64]bool{}, rooms: map[int64]int64{}}
	return context.WithValue(ctx, txCacheKey{}, c), func() {
		for _, st := range c.stmts {
			st.Close()
		}
	}
}

// cacheOf returns the cache of tx carried by ctx, or nil.
func cacheOf(ctx context.Context, tx *sql.Tx) *txCache {
	c, _ := ctx.Value(txCacheKey{}).(*txCache)
	if c == nil || c.tx != tx {
		return nil
	}
	return c
}

func (c *txCache) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := c.stmts[q]; ok {
		return st, nil
	}
	st, err := c.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.stmts[q] = st
	return st, nil
}

// execTx runs a statement in tx, prepared once when ctx carries tx's cache.
func execTx(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if c := cacheOf(ctx, tx); c != nil {
		st, err := c.stmt(ctx, q)
		if err != nil {
			return nil, err
		}
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// queryRowTx runs a one-row query in tx, prepared once when ctx carries tx's cache.
func queryRowTx(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if c := cacheOf(ctx, tx); c != nil {
		if st, err := c.stmt(ctx, q); err == nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return tx.QueryRowContext(ctx, q, args...) // reports a preparation error itself
}
