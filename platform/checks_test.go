package platform_test

import (
	"strings"
	"testing"
	"time"

	"matrixas/diagnostics"
	"matrixas/internal/fakewaldur"
	"matrixas/platform"
)

func checkNamed(t *testing.T, checks []diagnostics.Check, name string) diagnostics.Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %s in %+v", name, checks)
	return diagnostics.Check{}
}

// TestPlatformChecks: platform_reachable says whether the token is accepted (never
// showing it), platform_sync whether the last full reconcile succeeded and is younger
// than twice the interval, platform_events (only with the receiver on) whether events
// arrive.
func TestPlatformChecks(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t, func(o *platform.Options) { o.EventsEnabled = true; o.Now = clock })
	w := e.seedWorld()
	checks := e.sync.Checks(e.ctx)
	if len(checks) != 3 {
		t.Fatalf("%d checks", len(checks))
	}
	for i, name := range diagnostics.PlatformCheckNames {
		if checks[i].Name != name {
			t.Errorf("check %d is %s, want %s", i, checks[i].Name, name)
		}
	}
	if c := checkNamed(t, checks, diagnostics.CheckPlatformReachable); !c.OK || !strings.Contains(c.Detail, "2 customers visible") {
		t.Errorf("reachable: %+v", c)
	}
	if c := checkNamed(t, checks, diagnostics.CheckPlatformSync); c.OK || !strings.Contains(c.Detail, "No full reconcile") {
		t.Errorf("sync before any run: %+v", c)
	}
	if c := checkNamed(t, checks, diagnostics.CheckPlatformEvents); c.OK || c.Hint == "" {
		t.Errorf("events before any: %+v", c)
	}

	e.full()
	mark := len(e.fake.Events())
	e.fake.Revoke(w.u[3].UUID, "PROJECT.MEMBER", w.p1.UUID)
	e.deliver(mark, fakewaldur.JSON)
	checks = e.sync.Checks(e.ctx)
	if c := checkNamed(t, checks, diagnostics.CheckPlatformSync); !c.OK {
		t.Errorf("sync after a run: %+v", c)
	}
	if c := checkNamed(t, checks, diagnostics.CheckPlatformEvents); !c.OK || !strings.Contains(c.Detail, "1 received") {
		t.Errorf("events: %+v", c)
	}

	// Twice the interval later, the last run is too old; so is the last event a day later.
	now = now.Add(2*platform.DefaultInterval + time.Minute)
	if c := checkNamed(t, e.sync.Checks(e.ctx), diagnostics.CheckPlatformSync); c.OK || !strings.Contains(c.Detail, "twice WALDUR_SYNC_INTERVAL") {
		t.Errorf("old run: %+v", c)
	}
	now = now.Add(25 * time.Hour)
	if c := checkNamed(t, e.sync.Checks(e.ctx), diagnostics.CheckPlatformEvents); c.OK {
		t.Errorf("a day without events: %+v", c)
	}

	// A rejected token: the reachable check says so; the failed run makes the sync check fail.
	now = time.Now()
	e.fake.ExpireToken()
	if _, err := e.sync.Sync(e.ctx, true, false); err == nil {
		t.Fatal("the run succeeded with an expired token")
	}
	checks = e.sync.Checks(e.ctx)
	c := checkNamed(t, checks, diagnostics.CheckPlatformReachable)
	if c.OK || !strings.Contains(c.Detail, "Token rejected") || strings.Contains(c.Detail+c.Hint, e.fake.Token) {
		t.Errorf("reachable with an expired token: %+v", c)
	}
	if c := checkNamed(t, checks, diagnostics.CheckPlatformSync); c.OK || !strings.Contains(c.Detail, "token rejected") {
		t.Errorf("sync after a failed run: %+v", c)
	}
}

// TestPlatformEventsCheckOnlyWithTheReceiver: without WALDUR_EVENTS_SECRET there is no
// platform_events check.
func TestPlatformEventsCheckOnlyWithTheReceiver(t *testing.T) {
	e := newEnv(t)
	checks := e.sync.Checks(e.ctx)
	if len(checks) != 2 || checks[0].Name != diagnostics.CheckPlatformReachable || checks[1].Name != diagnostics.CheckPlatformSync {
		t.Errorf("checks %+v", checks)
	}
}
