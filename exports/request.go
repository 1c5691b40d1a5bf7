package exports

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"matrixas/db"
	"matrixas/export"
)

// ErrNoMatrixRoom is a room that does not exist on the homeserver yet (no Matrix room
// id): there is no history to export. The API answers 409.
var ErrNoMatrixRoom = errors.New("the room does not exist on the homeserver yet, so it has no history to export")

// ErrTooManyExports is a room that had ManualLimit manual exports in ManualWindow
// already. The API answers 429. Request returns it inside a *LimitError, which says
// when the next one will be accepted.
var ErrTooManyExports = fmt.Errorf("at most %d manual exports of a room in 24 hours", ManualLimit)

// LimitError is ErrTooManyExports with the wait until the oldest manual export of the
// window leaves it.
type LimitError struct {
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: the next one in %s", ErrTooManyExports, e.RetryAfter.Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrTooManyExports) hold.
func (e *LimitError) Unwrap() error { return ErrTooManyExports }

// ErrNoFile is an export without the file asked for: not completed (yet), or without
// media. The API answers 404.
var ErrNoFile = errors.New("this export has no such file")

// Request queues a manual export of room, for the export_history action of the API and
// the dashboard. When an export of the room already waits, it returns that one and
// created false (even past the limit: nothing new is queued). A room without a Matrix
// room is ErrNoMatrixRoom; the ManualLimit+1st manual export in ManualWindow is
// ErrTooManyExports. A new export wakes the job.
func (j *Job) Request(ctx context.Context, room *db.Room) (e *db.HistoryExport, created bool, err error) {
	if room.RoomID == "" {
		return nil, false, ErrNoMatrixRoom
	}
	n, err := j.store.ManualExportsSince(ctx, room.ID, j.opts.Now().Add(-ManualWindow))
	if err != nil {
		return nil, false, err
	}
	if n >= ManualLimit {
		if p, err := j.store.PendingExport(ctx, room.ID); err == nil {
			return p, false, nil
		} else if !errors.Is(err, db.ErrNotFound) {
			return nil, false, err
		}
		now := j.opts.Now()
		oldest, err := j.store.OldestManualExportSince(ctx, room.ID, now.Add(-ManualWindow))
		if err != nil {
			return nil, false, err
		}
		return nil, false, &LimitError{RetryAfter: max(oldest.Add(ManualWindow).Sub(now), time.Second)}
	}
	e, created, err = j.store.CreateExport(ctx, room.ID, db.ExportManual)
	if err != nil {
		return nil, false, err
	}
	if created {
		j.Wake()
	}
	return e, created, nil
}

// Open opens the file of the given kind (export.KindJSON or export.KindMedia) of a
// completed export for download, its whole integrity checked first. No such file is
// ErrNoFile; a file that fails its check, or is missing from the folder, is
// export.ErrIntegrity: it is never served.
func (j *Job) Open(e *db.HistoryExport, kind string) (*export.Plaintext, error) {
	name := e.ExportFile
	if kind == export.KindMedia {
		name = e.MediaFile
	} else if kind != export.KindJSON {
		return nil, fmt.Errorf("exports: unknown file kind %q: %w", kind, ErrNoFile)
	}
	if e.State != db.ExportCompleted || name == "" {
		return nil, ErrNoFile
	}
	p, err := export.Open(j.opts.Export.Dir, name, j.opts.Export.Key, e.UUID, kind)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: the file %s is missing from the export folder", export.ErrIntegrity, name)
	}
	return p, err
}
