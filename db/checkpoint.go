package db

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// CheckpointOptions tunes the background checkpointer; a zero field takes its default.
type CheckpointOptions struct {
	// Interval is how often a PASSIVE checkpoint copies the WAL into the database file
	// from the checkpointer's own connection, without taking the write lock (default
	// 100 ms).
	Interval time.Duration
	// MaxPages is the WAL size, in frames, past which the checkpointer holds the writer
	// connection for a moment to copy the frames written since, so that the next commit
	// starts the WAL over (default 4096, 16 MiB of 4 KiB pages). A checkpoint running
	// beside a busy writer never catches up with it: without this, the WAL would grow
	// for as long as the load lasts.
	MaxPages int
	// IdleAfter is how long the WAL must stay unchanged before a TRUNCATE checkpoint
	// empties its file (default 5 s).
	IdleAfter time.Duration
	// Log receives checkpoint failures (default: discarded).
	Log *slog.Logger
}

// Checkpointer moves the WAL into the database file in the background, so that no commit
// pays for it: with SQLite's automatic checkpoint, the commit that crosses 1,000 pages
// copies them and syncs the file (24.9 ms at p99 in the peer benchmark's minimal
// recorder). While it runs, the writer connection's automatic checkpoint is off.
type Checkpointer struct {
	store *Store
	opt   CheckpointOptions
	conn  *sql.DB // its own connection: a PASSIVE checkpoint there never holds up the writer

	lastFrames int       // the WAL's frames at the previous tick
	sameSince  time.Time // since when the WAL has not changed
	empty      bool      // truncated, and unchanged since
}

// NewCheckpointer returns a checkpointer for s; Run runs it.
func (s *Store) NewCheckpointer(opt CheckpointOptions) *Checkpointer {
	if opt.Interval <= 0 {
		opt.Interval = 100 * time.Millisecond
	}
	if opt.MaxPages <= 0 {
		opt.MaxPages = 4096
	}
	if opt.IdleAfter <= 0 {
		opt.IdleAfter = 5 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Checkpointer{store: s, opt: opt}
}

// Run checkpoints every Interval until ctx is cancelled, then gives the writer
// connection its automatic checkpoint back (closing the store checkpoints the rest).
func (c *Checkpointer) Run(ctx context.Context) {
	if err := c.start(ctx); err != nil {
		c.opt.Log.Warn("checkpointer not started: commits checkpoint the WAL themselves", "err", err)
		return
	}
	defer c.stop()
	t := time.NewTicker(c.opt.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.tick(ctx); err != nil && ctx.Err() == nil {
				c.opt.Log.Warn("WAL checkpoint failed", "err", err)
			}
		}
	}
}

// start opens the checkpointer's connection and turns the writer's automatic checkpoint
// off. The writer pool holds one connection for the store's life, so the PRAGMAs stay;
// should the driver ever replace it, the new one checkpoints by itself, as SQLite does
// by default. journal_size_limit shrinks the WAL file back when a commit starts it over.
func (c *Checkpointer) start(ctx context.Context) error {
	conn, err := sql.Open("sqlite3", dsn(c.store.path, false))
	if err != nil {
		return fmt.Errorf("db: open checkpoint connection: %w", err)
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxLifetime(0)
	conn.SetConnMaxIdleTime(0)
	limit := int64(c.opt.MaxPages) * 4096
	if _, err := c.store.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA journal_size_limit = %d`, limit)); err != nil {
		conn.Close()
		return fmt.Errorf("db: set journal_size_limit: %w", err)
	}
	if _, err := c.store.w.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		conn.Close()
		return fmt.Errorf("db: turn off automatic checkpoints: %w", err)
	}
	c.conn = conn
	c.sameSince = time.Now()
	return nil
}

func (c *Checkpointer) stop() {
	if _, err := c.store.w.ExecContext(context.Background(), `PRAGMA wal_autocheckpoint = 1000`); err != nil {
		c.opt.Log.Warn("could not turn automatic checkpoints back on", "err", err)
	}
	c.conn.Close()
}

// tick runs one round: a PASSIVE checkpoint beside the writer; when the WAL is past
// MaxPages, the rest copied with the writer held so that the next commit starts it over;
// when it has not changed for IdleAfter, a TRUNCATE to give its file's space back.
func (c *Checkpointer) tick(ctx context.Context) error {
	frames, copied, err := checkpoint(ctx, c.conn, "PASSIVE")
	if err != nil {
		return err
	}
	now := time.Now()
	if frames != c.lastFrames || copied < frames {
		c.lastFrames, c.sameSince, c.empty = frames, now, false
	}
	switch {
	case frames >= c.opt.MaxPages:
		// Most frames are copied by now; the writer waits for the rest and one sync.
		return c.onWriter(ctx, "PASSIVE")
	case !c.empty && now.Sub(c.sameSince) >= c.opt.IdleAfter:
		if err := c.onWriter(ctx, "TRUNCATE"); err != nil {
			return err
		}
		c.empty, c.lastFrames = true, 0
	}
	return nil
}

// onWriter runs a checkpoint on the writer connection: commits wait for it in the pool's
// queue (not in SQLite's busy handler, which sleeps in steps of milliseconds), and none
// can append to the WAL while it copies, so it copies everything readers allow.
func (c *Checkpointer) onWriter(ctx context.Context, mode string) error {
	conn, err := c.store.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("db: checkpoint: %w", err)
	}
	defer conn.Close()
	_, _, err = checkpoint(ctx, conn, mode)
	return err
}

// querier is what a checkpoint needs of a pool or a pinned connection.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkpoint runs PRAGMA wal_checkpoint(mode) and returns the WAL's frames and how many
// of them are now in the database file.
func checkpoint(ctx context.Context, q querier, mode string) (frames, copied int, err error) {
	var busy int
	if err := q.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &frames, &copied); err != nil {
		return 0, 0, fmt.Errorf("db: checkpoint (%s): %w", mode, err)
	}
	return frames, copied, nil
}
