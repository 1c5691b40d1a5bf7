// Package respond is what the handler packages share: answering in the request's shape
// (DRF-style JSON under /api/, Matrix errors under /_matrix/, the error page elsewhere),
// reading a request body or path parameter and answering its failure, the flash
// messages of the dashboard, and the slot in which a handler leaves its error for the
// access log. It holds no dependencies: the functions take what they use.
package respond

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/a-h/templ"

	"matrixas/auth"
	"matrixas/views"
)

// IsAPI reports whether the request is for the JSON API (errors are JSON there).
func IsAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// isMatrix reports whether the request is for a Matrix path (errors are Matrix-shaped).
func isMatrix(r *http.Request) bool {
	return len(r.URL.Path) >= 9 && r.URL.Path[:9] == "/_matrix/"
}

// JSON answers v as JSON with status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"detail":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Detail is the reference API's error shape: {"detail": "..."}.
type Detail struct {
	Detail string `json:"detail"`
}

// FieldErrors is the reference API's validation error shape: {"field": ["message", ...]}.
type FieldErrors map[string][]string

// Add records a message for field.
func (f FieldErrors) Add(field, msg string) { f[field] = append(f[field], msg) }

// First returns the first message for field, or "".
func (f FieldErrors) First(field string) string {
	if len(f[field]) > 0 {
		return f[field][0]
	}
	return ""
}

// DetailError answers {"detail": msg} with status.
func DetailError(w http.ResponseWriter, status int, msg string) {
	JSON(w, status, Detail{Detail: msg})
}

// MatrixError is the Matrix error shape.
type MatrixError struct {
	ErrCode string `json:"errcode"`
	Error   string `json:"error"`
}

// Matrix answers a Matrix error {"errcode", "error"} with status.
func Matrix(w http.ResponseWriter, status int, code, msg string) {
	JSON(w, status, MatrixError{ErrCode: code, Error: msg})
}

// RenderStatus answers the component as an HTML page or fragment with status; a failure
// to render is recorded for the log (the status is already sent).
func RenderStatus(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil {
		RecordError(r, fmt.Errorf("render: %w", err))
	}
}

// Render answers the component with 200.
func Render(w http.ResponseWriter, r *http.Request, c templ.Component) {
	RenderStatus(w, r, http.StatusOK, c)
}

// msgServerError is what a 500 says; the error itself goes to the log only.
const msgServerError = "Something went wrong on our side; it has been logged."

// ServerError records err for the log and answers 500 in the request's shape, without
// the error's text (it may name internals).
func ServerError(w http.ResponseWriter, r *http.Request, err error) {
	RecordError(r, err)
	Fail(w, r, http.StatusInternalServerError, msgServerError)
}

// Fail answers an error status in the request's shape: JSON detail under /api/, the
// error page elsewhere.
func Fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if IsAPI(r) {
		DetailError(w, status, msg)
		return
	}
	RenderStatus(w, r, status, views.ErrorPage(errorPage(r, status, msg)))
}

// errorPage is the error page's view model; it knows who is signed in, so the page
// keeps the navigation.
func errorPage(r *http.Request, status int, msg string) views.ErrorPageData {
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
func NotFound(w http.ResponseWriter, r *http.Request) {
	if isMatrix(r) {
		Matrix(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
		return
	}
	Fail(w, r, http.StatusNotFound, "There is nothing at this address.")
}

// MethodNotAllowed answers a known path with the wrong method.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if isMatrix(r) {
		Matrix(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Method not allowed")
		return
	}
	Fail(w, r, http.StatusMethodNotAllowed, "This address does not accept "+r.Method+" requests.")
}

// TooLarge answers a request whose body is over the limit: JSON under /api/, the error
// page elsewhere.
func TooLarge(w http.ResponseWriter, r *http.Request) {
	Fail(w, r, http.StatusRequestEntityTooLarge, "The request body is too large.")
}

// Forbidden answers an authenticated user who lacks the rights.
func Forbidden(w http.ResponseWriter, r *http.Request) {
	Fail(w, r, http.StatusForbidden, "You do not have permission to perform this action.")
}

// Unauthorized answers an anonymous API request.
func Unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Token realm="api"`)
	DetailError(w, http.StatusUnauthorized, "Authentication credentials were not provided.")
}

// Panic answers a request whose handler panicked; the recoverer logs the panic.
func Panic(w http.ResponseWriter, r *http.Request) {
	Fail(w, r, http.StatusInternalServerError, msgServerError)
}

// CrossOriginDenied answers an unsafe request from another site (CSRF protection).
func CrossOriginDenied(w http.ResponseWriter, r *http.Request) {
	Fail(w, r, http.StatusForbidden, "Cross-origin request refused: submit the form from this site.")
}
