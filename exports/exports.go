// Package exports is the history export job: it runs the exports queued in the
// database (db/exports.go: manual, periodic and on_deletion ones) with package export's
// exporter, a bounded number at once and one at a time per room; it queues the daily
// export of every active room when periodic exports are on; and it applies retention.
// It also gives the API and the dashboard the two things they do with exports: asking
// for one (Request) and opening a finished file for download (Open).
//
// The rows are the queue, so a restart loses nothing: at start, before any export runs,
// the files a crash left half-written are deleted and the exports it interrupted go
// back to pending (or to failed after MaxAttempts runs); a half-written file is never
// recorded, so never served.
package exports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"maunium.net/go/mautrix"

	"matrixas/db"
	"matrixas/export"
	"matrixas/matrix"
)

// Defaults of Options.
const (
	DefaultConcurrency   = 2
	DefaultMaxAttempts   = 3
	DefaultInterval      = 30 * time.Second
	DefaultHour          = 2
	DefaultRetentionDays = 90
	// ManualLimit is how many manual exports of one room may be asked for in
	// ManualWindow (the reference's limit); the next one is refused (429).
	ManualLimit  = 10
	ManualWindow = 24 * time.Hour
	// progressEvery bounds how often a running export's counts are written.
	progressEvery = time.Second
	// retentionBatch is how many expired exports one query returns.
	retentionBatch = 100
)

// Options tune the job. Export.Dir and Export.Key are required.
type Options struct {
	// Export configures the exporter: the folder, the master key, whether media is
	// archived, and its limits.
	Export export.Config
	// Concurrency is how many exports run at once (default 2); one room never has two.
	Concurrency int
	// MaxAttempts is how many runs of one export may be interrupted (a crash, a stop)
	// before recovery marks it failed instead of trying again (default 3).
	MaxAttempts int
	// Periodic queues an export of every active room daily at Hour (UTC, 0-23)
	// (MATRIX_HISTORY_EXPORT_ENABLED, MATRIX_HISTORY_EXPORT_HOUR).
	Periodic bool
	Hour     int
	// RetentionDays deletes finished exports older than this, daily; each room's newest
	// completed export is always kept; 0 keeps everything.
	RetentionDays int
	// Interval is how often the queue is looked at without a Wake (default 30 s).
	Interval time.Duration
	// OnFinish is called after each export completes or fails (the provisioning
	// worker's Wake, so that a room waiting to be archived moves on); nil = nobody.
	OnFinish func()
	// Observer is told each export's outcome (metrics); nil = nobody.
	Observer Observer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger logs the job's work (default: discard).
	Logger *slog.Logger
}

// Observer is told the outcome of every export the job finishes.
type Observer interface {
	// ExportFinished reports one export: its type and whether it completed.
	ExportFinished(typ db.ExportType, completed bool)
}

// Job runs the history exports. Run it once; Wake it after queueing an export.
type Job struct {
	store    *db.Store
	settings *db.Settings
	ex       *export.Exporter
	opts     Options
	log      *slog.Logger
	wake     chan struct{}
}

// New returns the job over store, reading rooms through rio as the bot whenever the
// appservice settings (read from settings on every cycle) allow it.
func New(store *db.Store, settings *db.Settings, rio matrix.RoomIO, opts Options) (*Job, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Hour < 0 || opts.Hour > 23 {
		return nil, fmt.Errorf("exports: hour %d is not 0-23", opts.Hour)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	log := opts.Logger.With("component", "exports")
	if opts.Export.Logger == nil {
		opts.Export.Logger = log
	}
	ex, err := export.New(rio, opts.Export)
	if err != nil {
		return nil, err
	}
	return &Job{store: store, settings: settings, ex: ex, opts: opts, log: log, wake: make(chan struct{}, 1)}, nil
}

// Wake makes the job look at the queue now. It never blocks: wakes coalesce.
func (j *Job) Wake() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// Run recovers what a crash left (Recover), then runs exports until ctx is cancelled,
// when it waits for the ones under way: they stop, leave no file behind and stay
// "exporting" for the next start's recovery to try again.
func (j *Job) Run(ctx context.Context) {
	if err := j.Recover(ctx); err != nil && ctx.Err() == nil {
		j.log.Error("recover interrupted exports", "error", err)
	}
	sem := make(chan struct{}, j.opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	next := time.Time{} // the daily work is due at start
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-j.wake:
		case <-timer.C:
		}
		if now := j.opts.Now(); !now.Before(next) {
			j.daily(ctx, now)
			next = nextSlot(now, j.opts.Hour)
		}
		j.startDue(ctx, sem, &wg)
		wait := min(j.opts.Interval, max(next.Sub(j.opts.Now()), time.Second))
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// Recover prepares the export folder and the records after a stop or a crash: it
// deletes the files left half-written, then sends the exports left running back to
// pending (or to failed, after MaxAttempts interrupted runs). Run calls it first;
// nothing may be exporting while it runs.
func (j *Job) Recover(ctx context.Context) error {
	n, err := export.RemoveUnfinished(j.opts.Export.Dir)
	if err != nil {
		return err
	}
	if n > 0 {
		j.log.Info("deleted files an interrupted export left", "files", n)
	}
	requeued, failed, err := j.store.RecoverExports(ctx, j.opts.MaxAttempts)
	if err != nil {
		return err
	}
	if requeued+failed > 0 {
		j.log.Warn("exports interrupted by a stop", "retried", requeued, "failed", failed)
	}
	return nil
}

// nextSlot is the first time after now at hour:00 UTC.
func nextSlot(now time.Time, hour int) time.Time {
	now = now.UTC()
	slot := time.Date(now.Year(), now.Month(), now.Day(), hour, 0, 0, 0, time.UTC)
	if !slot.After(now) {
		slot = slot.AddDate(0, 0, 1)
	}
	return slot
}

// lastSlot is the latest time at or before now at hour:00 UTC.
func lastSlot(now time.Time, hour int) time.Time {
	return nextSlot(now, hour).AddDate(0, 0, -1)
}

// daily is the once-a-day work, also done at start: retention, and the periodic
// exports when they are on and today's have not been queued yet.
func (j *Job) daily(ctx context.Context, now time.Time) {
	if n, err := j.ApplyRetention(ctx); err != nil && ctx.Err() == nil {
		j.log.Error("apply export retention", "error", err)
	} else if n > 0 {
		j.log.Info("deleted exports past retention", "exports", n, "days", j.opts.RetentionDays)
	}
	if !j.opts.Periodic {
		return
	}
	if _, err := j.QueuePeriodic(ctx, now); err != nil && ctx.Err() == nil {
		j.log.Error("queue the daily exports", "error", err)
	}
}

// QueuePeriodic queues the daily export of every active room, unless the exports of the
// day (since the last hour:00 UTC at or before now) were queued already, by this run or
// before a restart. A room whose previous export still waits gets none. It returns how
// many it queued.
func (j *Job) QueuePeriodic(ctx context.Context, now time.Time) (int, error) {
	last, err := j.store.LastExportCreatedAt(ctx, db.ExportPeriodic)
	if err != nil {
		return 0, err
	}
	if !last.Before(lastSlot(now, j.opts.Hour)) {
		return 0, nil
	}
	n, err := j.store.QueuePeriodicExports(ctx)
	if err != nil {
		return 0, err
	}
	j.log.Info("queued the daily history exports", "rooms", n)
	if n > 0 {
		j.Wake()
	}
	return n, nil
}

// ApplyRetention deletes the finished exports older than RetentionDays, files first,
// keeping each room's newest completed export; it returns how many it deleted. An
// export whose files cannot be deleted keeps its record, to be tried again next time.
func (j *Job) ApplyRetention(ctx context.Context) (int, error) {
	if j.opts.RetentionDays <= 0 {
		return 0, nil
	}
	cutoff := j.opts.Now().Add(-time.Duration(j.opts.RetentionDays) * 24 * time.Hour)
	deleted := 0
	for {
		batch, err := j.store.ExportsCreatedBefore(ctx, cutoff, retentionBatch)
		if err != nil {
			return deleted, err
		}
		progress := false
		for _, e := range batch {
			if err := export.RemoveFiles(j.opts.Export.Dir, e.UUID); err != nil {
				j.log.Error("delete the files of an expired export", "export", e.UUID, "error", err)
				continue
			}
			if err := j.store.DeleteExport(ctx, e.UUID); err != nil && !errors.Is(err, db.ErrNotFound) {
				return deleted, err
			}
			deleted++
			progress = true
		}
		if len(batch) < retentionBatch || !progress {
			return deleted, nil
		}
	}
}

// ready reports whether the settings allow reading rooms on the homeserver.
func ready(ms *db.MatrixSettings) bool {
	return ms.Enabled && ms.HomeserverURL != "" && ms.HomeserverDomain != "" && ms.ASToken != ""
}

// startDue claims pending exports into the free slots and runs each on its own
// goroutine. Until the appservice is set up, exports wait.
func (j *Job) startDue(ctx context.Context, sem chan struct{}, wg *sync.WaitGroup) {
	ms, err := j.settings.Matrix(ctx)
	if err != nil {
		if ctx.Err() == nil {
			j.log.Error("read settings", "error", err)
		}
		return
	}
	if !ready(ms) {
		return
	}
	for {
		select {
		case sem <- struct{}{}:
		default:
			return // every slot is busy; a finishing export wakes the loop
		}
		e, err := j.store.ClaimExport(ctx, j.opts.Concurrency)
		if err != nil {
			<-sem
			if !errors.Is(err, db.ErrNotFound) && ctx.Err() == nil {
				j.log.Error("claim an export", "error", err)
			}
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem; j.Wake() }()
			j.run(ctx, e, matrix.Secrets(ms))
		}()
	}
}

// run runs one claimed export and records its outcome.
func (j *Job) run(ctx context.Context, e *db.HistoryExport, secrets []string) {
	log := j.log.With("export", e.UUID, "type", string(e.Type), "room_id", string(e.RoomID))
	if e.RoomID == "" {
		j.finish(ctx, log, e, nil, errors.New("the room does not exist on the homeserver (it has no Matrix room id)"), secrets)
		return
	}
	var last time.Time
	progress := func(messages, media int) {
		if now := time.Now(); now.Sub(last) >= progressEvery {
			last = now
			if err := j.store.ExportProgress(ctx, e.UUID, messages, media); err != nil && ctx.Err() == nil {
				log.Warn("record export progress", "error", err)
			}
		}
	}
	log.Info("history export started", "attempt", e.Attempts)
	res, err := j.ex.Run(ctx, export.Job{UUID: e.UUID, RoomID: e.RoomID, RoomName: e.RoomName, Progress: progress})
	if err != nil && ctx.Err() != nil {
		// The server is stopping: the export stays "exporting"; the next start's
		// recovery tries it again (or fails it after MaxAttempts).
		log.Info("history export interrupted by the stop; it is retried at the next start")
		return
	}
	j.finish(ctx, log, e, res, err, secrets)
}

// finish records a finished run, tells the observer and calls OnFinish.
func (j *Job) finish(ctx context.Context, log *slog.Logger, e *db.HistoryExport, res *export.Result, runErr error, secrets []string) {
	ctx = context.WithoutCancel(ctx) // the outcome is recorded even if a stop began meanwhile
	var err error
	if runErr != nil {
		reason := matrix.Redact(FailureReason(runErr), secrets)
		err = j.store.FailExport(ctx, e.UUID, reason)
		log.Warn("history export failed", "reason", reason)
	} else {
		err = j.store.CompleteExport(ctx, e.UUID, db.ExportOutcome{
			MessageCount: res.MessageCount, MediaCount: res.MediaCount,
			ExportFile: res.ExportFile, ExportSize: res.ExportSize, MediaFile: res.MediaFile, MediaSize: res.MediaSize,
			KeyID: res.KeyID,
		})
		if errors.Is(err, db.ErrConflict) || errors.Is(err, db.ErrNotFound) {
			// The record moved on meanwhile (it is no longer running): its files are
			// not on record, so they go.
			if rmErr := export.RemoveFiles(j.opts.Export.Dir, e.UUID); rmErr != nil {
				log.Error("delete the files of an export that is no longer running", "error", rmErr)
			}
		}
	}
	if err != nil {
		log.Error("record the outcome of a history export", "error", err)
	}
	if j.opts.Observer != nil {
		j.opts.Observer.ExportFinished(e.Type, runErr == nil && err == nil)
	}
	if j.opts.OnFinish != nil {
		j.opts.OnFinish()
	}
}

// FailureReason is the error_message of a failed export: the homeserver's errcode or
// status when it refused, else what went wrong. Callers redact secrets from it.
func FailureReason(err error) string {
	var httpErr mautrix.HTTPError
	var urlErr *url.Error
	if errors.As(err, &httpErr) || errors.As(err, &urlErr) {
		return "the homeserver did not give the room's history: " + matrix.Reason(err)
	}
	return err.Error()
}
