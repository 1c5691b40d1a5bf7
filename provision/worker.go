// Package provision is the provisioning worker: it makes the homeserver match the
// database. Rooms are created, synced, disabled; users are registered. The database is
// the queue (rooms in creating or disabling, rooms whose members are dirty, profiles not
// provisioned, each with its attempts and next attempt time), so a crash or a restart
// loses nothing: the worker picks up where the rows say.
package provision

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"matrixas/db"
	"matrixas/matrix"
)

// Options tune the worker; zero values take the defaults.
type Options struct {
	// Concurrency is how many rooms and users are worked on at once (default 2: the
	// homeserver's CPU bounds room creation; in six benchmark sweeps on Dendrite, 8 at
	// once was 12-81% slower than 2 in five, and level in the sixth).
	Concurrency int
	// MaxAttempts is how many failures in a row send a room to state error (default 8).
	MaxAttempts int
	// BaseBackoff is the delay after a first failure (default 5s); it doubles with each
	// further failure, with jitter, up to MaxBackoff (default 10m).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// Interval is how often the queue is scanned without a Wake (default 30s).
	Interval time.Duration
	// JobTimeout bounds one room's or user's work (default 5m).
	JobTimeout time.Duration
	// CreateSettle is how long a createRoom whose answer never came (the process died,
	// the request timed out) may still be running on the homeserver: the room is not
	// looked for, nor created again, before that (default 20s, twice the request timeout).
	CreateSettle time.Duration
	// AutoCreateRooms queues a room for every project that has none, at start.
	AutoCreateRooms bool
	// ExportBeforeArchive makes the disable path export the room's history (an
	// on_deletion export, which the export job runs) and archive the room only once that
	// export completed (MATRIX_HISTORY_EXPORT_ENABLED). Off: rooms are archived without.
	ExportBeforeArchive bool
	// ExportTimeout bounds the wait for that export (default 10m); an export that fails
	// or takes longer sends the room to state error with the reason.
	ExportTimeout time.Duration
	// ExportQueued is called when the disable path has queued an export, to wake the
	// export job; nil = nobody to wake.
	ExportQueued func()
	// RemoveExportFiles deletes the files of the export with the given uuid (a disable
	// with delete_history deletes the room's exports, files first); nil = exports have
	// no files to remove.
	RemoveExportFiles func(exportUUID string) error
	// DisableWait is how soon a disable waiting for its notice or its export looks again
	// (default 1s).
	DisableWait time.Duration
	// Recheck is how soon a member sync that changed who is in the room is followed by a
	// look at the room's state (default 3s).
	Recheck time.Duration
	// HTTPClient calls the homeserver (default: 3s connect, 10s per request).
	HTTPClient *http.Client
	// Observer is told the outcome of every job (metrics); nil = nobody.
	Observer Observer
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 5 * time.Minute
	}
	if o.CreateSettle <= 0 {
		o.CreateSettle = 20 * time.Second
	}
	if o.ExportTimeout <= 0 {
		o.ExportTimeout = 10 * time.Minute
	}
	if o.DisableWait <= 0 {
		o.DisableWait = time.Second
	}
	if o.Recheck <= 0 {
		o.Recheck = 3 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = matrix.HTTPClient(3*time.Second, 10*time.Second)
	}
}

// Worker reconciles the homeserver with the database. Run it once; Wake it after writes.
type Worker struct {
	store    *db.Store
	settings *db.Settings
	log      *slog.Logger
	opts     Options
	wake     chan struct{}

	mu       sync.Mutex
	inflight map[string]bool // "room:<id>" and "user:<id>" being worked on
	// userLocks serialise the work on one user's account (userLock), striped by user id.
	userLocks [64]sync.Mutex
	botFor    string    // the homeserver URL and token the bot was registered with
	botKey    string    // the settings the failures below are counted for
	botFails  int       // failed bot registrations in a row
	botNext   time.Time // no new bot registration before this

	// The catch-up that gives profiles to users who have none scans every user, so it runs
	// when the rules change (setup named the domain) and otherwise once per Interval.
	profilesFor  db.ProfileRules
	profilesDone time.Time
}

// New returns a worker over store, reading the homeserver settings from settings on
// every cycle (they change at setup and reprovision).
func New(store *db.Store, settings *db.Settings, log *slog.Logger, opts Options) *Worker {
	opts.defaults()
	return &Worker{
		store: store, settings: settings, log: log.With("component", "provision"), opts: opts,
		wake: make(chan struct{}, 1), inflight: map[string]bool{},
	}
}

// Wake makes the worker scan the queue now. It never blocks: wakes coalesce.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run works the queue until ctx is cancelled, then waits for the jobs under way (which
// see the cancellation) to return.
func (w *Worker) Run(ctx context.Context) {
	if n, err := w.store.RecoverClaims(ctx); err != nil {
		w.log.Error("recover interrupted member syncs", "error", err)
	} else if n > 0 {
		w.log.Info("resuming interrupted member syncs", "rooms", n)
	}
	if w.opts.AutoCreateRooms {
		if n, err := w.store.CreateMissingRooms(ctx); err != nil {
			w.log.Error("queue rooms for projects without one", "error", err)
		} else if n > 0 {
			w.log.Info("queued rooms for projects without one", "rooms", n)
		}
	}
	sem := make(chan struct{}, w.opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		wait := w.cycle(ctx, sem, &wg)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// ready reports whether the settings allow talking to the homeserver at all.
func ready(ms *db.MatrixSettings) bool {
	return ms.Enabled && ms.HomeserverURL != "" && ms.HomeserverDomain != "" && ms.ASToken != ""
}

// cycle starts the due jobs that fit in the free slots and returns how long to sleep
// before the next scan (finished jobs wake the loop earlier).
func (w *Worker) cycle(ctx context.Context, sem chan struct{}, wg *sync.WaitGroup) time.Duration {
	ms, err := w.settings.Matrix(ctx)
	if err != nil {
		w.logErr(ctx, "read settings", err)
		return w.opts.Interval
	}
	if !ready(ms) {
		return w.opts.Interval
	}
	w.ensureBot(ctx, ms)
	w.ensureProfiles(ctx, ms.ProfileRules())
	w.mu.Lock()
	busy := len(w.inflight)
	w.mu.Unlock()
	limit := 2*w.opts.Concurrency + busy
	at := time.Now().Unix()
	rooms, err := w.store.DueRooms(ctx, at, limit)
	if err != nil {
		w.logErr(ctx, "read room queue", err)
		return w.opts.Interval
	}
	users, err := w.store.DueProfiles(ctx, at, limit)
	if err != nil {
		w.logErr(ctx, "read user queue", err)
		return w.opts.Interval
	}
	leaving, err := w.store.DueDeactivations(ctx, at, limit)
	if err != nil {
		w.logErr(ctx, "read deactivation queue", err)
		return w.opts.Interval
	}
	full := false
	start := func(key string, job func(context.Context)) {
		if full || !w.claim(key) {
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			w.release(key)
			full = true
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Wake() // a freed slot may take the next item
			defer func() { <-sem }()
			defer w.release(key)
			jctx, cancel := context.WithTimeout(ctx, w.opts.JobTimeout)
			defer cancel()
			job(jctx)
		}()
	}
	for _, id := range rooms {
		start("room:"+strconv.FormatInt(id, 10), func(ctx context.Context) { w.roomJob(ctx, ms, id) })
	}
	for _, p := range users {
		start("user:"+strconv.FormatInt(p.UserID, 10), func(ctx context.Context) { w.profileJob(ctx, ms, p) })
	}
	for _, p := range leaving {
		start("user:"+strconv.FormatInt(p.UserID, 10), func(ctx context.Context) { w.deactivationJob(ctx, ms, p) })
	}
	if full || len(rooms) > 0 || len(users) > 0 || len(leaving) > 0 {
		// Work is due or under way: the jobs wake the loop when they finish.
		return w.opts.Interval
	}
	next, ok, err := w.store.NextDue(ctx)
	if err != nil {
		w.logErr(ctx, "read queue", err)
		return w.opts.Interval
	}
	if !ok {
		return w.opts.Interval
	}
	return min(w.opts.Interval, max(time.Until(time.Unix(next, 0)), 100*time.Millisecond))
}

func (w *Worker) claim(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inflight[key] {
		return false
	}
	w.inflight[key] = true
	return true
}

func (w *Worker) release(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.inflight, key)
}

// ensureBot registers the bot once per homeserver and token (setup does it too, best
// effort; a reprovision onto a new homeserver needs it again).
func (w *Worker) ensureBot(ctx context.Context, ms *db.MatrixSettings) {
	key := ms.HomeserverURL + "\x00" + ms.ASToken
	w.mu.Lock()
	done := w.botFor == key
	wait := w.botKey == key && time.Now().Before(w.botNext)
	w.mu.Unlock()
	if done || wait {
		return
	}
	status := matrix.ProvisionBot(ctx, ms, w.opts.HTTPClient)
	if status != db.BotOK {
		if ctx.Err() == nil {
			// Back off like a room would: a homeserver that does not know the tokens yet
			// (not restarted) is asked again later, not on every cycle.
			w.mu.Lock()
			if w.botKey != key {
				w.botKey, w.botFails = key, 0
			}
			w.botFails++
			w.botNext = time.Now().Add(w.backoff(w.botFails))
			w.mu.Unlock()
			w.log.Warn("bot not provisioned yet", "bot", ms.BotUserID(), "status", status)
		}
		return
	}
	w.mu.Lock()
	w.botFor, w.botFails = key, 0
	w.mu.Unlock()
	w.log.Info("bot provisioned", "bot", ms.BotUserID(), "homeserver", ms.HomeserverURL)
}

// ensureProfiles makes the profiles of platform users who have none (users created
// before the domain was known, or by other paths than the directory API).
func (w *Worker) ensureProfiles(ctx context.Context, rules db.ProfileRules) {
	if rules == w.profilesFor && time.Since(w.profilesDone) < w.opts.Interval {
		return
	}
	n, err := w.store.EnsureProfiles(ctx, rules)
	if err != nil {
		w.logErr(ctx, "create missing profiles", err)
		return
	}
	if n > 0 {
		// More may remain (it works in batches): look again on the next cycle.
		w.log.Info("created missing user profiles", "users", n)
		return
	}
	w.profilesFor, w.profilesDone = rules, time.Now()
}

// backoff is the delay before the next attempt after the given number of failures:
// exponential from BaseBackoff, capped at MaxBackoff, with jitter in its upper half so
// rooms that failed together do not retry together.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.opts.BaseBackoff
	for i := 1; i < attempts && d < w.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.opts.MaxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// logErr logs a failure unless it is only the worker shutting down.
func (w *Worker) logErr(ctx context.Context, what string, err error) {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return
	}
	w.log.Error(what, "error", err)
}
