package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/platform"
	"matrixas/settings"
	"matrixas/views"
	"matrixas/waldur"
)

// PlatformSync is the platform sync as the dashboard uses it (*platform.Syncer).
type PlatformSync interface {
	Status(ctx context.Context, recent int) (*platform.Status, error)
	Start(full bool) error
	RegisterHook(ctx context.Context, receiverURL string) (waldur.Hook, bool, error)
}

var _ PlatformSync = (*platform.Syncer)(nil)

// recentOnPage is how many runs and events the Platform page lists.
const recentOnPage = 20

func runView(r *db.SyncRun) views.PlatformRunView {
	k := func(c db.SyncCount) [3]int { return [3]int{c.Created, c.Updated, c.Removed} }
	return views.PlatformRunView{Kind: r.Kind, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, OK: r.OK, Error: r.Error,
		Customers: k(r.Counts.Customers), Users: k(r.Counts.Users), Projects: k(r.Counts.Projects), Roles: k(r.Counts.Roles),
		Requests: r.Requests}
}

// platformStatus builds the status panel.
func (h *Handler) platformStatus(ctx context.Context, st *platform.Status) (views.PlatformStatusView, error) {
	v := views.PlatformStatusView{Now: time.Now(), Running: st.Running, Progress: st.Progress.String(), EventsEnabled: st.EventsEnabled}
	switch last, err := h.Store.LastFinishedSyncRun(ctx, ""); {
	case err == nil:
		rv := runView(last)
		v.Last = &rv
	case !errors.Is(err, db.ErrNotFound):
		return v, err
	}
	if st.LastFullOK != nil {
		v.LastFullOK = st.LastFullOK.StartedAt
	}
	if ev := st.Events; ev != nil {
		v.EventsReceived, v.LastEventAt, v.EventsPending, v.EventsFailed = ev.Received, ev.LastAt, ev.Pending, ev.Failed
	}
	return v, nil
}

// receiverURL is the event receiver's URL as the platform should call it (secret
// included), from PUBLIC_URL, else the appservice URL given at setup; "" when neither
// is known.
func (h *Handler) receiverURL(ctx context.Context) (string, error) {
	base := h.PublicURL
	if base == "" {
		ms, err := h.Settings.Matrix(ctx)
		if err != nil {
			return "", err
		}
		base = ms.Value(settings.AppserviceURL)
	}
	if base == "" || h.EventsSecret == "" {
		return "", nil
	}
	return strings.TrimRight(base, "/") + "/api/waldur/events/" + url.PathEscape(h.EventsSecret) + "/", nil
}

// hideSecret replaces the receiver's secret in a URL (raw or escaped) by a placeholder.
func (h *Handler) hideSecret(s string) string {
	if h.EventsSecret == "" {
		return s
	}
	s = strings.ReplaceAll(s, url.PathEscape(h.EventsSecret), "<secret>")
	return strings.ReplaceAll(s, h.EventsSecret, "<secret>")
}

// platformData builds the whole page.
func (h *Handler) platformData(w http.ResponseWriter, r *http.Request) (views.PlatformData, error) {
	ctx := r.Context()
	d := views.PlatformData{Page: h.page(w, r, "Platform", "platform")}
	if h.Platform == nil {
		return d, nil
	}
	st, err := h.Platform.Status(ctx, recentOnPage)
	if err != nil {
		return d, err
	}
	d.Configured, d.URL, d.TokenFingerprint = true, st.URL, st.TokenFingerprint
	d.Interval, d.Incremental = st.Interval.String(), st.Incremental.String()
	d.EventsEnabled = st.EventsEnabled
	if u, err := h.receiverURL(ctx); err != nil {
		return d, err
	} else if d.EventsEnabled {
		d.ReceiverURL = h.hideSecret(u)
	}
	if d.Status, err = h.platformStatus(ctx, st); err != nil {
		return d, err
	}
	for _, run := range st.Recent {
		d.Runs = append(d.Runs, runView(run))
	}
	for _, e := range st.RecentEvents {
		d.Events = append(d.Events, views.PlatformEventView{ReceivedAt: e.ReceivedAt, Type: e.EventType, State: e.State, Note: e.Error})
	}
	return d, nil
}

// PlatformPage is GET /platform.
func (h *Handler) PlatformPage(w http.ResponseWriter, r *http.Request) {
	d, err := h.platformData(w, r)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.Render(w, r, views.PlatformPage(d))
}

// PlatformStatusFragment is GET /platform/status: the status panel for htmx polling; a
// plain browser is sent to the page.
func (h *Handler) PlatformStatusFragment(w http.ResponseWriter, r *http.Request) {
	if !isHTMX(r) || h.Platform == nil {
		http.Redirect(w, r, "/platform", http.StatusSeeOther)
		return
	}
	st, err := h.Platform.Status(r.Context(), 0)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	v, err := h.platformStatus(r.Context(), st)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	respond.Render(w, r, views.PlatformStatus(v))
}

// PlatformSyncNow is POST /platform/sync ("Sync now"): a full reconcile starts; the
// status panel then polls until it ends.
func (h *Handler) PlatformSyncNow(w http.ResponseWriter, r *http.Request) {
	if h.Platform == nil {
		h.uiFail(w, r, http.StatusBadRequest, "No platform is configured: set WALDUR_URL and WALDUR_TOKEN.")
		return
	}
	err := h.Platform.Start(true)
	if errors.Is(err, platform.ErrRunning) {
		h.uiFail(w, r, http.StatusConflict, "A platform sync is already running: wait for it to finish.")
		return
	}
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	h.Log.Info("platform sync started", "by", auth.StaffFrom(r.Context()).Username)
	const msg = "Full sync started: the status below follows it."
	if !isHTMX(r) {
		h.redirectFlash(w, r, "/platform", views.FlashSuccess, msg)
		return
	}
	st, err := h.Platform.Status(r.Context(), 0)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	v, err := h.platformStatus(r.Context(), st)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	v.Running = true // started: poll even if it finished before this answer
	h.renderFragments(w, r, views.PlatformStatus(v), views.FlashesOOB([]views.Flash{{Kind: views.FlashSuccess, Message: msg}}))
}

// PlatformRegisterHook is POST /platform/hook ("Register the event hook"): creates the
// web hook on the platform that posts the events the sync handles to this server's
// receiver, as JSON, and shows what was registered (the secret hidden). A hook already
// registered there is shown instead of a second one.
func (h *Handler) PlatformRegisterHook(w http.ResponseWriter, r *http.Request) {
	if h.Platform == nil || h.EventsSecret == "" {
		h.uiFail(w, r, http.StatusBadRequest, "The event receiver is off: set WALDUR_URL and WALDUR_EVENTS_SECRET.")
		return
	}
	ctx := r.Context()
	var hookView *views.PlatformHookView
	errMsg := ""
	dest, err := h.receiverURL(ctx)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	hook, existing, err := h.Platform.RegisterHook(ctx, dest)
	switch {
	case errors.Is(err, platform.ErrNoReceiverURL):
		errMsg = "This server's public URL is not known: set PUBLIC_URL (the platform must reach /api/waldur/events/ there), then try again."
	case err != nil:
		errMsg = "The platform did not register the hook: " + h.hideSecret(platform.Describe(err))
	default:
		hookView = &views.PlatformHookView{UUID: hook.UUID, DestinationURL: h.hideSecret(hook.DestinationURL),
			EventTypes: hook.EventTypes, ContentType: hook.ContentType, Existing: existing}
		h.Log.Info("platform event hook registered", "by", auth.StaffFrom(ctx).Username, "hook", hook.UUID, "existing", existing)
	}
	if isHTMX(r) {
		respond.Render(w, r, views.PlatformHook(hookView, errMsg))
		return
	}
	d, err := h.platformData(w, r)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	d.Hook, d.HookError = hookView, errMsg
	respond.Render(w, r, views.PlatformPage(d))
}
