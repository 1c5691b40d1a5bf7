package ui

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/redirect"
	"matrixas/views"
)

// LoginForm shows the login page.
func (h *Handler) LoginForm(w http.ResponseWriter, r *http.Request) {
	if auth.StaffFrom(r.Context()) != nil {
		http.Redirect(w, r, redirect.Local(r.URL.Query().Get("next"), "/"), http.StatusSeeOther)
		return
	}
	d := views.LoginData{Page: h.page(w, r, "Sign in", ""), Next: redirect.Local(r.URL.Query().Get("next"), "")}
	respond.Render(w, r, views.LoginPage(d))
}

// Login checks the credentials, throttling repeated failures per client address and per
// (username, address), and binds the session to the user under a fresh id. A hash made
// at a lower bcrypt cost than today's is replaced by one at today's cost.
func (h *Handler) Login(w http.ResponseWriter, r *http.Request) {
	if err := respond.ParseForm(r); err != nil {
		respond.BadBody(w, r, err)
		return
	}
	if h.FirstRun != nil {
		select {
		case <-h.FirstRun:
		case <-r.Context().Done():
			return
		}
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	next := redirect.Local(r.PostFormValue("next"), "/")
	addr := ClientAddr(r, h.TrustedProxies)
	d := views.LoginData{Page: h.page(w, r, "Sign in", ""), Username: username, Next: redirect.Local(r.PostFormValue("next"), "")}

	if blocked, wait := h.Logins.Blocked(username, addr); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		d.Error = "Too many failed sign-in attempts. Try again in " + strconv.Itoa(int(wait.Minutes())+1) + " minutes."
		respond.RenderStatus(w, r, http.StatusTooManyRequests, views.LoginPage(d))
		return
	}
	user, err := h.Store.UserByUsername(r.Context(), username)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		respond.ServerError(w, r, err)
		return
	}
	hash := ""
	if user != nil {
		hash = user.PasswordHash
	}
	if !h.Passwords.Check(hash, password) || !user.IsActive || !user.IsStaff {
		h.Logins.Fail(username, addr)
		d.Error = "Wrong username or password, or this account may not use the dashboard."
		respond.RenderStatus(w, r, http.StatusUnauthorized, views.LoginPage(d))
		return
	}
	h.Logins.Succeed(username, addr)
	if upgraded, ok := h.Passwords.Rehash(user.PasswordHash, password); ok {
		// Best effort: the sign-in stands with the old hash, and the next one tries again.
		if err := h.Store.UpgradePasswordHash(r.Context(), user.ID, user.PasswordHash, upgraded); err != nil {
			respond.RecordError(r, err)
		}
	}
	sess, err := h.Sessions.Get(r, auth.SessionCookie)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if err := h.Sessions.Login(r.Context(), sess, user); err != nil {
		respond.ServerError(w, r, err)
		return
	}
	if err := sess.Save(r, w); err != nil {
		respond.ServerError(w, r, err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// Logout deletes the session server-side and clears the cookie.
func (h *Handler) Logout(w http.ResponseWriter, r *http.Request) {
	sess, err := h.Sessions.Get(r, auth.SessionCookie)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	h.Sessions.Logout(sess)
	if err := sess.Save(r, w); err != nil {
		respond.ServerError(w, r, err)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// LoginRedirect sends an anonymous browser to the login page, remembering where it was going.
func LoginRedirect(w http.ResponseWriter, r *http.Request) {
	target := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// ClientAddr is the client's IP address: the connection's, or, when the connection comes
// from a trusted proxy, the right-most X-Forwarded-For entry that is not itself a trusted
// proxy (entries further left are written by the client and cannot be believed).
func ClientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	isTrusted := func(s string) bool {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	if len(trusted) == 0 || !isTrusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		if _, err := netip.ParseAddr(hop); err != nil {
			return host // a garbled header: fall back to the proxy itself
		}
		if !isTrusted(hop) {
			return hop
		}
	}
	return host
}
