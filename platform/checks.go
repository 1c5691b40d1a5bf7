package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"matrixas/diagnostics"
	"matrixas/waldur"
)

var _ diagnostics.PlatformChecker = (*Syncer)(nil)

// Checks are the platform's diagnostics: platform_reachable (the platform answers and
// accepts the token), platform_sync (the last full reconcile succeeded and is younger
// than twice the interval) and, when the receiver is on, platform_events (events arrive).
func (s *Syncer) Checks(ctx context.Context) []diagnostics.Check {
	out := []diagnostics.Check{s.checkReachable(ctx), s.checkSync(ctx)}
	if s.opts.EventsEnabled {
		out = append(out, s.checkEvents(ctx))
	}
	return out
}

func pass(name, label, detail string) diagnostics.Check {
	return diagnostics.Check{Name: name, Label: label, OK: true, Detail: detail}
}

func fail(name, label, detail, hint string) diagnostics.Check {
	return diagnostics.Check{Name: name, Label: label, Detail: detail, Hint: hint}
}

func (s *Syncer) checkReachable(ctx context.Context) diagnostics.Check {
	const name, label = diagnostics.CheckPlatformReachable, "Platform reachable and token accepted"
	url := s.opts.Probe.BaseURL()
	n, err := s.opts.Probe.Ping(ctx)
	var ne net.Error
	switch {
	case err == nil:
		return pass(name, label, fmt.Sprintf("OK — %s accepted the token (%s); %d customers visible", url, s.opts.TokenFingerprint, n))
	case errors.Is(err, waldur.ErrTokenRejected):
		return fail(name, label, "Token rejected by "+url+" ("+s.opts.TokenFingerprint+"): "+err.Error(),
			"Give WALDUR_TOKEN (or WALDUR_TOKEN_FILE) the API token of a staff or support user of the platform; a token may also have expired (token_lifetime).")
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fail(name, label, "Timed out — "+url+" did not answer in time", "Check WALDUR_URL and that this server can reach the platform.")
	}
	return fail(name, label, "Cannot use "+url+": "+err.Error(), "Check WALDUR_URL: the platform's base URL, e.g. https://waldur.example.org.")
}

func (s *Syncer) checkSync(ctx context.Context) diagnostics.Check {
	const name, label = diagnostics.CheckPlatformSync, "Platform sync (full reconcile)"
	now := s.opts.Now()
	last, err := s.store.LastFinishedSyncRun(ctx, "full")
	if err != nil {
		detail := "No full reconcile has run yet"
		if s.Running() {
			detail = "The first full reconcile is running"
		}
		return fail(name, label, detail, "It runs at start and every WALDUR_SYNC_INTERVAL; the Platform page shows its progress and has Sync now.")
	}
	max := 2 * s.opts.Interval
	switch {
	case !last.OK:
		return fail(name, label, fmt.Sprintf("The last full reconcile failed %s ago: %s", ago(now.Sub(last.FinishedAt)), last.Error),
			"Nothing was changed by the failed run; the Platform page shows its error. Fix the cause and press Sync now.")
	case now.Sub(last.StartedAt) > max:
		return fail(name, label, fmt.Sprintf("The last full reconcile is %s old (more than twice WALDUR_SYNC_INTERVAL, %s)", ago(now.Sub(last.StartedAt)), s.opts.Interval),
			"Is the server's sync job stuck? Press Sync now on the Platform page and look at the logs.")
	}
	c := last.Counts
	return pass(name, label, fmt.Sprintf("OK — %s ago: %d created, %d updated, %d removed, %d requests",
		ago(now.Sub(last.StartedAt)), c.Customers.Created+c.Users.Created+c.Projects.Created+c.Roles.Created,
		c.Customers.Updated+c.Users.Updated+c.Projects.Updated+c.Roles.Updated,
		c.Customers.Removed+c.Users.Removed+c.Projects.Removed+c.Roles.Removed, last.Requests))
}

func (s *Syncer) checkEvents(ctx context.Context) diagnostics.Check {
	const name, label = diagnostics.CheckPlatformEvents, "Platform events arriving"
	st, err := s.store.PlatformEventStats(ctx)
	if err != nil {
		return fail(name, label, "Cannot read the event counters: "+err.Error(), "")
	}
	const hint = "Register the event hook on the Platform page (it must reach this server's /api/waldur/events/<secret>/ from the platform)."
	switch {
	case st.Received == 0:
		return fail(name, label, "No event received yet", hint)
	case s.opts.Now().Sub(st.LastAt) > s.opts.EventsStaleAfter:
		return fail(name, label, fmt.Sprintf("%d received; the last %s ago", st.Received, ago(s.opts.Now().Sub(st.LastAt))),
			"Is the platform's web hook still registered and active? "+hint)
	}
	detail := fmt.Sprintf("OK — %d received, the last %s ago; %d waiting", st.Received, ago(s.opts.Now().Sub(st.LastAt)), st.Pending)
	if st.Failed > 0 {
		detail += fmt.Sprintf("; %d failed (the full reconcile repairs them)", st.Failed)
	}
	return pass(name, label, detail)
}

// ago words a duration for people: "12 s", "5 min", "3 h", "2 days".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
