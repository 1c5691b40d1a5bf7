package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// writerStmts are statements prepared once on the writer's SQLite connection and run
// without database/sql, for the transaction recorder: its commit is on the homeserver's
// path, one transaction at a time, and database/sql's transaction costs as much as the
// recording itself there (a goroutine and a context per transaction, a wrapper per
// statement): BenchmarkRecord at one caller took half the time without it. Only the
// leader of a commit uses them, one at a time. SQLite-specific, as the recorder's
// commit is: a PostgreSQL store will have its own.
type writerStmts struct {
	conn  *sqlite3.SQLiteConn // the connection they were prepared on
	stmts map[string]driver.Stmt
}

// rawTx is one write transaction on the writer's connection (see Store.rawWrite).
type rawTx struct{ ws *writerStmts }

func (ws *writerStmts) stmt(q string) (driver.Stmt, error) {
	if st, ok := ws.stmts[q]; ok {
		return st, nil
	}
	st, err := ws.conn.Prepare(q)
	if err != nil {
		return nil, err
	}
	ws.stmts[q] = st
	return st, nil
}

// use binds ws to c, dropping the statements of an earlier connection (the pool
// replaced a broken one).
func (ws *writerStmts) use(c *sqlite3.SQLiteConn) {
	if ws.conn == c {
		return
	}
	ws.close()
	ws.conn, ws.stmts = c, map[string]driver.Stmt{}
}

func (ws *writerStmts) close() {
	for _, st := range ws.stmts {
		st.Close()
	}
	ws.stmts = nil
}

func namedValues(args []any) ([]driver.NamedValue, error) {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a) // typed ids are strings, int is int64
		if err != nil {
			return nil, fmt.Errorf("db: argument %d: %w", i+1, err)
		}
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv, nil
}

// exec runs q with args and returns the rows it changed.
func (t rawTx) exec(q string, args ...any) (int64, error) {
	st, err := t.ws.stmt(q)
	if err != nil {
		return 0, err
	}
	nv, err := namedValues(args)
	if err != nil {
		return 0, err
	}
	res, err := st.(driver.StmtExecContext).ExecContext(context.Background(), nv)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs q with args and scans its first row into dest (each an *int64 or a
// *bool); sql.ErrNoRows when there is none.
func (t rawTx) queryRow(q string, args []any, dest ...any) error {
	st, err := t.ws.stmt(q)
	if err != nil {
		return err
	}
	nv, err := namedValues(args)
	if err != nil {
		return err
	}
	rows, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), nv)
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(vals); err != nil {
		if errors.Is(err, io.EOF) {
			return sql.ErrNoRows
		}
		return err
	}
	if len(dest) != len(vals) {
		return fmt.Errorf("db: %d columns, %d destinations", len(vals), len(dest))
	}
	for i, d := range dest {
		n, ok := vals[i].(int64)
		if !ok {
			return fmt.Errorf("db: column %d is %T, not an integer", i+1, vals[i])
		}
		switch d := d.(type) {
		case *int64:
			*d = n
		case *bool:
			*d = n != 0
		default:
			return fmt.Errorf("db: cannot scan into %T", d)
		}
	}
	return nil
}

// rawWrite runs fn in one write transaction (BEGIN IMMEDIATE ... COMMIT) on the writer's
// connection with the statements of ws, prepared there once. fn's error rolls it back.
func (s *Store) rawWrite(ctx context.Context, ws *writerStmts, fn func(rawTx) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		s.noteWrite(err)
		return fmt.Errorf("db: writer connection: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("db: the writer connection is a %T", dc)
		}
		ws.use(c)
		tx := rawTx{ws}
		if _, err := tx.exec("BEGIN IMMEDIATE"); err != nil {
			return fmt.Errorf("db: begin: %w", err)
		}
		if err := fn(tx); err != nil {
			tx.exec("ROLLBACK")
			return err
		}
		if _, err := tx.exec("COMMIT"); err != nil {
			tx.exec("ROLLBACK") // SQLite may leave the transaction open
			return fmt.Errorf("db: commit: %w", err)
		}
		return nil
	})
	s.noteWrite(err)
	return err
}

// closeWriterStmts closes ws's statements on the writer's connection.
func (s *Store) closeWriterStmts(ws *writerStmts) {
	conn, err := s.w.Conn(context.Background())
	if err != nil {
		return // the store is closed, and its connection with it
	}
	defer conn.Close()
	conn.Raw(func(any) error { ws.close(); return nil })
}
