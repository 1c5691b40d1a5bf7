package testserver

import (
	"context"
	"errors"
	"testing"
	"time"

	"matrixas/db"
	"matrixas/internal/fakewaldur"
)

// PlatformEnv is the configuration that connects a server to a fake platform, with the
// event receiver on (secret "" leaves it off); merge it into Options.Env.
func PlatformEnv(f *fakewaldur.Server, secret string) map[string]string {
	env := map[string]string{"WALDUR_URL": f.URL, "WALDUR_TOKEN": f.Token}
	if secret != "" {
		env["WALDUR_EVENTS_SECRET"] = secret
	}
	return env
}

// WaitSynced waits until the platform sync has finished a run newer than after (its
// first full run, when after is zero) and nothing runs, and returns that run. It fails
// the test after 30 s.
func (s *Server) WaitSynced(t testing.TB, after int64) *db.SyncRun {
	t.Helper()
	sync := s.Web.Platform()
	if sync == nil {
		t.Fatal("testserver: no platform is configured")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		run, err := s.Store.LastFinishedSyncRun(context.Background(), "")
		switch {
		case err == nil && run.ID > after && !sync.Running():
			return run
		case err != nil && !errors.Is(err, db.ErrNotFound):
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("testserver: the platform sync did not finish a run within 30 s")
	return nil
}
