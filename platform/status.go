package platform

import (
	"context"
	"errors"
	"time"

	"matrixas/db"
)

// Status is what the Platform page and GET /api/admin/platform-sync/ show.
type Status struct {
	URL              string
	TokenFingerprint string
	Interval         time.Duration
	Incremental      time.Duration
	Running          bool
	Progress         Progress
	// Last is the newest run, running or finished; nil before the first.
	Last *db.SyncRun
	// LastFullOK is the newest successful full reconcile; nil when none.
	LastFullOK *db.SyncRun
	// Recent are the newest runs worth showing (see db.RecentSyncRuns).
	Recent        []*db.SyncRun
	EventsEnabled bool
	Events        *db.PlatformEventStats
	RecentEvents  []*db.PlatformEvent
}

// Status reads the sync's state; recent bounds the runs and events listed (0: none).
func (s *Syncer) Status(ctx context.Context, recent int) (*Status, error) {
	st := &Status{
		URL:              s.client.BaseURL(),
		TokenFingerprint: s.opts.TokenFingerprint,
		Interval:         s.opts.Interval,
		Incremental:      s.opts.IncrementalPeriod,
		Running:          s.Running(),
		Progress:         s.progress.snapshot(),
		EventsEnabled:    s.opts.EventsEnabled,
	}
	var err error
	if st.Last, err = s.store.LastSyncRun(ctx, ""); err != nil && !errors.Is(err, db.ErrNotFound) {
		return nil, err
	}
	if st.LastFullOK, err = s.store.LastOKSyncRun(ctx, db.SyncFull); err != nil && !errors.Is(err, db.ErrNotFound) {
		return nil, err
	}
	if st.Events, err = s.store.PlatformEventStats(ctx); err != nil {
		return nil, err
	}
	if recent > 0 {
		if st.Recent, err = s.store.RecentSyncRuns(ctx, recent); err != nil {
			return nil, err
		}
		if st.RecentEvents, err = s.store.RecentPlatformEvents(ctx, recent); err != nil {
			return nil, err
		}
	}
	return st, nil
}
