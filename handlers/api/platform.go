package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/platform"
	"matrixas/waldur"
)

// PlatformSync is the platform sync as the API uses it (*platform.Syncer); nil when no
// platform is configured.
type PlatformSync interface {
	Status(ctx context.Context, recent int) (*platform.Status, error)
	Start(full bool) error
	Receive(ctx context.Context, contentType string, body []byte) error
}

var _ PlatformSync = (*platform.Syncer)(nil)

// SyncCountJSON is what a run did to one kind of row.
type SyncCountJSON struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
	Removed int `json:"removed"`
}

// SyncCountsJSON are a run's counts per kind.
type SyncCountsJSON struct {
	Customers SyncCountJSON `json:"customers"`
	Users     SyncCountJSON `json:"users"`
	Projects  SyncCountJSON `json:"projects"`
	Roles     SyncCountJSON `json:"roles"`
}

func syncCountsJSON(c db.SyncCounts) SyncCountsJSON {
	k := func(x db.SyncCount) SyncCountJSON { return SyncCountJSON(x) }
	return SyncCountsJSON{Customers: k(c.Customers), Users: k(c.Users), Projects: k(c.Projects), Roles: k(c.Roles)}
}

// PlatformSyncJSON is GET /api/admin/platform-sync/. The last_* fields and counts
// describe the newest finished run (full or incremental), last_started_at the newest
// run started (the one running, if any); all null before the first run.
type PlatformSyncJSON struct {
	Configured     bool           `json:"configured"`
	Running        bool           `json:"running"`
	RunningKind    *string        `json:"running_kind"` // "full" or "incremental" while running, else null
	LastStartedAt  *string        `json:"last_started_at"`
	LastFinishedAt *string        `json:"last_finished_at"`
	LastOK         *bool          `json:"last_ok"`
	LastError      *string        `json:"last_error"` // null unless the run failed
	Counts         SyncCountsJSON `json:"counts"`     // zeros before the first run
	EventsReceived int64          `json:"events_received"`
	LastEventAt    *string        `json:"last_event_at"`

	// This server's additions.
	LastKind         *string `json:"last_kind"`         // "full" or "incremental"
	LastFullOKAt     *string `json:"last_full_ok_at"`   // start of the newest successful full reconcile
	Progress         *string `json:"progress"`          // what the running run does, null when idle
	URL              *string `json:"url"`               // the platform's URL
	TokenFingerprint *string `json:"token_fingerprint"` // sha256:<12 hex>, never the token
	Interval         *string `json:"interval"`          // WALDUR_SYNC_INTERVAL
	EventsEnabled    bool    `json:"events_enabled"`    // the receiver is on
	EventsPending    int     `json:"events_pending"`    // received, not applied yet
	EventsFailed     int     `json:"events_failed"`     // given up on (the full reconcile repairs them)
}

func strPtr(s string) *string { return &s }

// platformSyncJSON builds the status answer.
func (h *Handler) platformSyncJSON(ctx context.Context) (PlatformSyncJSON, error) {
	out := PlatformSyncJSON{}
	if h.Platform == nil {
		return out, nil
	}
	st, err := h.Platform.Status(ctx, 0)
	if err != nil {
		return out, err
	}
	out.Configured, out.Running = true, st.Running
	if st.Last != nil {
		out.LastStartedAt = apiTime(st.Last.StartedAt)
	}
	if last, err := h.Store.LastFinishedSyncRun(ctx, ""); err == nil {
		out.LastFinishedAt = apiTime(last.FinishedAt)
		ok := last.OK
		out.LastOK = &ok
		if !ok {
			out.LastError = strPtr(last.Error)
		}
		out.Counts = syncCountsJSON(last.Counts)
		out.LastKind = strPtr(last.Kind)
	} else if !errors.Is(err, db.ErrNotFound) {
		return out, err
	}
	if st.LastFullOK != nil {
		out.LastFullOKAt = apiTime(st.LastFullOK.StartedAt)
	}
	if p := st.Progress.String(); p != "" {
		out.Progress = &p
	}
	if st.Running && st.Progress.Kind != "" {
		out.RunningKind = strPtr(st.Progress.Kind)
	}
	out.URL, out.TokenFingerprint, out.Interval = strPtr(st.URL), strPtr(st.TokenFingerprint), strPtr(st.Interval.String())
	out.EventsEnabled = st.EventsEnabled
	if ev := st.Events; ev != nil {
		out.EventsReceived, out.EventsPending, out.EventsFailed = ev.Received, ev.Pending, ev.Failed
		out.LastEventAt = apiTime(ev.LastAt)
	}
	return out, nil
}

// PlatformSyncStatus is GET /api/admin/platform-sync/ (staff): the platform sync's state.
func (h *Handler) PlatformSyncStatus(w http.ResponseWriter, r *http.Request) {
	out, err := h.platformSyncJSON(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.JSON(w, http.StatusOK, out)
}

// msgNoPlatform answers a sync request without a platform.
const msgNoPlatform = "No platform is configured: set WALDUR_URL and WALDUR_TOKEN and restart this server."

// StartPlatformSync is POST /api/admin/platform-sync/ (staff): a full reconcile starts
// now (202 with the status); {"mode": "incremental"} starts an incremental run instead.
// 409 while a run is under way; 400 when no platform is configured.
func (h *Handler) StartPlatformSync(w http.ResponseWriter, r *http.Request) {
	var f map[string]string
	if r.ContentLength != 0 {
		var err error
		if f, err = respond.ReadFields(r); err != nil {
			respond.BadBody(w, r, err)
			return
		}
	}
	full := true
	switch mode := strings.TrimSpace(f["mode"]); mode {
	case "", "full":
	case "incremental":
		full = false
	default:
		respond.JSON(w, http.StatusBadRequest, respond.FieldErrors{"mode": {`"` + mode + `" is not a valid choice: use full or incremental.`}})
		return
	}
	if h.Platform == nil {
		respond.DetailError(w, http.StatusBadRequest, msgNoPlatform)
		return
	}
	if err := h.Platform.Start(full); errors.Is(err, platform.ErrRunning) {
		respond.DetailError(w, http.StatusConflict, "A platform sync is already running: wait for it to finish.")
		return
	} else if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	out, err := h.platformSyncJSON(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	out.Running = true
	out.RunningKind = strPtr(map[bool]string{true: db.SyncFull, false: db.SyncIncremental}[full])
	respond.JSON(w, http.StatusAccepted, out)
}

// PlatformEventJSON is the receiver's answer to an accepted event.
type PlatformEventJSON struct {
	Detail string `json:"detail"`
}

// secretMatches compares the secret from the path with the configured one in constant
// time, whatever their lengths (both are hashed first).
func secretMatches(given, want string) bool {
	if want == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// PlatformEvent is POST /api/waldur/events/{secret}/: the platform's web hook posts one
// event ({"created", "message", "context", "event_type"}, JSON or form-encoded). The
// secret in the path is the credential (no session, no token, no cross-site check:
// the platform is no browser); a wrong one, or no receiver configured, is 404. The
// event is stored durably before the 202; a body that is no event is 400.
func (h *Handler) PlatformEvent(w http.ResponseWriter, r *http.Request) {
	if h.Platform == nil || !secretMatches(chi.URLParam(r, "secret"), h.EventsSecret) {
		respond.DetailError(w, http.StatusNotFound, "Not found.")
		return
	}
	body, err := io.ReadAll(r.Body) // bounded by the body limit
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			respond.DetailError(w, http.StatusRequestEntityTooLarge, "The request body is too large.")
			return
		}
		respond.DetailError(w, http.StatusBadRequest, "The request body could not be read.")
		return
	}
	err = h.Platform.Receive(r.Context(), r.Header.Get("Content-Type"), body)
	if errors.Is(err, waldur.ErrBadEvent) {
		respond.DetailError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), waldur.ErrBadEvent.Error()+": ")+`: send {"event_type", "context", "message", "created"} as JSON or a form.`)
		return
	}
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.JSON(w, http.StatusAccepted, PlatformEventJSON{Detail: "Event received."})
}
