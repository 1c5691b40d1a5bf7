package web

import (
	"context"
	"time"
)

// pruneLoop deletes old transaction rows, membership events and expired sessions at
// start and then hourly; the transaction counter stays.
func (s *Server) pruneLoop(ctx context.Context) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		n, err := s.store.PruneTransactions(ctx, time.Now().Add(-s.cfg.TransactionRetention))
		if err != nil && ctx.Err() == nil {
			s.log.Error("prune transactions", "error", err)
		} else if n > 0 {
			s.log.Info("pruned old transactions", "rows", n)
		}
		if _, err := s.store.DeleteExpiredSessions(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("prune sessions", "error", err)
		}
		t.Reset(time.Hour)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
