package platform

import (
	"context"
	"errors"
	"time"

	"matrixas/db"
)

// Run is the background job: a full reconcile at start when the last successful one is
// older than the interval, then every interval; incremental runs in between; the events
// worker; pruning of old runs and events. It returns when ctx is cancelled, after the
// runs it started have stopped.
func (s *Syncer) Run(ctx context.Context) {
	s.mu.Lock()
	s.base = ctx
	s.mu.Unlock()
	defer s.runs.Wait()
	if n, err := s.store.AbandonSyncRuns(ctx, s.opts.Now()); err != nil && ctx.Err() == nil {
		s.log.Error("platform sync: close interrupted runs", "error", err.Error())
	} else if n > 0 {
		s.log.Warn("platform sync: runs interrupted by the last stop", "runs", n)
	}
	events := make(chan struct{})
	go func() {
		defer close(events)
		s.eventsLoop(ctx)
	}()
	defer func() { <-events }()

	nextFull := s.opts.Now()
	if last, err := s.store.LastOKSyncRun(ctx, db.SyncFull); err == nil {
		if at := last.StartedAt.Add(s.opts.Interval); at.After(nextFull) {
			nextFull = at
		}
	} else if !errors.Is(err, db.ErrNotFound) && ctx.Err() == nil {
		s.log.Error("platform sync: read the last run", "error", err.Error())
	}
	nextIncremental := s.opts.Now().Add(s.opts.IncrementalPeriod)
	nextPrune := s.opts.Now().Add(time.Minute)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := s.opts.Now()
		switch {
		case !now.Before(nextFull):
			if s.Start(true) == nil {
				nextFull = now.Add(s.opts.Interval)
				nextIncremental = now.Add(s.opts.IncrementalPeriod)
			} else {
				nextFull = now.Add(s.opts.IncrementalPeriod) // busy: try again soon
			}
			continue
		case !now.Before(nextIncremental):
			_ = s.Start(false) // skipped while another run is under way
			nextIncremental = now.Add(s.opts.IncrementalPeriod)
			continue
		case !now.Before(nextPrune):
			s.prune(ctx)
			nextPrune = now.Add(24 * time.Hour)
			continue
		}
		wait := min(nextFull.Sub(now), nextIncremental.Sub(now), nextPrune.Sub(now))
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case kind := <-s.kick:
			if kind == db.SyncFull {
				nextFull = s.opts.Now()
			} else {
				nextIncremental = s.opts.Now()
			}
		}
	}
}

// requestRun asks the loop for a run soon (an event that named nothing asks for an
// incremental one); asking again before it starts changes nothing.
func (s *Syncer) requestRun(full bool) {
	select {
	case s.kick <- kindName(full):
	default:
	}
}

// Retention of finished runs and applied events.
const (
	runRetention   = 30 * 24 * time.Hour
	eventRetention = 7 * 24 * time.Hour
)

func (s *Syncer) prune(ctx context.Context) {
	now := s.opts.Now()
	if _, err := s.store.PruneSyncRuns(ctx, now.Add(-runRetention)); err != nil && ctx.Err() == nil {
		s.log.Error("platform sync: prune runs", "error", err.Error())
	}
	if _, err := s.store.PrunePlatformEvents(ctx, now.Add(-eventRetention)); err != nil && ctx.Err() == nil {
		s.log.Error("platform sync: prune events", "error", err.Error())
	}
}
