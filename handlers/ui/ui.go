// Package ui serves the staff dashboard: server-rendered pages (templ components from
// package views) with htmx fragments, forms that work without JavaScript
// (post/redirect/get with a flash), and the sign-in pages. Every page but the sign-in is
// for active staff only; the router's middleware sees to that.
package ui

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/diagnostics"
	"matrixas/handlers/respond"
	"matrixas/setup"
	"matrixas/views"
)

// Handler serves the dashboard; web.Routes maps the paths to its methods.
type Handler struct {
	Store    *db.Store
	Settings *db.Settings
	Sessions *auth.SessionStore
	// Throttle limits wrong current passwords on the account page, per user.
	Throttle *auth.Throttle
	// Logins limits failed sign-ins per client address and per (username, address).
	Logins *auth.LoginThrottle
	// Passwords hashes and checks staff passwords (bcrypt at auth.PasswordCost).
	Passwords *auth.Passwords
	// FirstRun, when set, is closed once the first staff user of a first start exists (or
	// its creation ended): a sign-in waits for it rather than fail for a user about to be.
	FirstRun <-chan struct{}
	// AppserviceSetup runs the appservice setup and the bot step (shared with the API).
	AppserviceSetup *setup.Service
	// Diag runs the live diagnostics.
	Diag diagnostics.Runner
	Log  *slog.Logger
	// Wake nudges the provisioning worker after a write it should act on; nil = no worker.
	Wake func()
	// Exports queues history exports; ExportsDaily, ExportsHour and
	// ExportsRetentionDays are their schedule and retention, which the Exports page states.
	Exports              Exports
	ExportsDaily         bool
	ExportsHour          int
	ExportsRetentionDays int
	// WakeBot nudges the bot's sender after a message was queued or put back in the
	// queue; nil = no sender.
	WakeBot func()
	// PublicURL is this server's configured public URL (setup's default url); "" when unknown.
	PublicURL string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Version is shown in the footer.
	Version string
	// Platform is the platform sync (the Platform page); nil when none is configured.
	Platform PlatformSync
	// EventsSecret is the event receiver's secret (WALDUR_EVENTS_SECRET), to build the
	// URL the hook posts to; never shown.
	EventsSecret string
}

// wake nudges the provisioning worker, when there is one.
func (h *Handler) wake() {
	if h.Wake != nil {
		h.Wake()
	}
}

// wakeBot nudges the bot's sender, when there is one.
func (h *Handler) wakeBot() {
	if h.WakeBot != nil {
		h.WakeBot()
	}
}

// isHTMX reports whether htmx sent the request (it wants a fragment, not a page).
func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// redirectFlash queues a flash and answers 303 to the page to show next: the
// post/redirect/get step of every form that works without JavaScript.
func (h *Handler) redirectFlash(w http.ResponseWriter, r *http.Request, to string, kind views.FlashKind, msg string) {
	h.flash(w, r, kind, msg)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// uiFail answers a failed dashboard action. Plain requests get the error page; htmx
// requests get the message in the flash area (retargeted), so a fragment target never
// receives a whole page.
func (h *Handler) uiFail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if !isHTMX(r) {
		respond.Fail(w, r, status, msg)
		return
	}
	w.Header().Set("HX-Retarget", "#flashes")
	w.Header().Set("HX-Reswap", "innerHTML")
	respond.RenderStatus(w, r, status, views.Flashes([]views.Flash{{Kind: views.FlashError, Message: msg}}))
}

// uiServerError records err for the log and answers 500 without its text.
func (h *Handler) uiServerError(w http.ResponseWriter, r *http.Request, err error) {
	respond.RecordError(r, err)
	h.uiFail(w, r, http.StatusInternalServerError, "Something went wrong on our side; it has been logged.")
}

// readForm parses a form body, answering 400/413 itself when it cannot.
func (h *Handler) readForm(w http.ResponseWriter, r *http.Request) bool {
	if err := respond.ParseForm(r); err != nil {
		respond.BadBody(w, r, err)
		return false
	}
	return true
}

// pageNumber reads ?page=N (1 when absent or not a positive number).
func pageNumber(q url.Values) int {
	n, err := strconv.Atoi(q.Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// withQuery returns path with the non-empty values of q (a list's filters).
func withQuery(path string, q url.Values) string {
	clean := url.Values{}
	for k, vs := range q {
		for _, v := range vs {
			if v != "" {
				clean.Add(k, v)
			}
		}
	}
	if len(clean) == 0 {
		return path
	}
	return path + "?" + clean.Encode()
}
