package handlers

import (
	"net/http"

	"matrixas/auth"
	"matrixas/views"
)

const flashKey = "_flash"

// flash queues a one-time message for the next page this session sees.
func (h *Handler) flash(w http.ResponseWriter, r *http.Request, kind, msg string) {
	sess, err := h.Sessions.Get(r, auth.SessionCookie)
	if err != nil {
		recordError(r, err)
		return
	}
	sess.AddFlash(kind+"\x00"+msg, flashKey)
	if err := sess.Save(r, w); err != nil {
		recordError(r, err)
	}
}

// page builds the layout's view model, taking (and clearing) the session's flashes.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, title, active string) views.Page {
	p := views.Page{Title: title, Active: active, Version: h.Version}
	if u := auth.UserFrom(r.Context()); u != nil {
		p.Username = u.Username
		p.IsStaff = u.IsStaff
	}
	if _, err := r.Cookie(auth.SessionCookie); err != nil {
		return p
	}
	sess, err := h.Sessions.Get(r, auth.SessionCookie)
	if err != nil {
		recordError(r, err)
		return p
	}
	flashes := sess.Flashes(flashKey)
	if len(flashes) == 0 {
		return p
	}
	for _, f := range flashes {
		s, _ := f.(string)
		kind, msg := "info", s
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				kind, msg = s[:i], s[i+1:]
				break
			}
		}
		p.Flashes = append(p.Flashes, views.Flash{Kind: kind, Message: msg})
	}
	if err := sess.Save(r, w); err != nil {
		recordError(r, err)
	}
	return p
}

func (h *Handler) errorPage(r *http.Request, status int, msg string) views.ErrorPageData {
	d := views.ErrorPageData{Status: status, Message: msg, Heading: http.StatusText(status)}
	d.Title = d.Heading
	if u := auth.UserFrom(r.Context()); u != nil {
		d.Username, d.IsStaff = u.Username, u.IsStaff
	}
	switch status {
	case http.StatusNotFound:
		d.Heading = "Page not found"
	case http.StatusForbidden:
		d.Heading = "Not allowed"
	case http.StatusInternalServerError:
		d.Heading = "Something went wrong"
	}
	return d
}

// NotFound answers an unknown path: JSON under /api/, Matrix-shaped under /_matrix/, a page elsewhere.
func (h *Handler) NotFound(w http.ResponseWriter, r *http.Request) {
	if isMatrix(r) {
		writeMatrixError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
		return
	}
	h.fail(w, r, http.StatusNotFound, "There is nothing at this address.")
}

// MethodNotAllowed answers a known path with the wrong method.
func (h *Handler) MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if isMatrix(r) {
		writeMatrixError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Method not allowed")
		return
	}
	h.fail(w, r, http.StatusMethodNotAllowed, "This address does not accept "+r.Method+" requests.")
}

// TooLarge answers a request whose body is over the limit: JSON under /api/, the error
// page elsewhere.
func (h *Handler) TooLarge(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, http.StatusRequestEntityTooLarge, "The request body is too large.")
}

// Forbidden answers an authenticated user who lacks the rights.
func (h *Handler) Forbidden(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, http.StatusForbidden, "You do not have permission to perform this action.")
}

// Unauthorized answers an anonymous API request.
func (h *Handler) Unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Token realm="api"`)
	writeDetail(w, http.StatusUnauthorized, "Authentication credentials were not provided.")
}

// Panic answers a request whose handler panicked; the recoverer logs the panic.
func (h *Handler) Panic(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, http.StatusInternalServerError, "Something went wrong on our side; it has been logged.")
}

func isMatrix(r *http.Request) bool {
	return len(r.URL.Path) >= 9 && r.URL.Path[:9] == "/_matrix/"
}

// CrossOriginDenied answers an unsafe request from another site (CSRF protection).
func (h *Handler) CrossOriginDenied(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, http.StatusForbidden, "Cross-origin request refused: submit the form from this site.")
}
