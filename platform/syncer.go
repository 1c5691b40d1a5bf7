package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"matrixas/bot"
	"matrixas/db"
	"matrixas/waldur"
)

// Defaults of Options.
const (
	DefaultInterval     = 15 * time.Minute
	DefaultSafetyMargin = 5 * time.Minute
	// MaxIncrementalPeriod is how often incremental runs come at most: every minute, or
	// twice per interval when the interval is shorter than two minutes.
	MaxIncrementalPeriod = time.Minute
)

// ErrRunning refuses a run while another one is under way.
var ErrRunning = errors.New("a platform sync is already running")

// Options tune a Syncer; zero values take the defaults.
type Options struct {
	// Interval is the full reconcile's period (WALDUR_SYNC_INTERVAL).
	Interval time.Duration
	// IncrementalPeriod is the incremental runs' period; 0 = min(MaxIncrementalPeriod,
	// Interval/2).
	IncrementalPeriod time.Duration
	// SafetyMargin is subtracted from the last successful run's start to make an
	// incremental run's "modified since": the platform's clock and ours differ, and a
	// change committed during the last listing may carry an earlier time.
	SafetyMargin time.Duration
	// AutoCreateRooms gives every synced project a room (AUTO_CREATE_ROOMS).
	AutoCreateRooms bool
	// EventsEnabled says the receiver is on (WALDUR_EVENTS_SECRET): diagnostics then
	// check that events arrive.
	EventsEnabled bool
	// EventsStaleAfter is how long without an event the platform_events check
	// tolerates (default 24 h).
	EventsStaleAfter time.Duration
	// Describe keeps the names of what differs, for Diff.Lines (matrixas sync prints
	// them); without it the lines name uuids only and a large run holds less memory.
	Describe bool
	// TokenFingerprint is how the token is shown (waldur.Fingerprint): never the token.
	TokenFingerprint string
	// Probe is the client the diagnostics use (short timeouts, no retries); nil = the
	// sync's client.
	Probe *waldur.Client
	// Wake nudges the provisioning worker after the directory changed; nil-safe.
	Wake func()
	// WakeSender nudges the bot's sender after notifications were queued; nil-safe.
	WakeSender func()
	// Rules returns how Matrix user ids are derived (the homeserver domain and the
	// bot's localpart, from the runtime settings).
	Rules func(ctx context.Context) (db.ProfileRules, error)
	Log   *slog.Logger
	Now   func() time.Time
}

// Syncer mirrors one platform into the store. Its methods are safe for concurrent use.
type Syncer struct {
	store  *db.Store
	client *waldur.Client
	opts   Options
	log    *slog.Logger

	running  atomic.Bool // a run (full or incremental) is under way
	applyMu  sync.Mutex  // one writer of the directory at a time: a run's apply, an event
	progress *progress

	mu     sync.Mutex
	base   context.Context // the context runs started on demand use (Run's)
	runs   sync.WaitGroup
	kick   chan string // runs asked for by the loop's neighbours (an event without context)
	evKick chan struct{}
}

// New returns a Syncer for the platform client talks to.
func New(store *db.Store, client *waldur.Client, opts Options) *Syncer {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.IncrementalPeriod <= 0 {
		opts.IncrementalPeriod = min(MaxIncrementalPeriod, opts.Interval/2)
	}
	if opts.SafetyMargin <= 0 {
		opts.SafetyMargin = DefaultSafetyMargin
	}
	if opts.EventsStaleAfter <= 0 {
		opts.EventsStaleAfter = 24 * time.Hour
	}
	if opts.Probe == nil {
		opts.Probe = client
	}
	if opts.Rules == nil {
		opts.Rules = func(context.Context) (db.ProfileRules, error) { return db.ProfileRules{}, nil }
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Syncer{store: store, client: client, opts: opts, log: opts.Log, progress: &progress{},
		kick: make(chan string, 1), evKick: make(chan struct{}, 1)}
}

// Client is the platform client the sync uses (the bot reads the platform through it).
func (s *Syncer) Client() *waldur.Client { return s.client }

// Interval is the full reconcile's period.
func (s *Syncer) Interval() time.Duration { return s.opts.Interval }

// IncrementalPeriod is the incremental runs' period.
func (s *Syncer) IncrementalPeriod() time.Duration { return s.opts.IncrementalPeriod }

// Result is what one run found and did.
type Result struct {
	RunID    int64 // 0 for a dry run (not recorded)
	Kind     string
	Started  time.Time
	Finished time.Time
	// Diff is what differed; a dry run applies none of it.
	Diff *Diff
	// Counts is what was applied (a dry run: what would be).
	Counts   db.SyncCounts
	Requests int64
	// Pending are removals that could not be done yet (a project whose room refuses to
	// go), retried by the next run.
	Pending []string
}

// Sync runs one sync now and waits for it: a full reconcile (full) or an incremental
// run, applying the differences unless dryRun. It is ErrRunning while another run is
// under way. A run that fails changes nothing and returns the reason; a 401 is
// waldur.ErrTokenRejected, described as "token rejected".
func (s *Syncer) Sync(ctx context.Context, full, dryRun bool) (*Result, error) {
	if !s.running.CompareAndSwap(false, true) {
		return nil, ErrRunning
	}
	defer s.running.Store(false)
	return s.run(ctx, full, dryRun)
}

// Start begins a run in the background (the API's and the dashboard's "Sync now"):
// ErrRunning while another is under way. The run stops with the server.
func (s *Syncer) Start(full bool) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	s.mu.Lock()
	ctx := s.base
	s.runs.Add(1)
	s.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	go func() {
		defer s.runs.Done()
		defer s.running.Store(false)
		if _, err := s.run(ctx, full, false); err != nil && ctx.Err() == nil {
			s.log.Warn("platform sync failed", "error", err.Error())
		}
	}()
	return nil
}

// Running reports whether a run is under way.
func (s *Syncer) Running() bool { return s.running.Load() }

// Describe words a failure of the platform for people: a rejected token says so first.
func Describe(err error) string {
	switch {
	case errors.Is(err, waldur.ErrTokenRejected):
		return "token rejected: " + err.Error() + " — give WALDUR_TOKEN a valid token of a staff or support user"
	case errors.Is(err, waldur.ErrUnavailable):
		return "platform unavailable: " + err.Error()
	case errors.Is(err, waldur.ErrRateLimited):
		return "rate limited by the platform: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out: " + err.Error()
	}
	return err.Error()
}

// run is one run; the caller holds s.running.
func (s *Syncer) run(ctx context.Context, full, dryRun bool) (res *Result, err error) {
	res = &Result{Kind: kindName(full), Started: s.opts.Now()}
	var since time.Time
	if !full {
		last, err := s.store.LastOKSyncRun(ctx, "")
		switch {
		case errors.Is(err, db.ErrNotFound):
			full = true // nothing to be incremental from
			res.Kind = db.SyncFull
		case err != nil:
			return nil, err
		default:
			since = last.StartedAt.Add(-s.opts.SafetyMargin)
		}
	}
	s.progress.start(res.Kind, res.Started)
	defer s.progress.stop()
	requests := s.client.Stats().Requests
	if !dryRun {
		if res.RunID, err = s.store.StartSyncRun(ctx, res.Kind, res.Started); err != nil {
			return nil, err
		}
		defer func() {
			res.Finished = s.opts.Now()
			res.Requests = s.client.Stats().Requests - requests
			msg := ""
			if err != nil {
				msg = Describe(err)
			}
			if ferr := s.store.FinishSyncRun(context.WithoutCancel(ctx), res.RunID, res.Kind, res.Finished, msg, res.Counts, res.Requests); ferr != nil && err == nil {
				err = ferr
			}
			level := slog.LevelInfo
			if err != nil {
				level = slog.LevelWarn
			}
			s.log.Log(ctx, level, "platform sync", "kind", res.Kind, "ok", err == nil, "error", msg,
				"changes", res.Counts.Total(), "requests", res.Requests, "duration", res.Finished.Sub(res.Started).Round(time.Millisecond).String())
		}()
	}
	l, listedFull, err := s.list(ctx, full, since)
	if err != nil {
		return res, err
	}
	if listedFull && res.Kind != db.SyncFull {
		res.Kind = db.SyncFull // the incremental run turned into a full one
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.progress.phase("comparing")
	sn, err := s.readSnapshot(ctx, l)
	if err != nil {
		return res, err
	}
	res.Diff = compare(l, sn, s.opts.Describe)
	l, sn = nil, nil // the diff keeps what it needs; let the rest go before applying
	if dryRun {
		res.Counts = res.Diff.Counts()
		return res, nil
	}
	res.Counts, res.Pending, err = s.apply(ctx, res.Diff)
	s.wake(res.Counts.Total() > 0)
	return res, err
}

func kindName(full bool) string {
	if full {
		return db.SyncFull
	}
	return db.SyncIncremental
}

// wake nudges the worker and the sender after the directory changed.
func (s *Syncer) wake(changed bool) {
	if !changed {
		return
	}
	if s.opts.Wake != nil {
		s.opts.Wake()
	}
	if s.opts.WakeSender != nil {
		s.opts.WakeSender()
	}
}

// apply writes a diff: one store transaction per kind of change, in an order that keeps
// every reference valid (customers before the projects and owners that name them),
// removals last. Project removals go one by one through the store function behind
// DELETE /api/projects/{uuid}/, which disables their rooms.
func (s *Syncer) apply(ctx context.Context, d *Diff) (db.SyncCounts, []string, error) {
	var c db.SyncCounts
	var pending []string
	rules, err := s.opts.Rules(ctx)
	if err != nil {
		return c, nil, err
	}
	s.progress.phase("applying customers")
	if c.Customers, err = s.store.SyncPutCustomers(ctx, append(d.NewCustomers, d.ChangedCustomers...)); err != nil {
		return c, nil, err
	}
	s.progress.phase("applying users")
	var skipped []db.SkippedUser
	if c.Users, skipped, err = s.store.SyncPutUsers(ctx, append(d.NewUsers, d.ChangedUsers...), rules); err != nil {
		return c, nil, err
	}
	for _, u := range skipped {
		d.SkippedUsers = append(d.SkippedUsers, u)
		s.log.Warn("platform sync: user skipped", "uuid", u.UUID, "username", u.Username, "reason", u.Reason)
	}
	s.progress.phase("applying projects")
	if c.Projects, err = s.store.SyncPutProjects(ctx, append(d.NewProjects, d.ChangedProjects...), s.opts.AutoCreateRooms); err != nil {
		return c, nil, err
	}
	s.progress.phase("applying roles")
	if c.Roles, _, err = s.store.SyncRoles(ctx, d.RoleChanges(), rules); err != nil {
		return c, nil, err
	}
	s.progress.phase("applying removals")
	for _, p := range d.RemovedProjects {
		gone, err := s.removeProject(ctx, p)
		if err != nil {
			return c, pending, err
		}
		if gone {
			c.Projects.Removed++
		} else {
			pending = append(pending, "project "+p)
		}
	}
	if c.Customers.Removed, err = s.store.SyncRemoveCustomers(ctx, d.RemovedCustomers); err != nil {
		return c, pending, err
	}
	if c.Users.Removed, err = s.store.SyncDeactivateUsers(ctx, d.RemovedUsers, rules); err != nil {
		return c, pending, err
	}
	return c, pending, nil
}

// removeProject ends a project removed on the platform through the store function
// behind DELETE /api/projects/{uuid}/: a project whose room is live is kept until its
// room, disabled with the project termination notice, is archived, and then goes with it
// (the worker does that); one with nothing on the homeserver goes at once. Either way it
// is handled (gone); asking again while it is pending changes nothing.
func (s *Syncer) removeProject(ctx context.Context, uuid string) (gone bool, err error) {
	_, err = s.store.DeleteProject(ctx, uuid, bot.RoomDeactivated(true))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, db.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("remove project %s: %w", uuid, err)
}
