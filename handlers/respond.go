package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/a-h/templ"

	"matrixas/views"
)

type slotKey struct{}

// errorSlot carries a request's failure to the logging middleware, so that each request
// is logged once, at the HTTP edge, with its error.
type errorSlot struct {
	err   error
	quiet bool // a success is logged at debug level only
}

// WithErrorSlot returns ctx with room for the request's error; the logging middleware calls it.
func WithErrorSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, slotKey{}, &errorSlot{})
}

// slot is the request's errorSlot; nil outside the logging middleware.
func slot(ctx context.Context) *errorSlot {
	s, _ := ctx.Value(slotKey{}).(*errorSlot)
	return s
}

// RequestError returns the error a handler recorded for the request, if any.
func RequestError(ctx context.Context) error {
	if s := slot(ctx); s != nil {
		return s.err
	}
	return nil
}

// RequestQuiet reports whether the handler asked for its success to be logged at debug
// level only (see quietOnSuccess).
func RequestQuiet(ctx context.Context) bool {
	s := slot(ctx)
	return s != nil && s.quiet
}

// quietOnSuccess marks a high-volume request whose success is already on record
// elsewhere (the transactions table, the metrics): it is logged at debug level unless
// it fails. Errors and refusals are logged as usual.
func quietOnSuccess(r *http.Request) {
	if s := slot(r.Context()); s != nil {
		s.quiet = true
	}
}

func recordError(r *http.Request, err error) {
	if s := slot(r.Context()); s != nil {
		s.err = errors.Join(s.err, err)
	}
}

// IsAPI reports whether the request is for the JSON API (errors are JSON there).
func IsAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

func writeJSON(w http.ResponseWriter, status int, v any) {
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

func writeDetail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, Detail{Detail: msg})
}

// MatrixError is the Matrix error shape.
type MatrixError struct {
	ErrCode string `json:"errcode"`
	Error   string `json:"error"`
}

func writeMatrixError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, MatrixError{ErrCode: code, Error: msg})
}

func (h *Handler) renderStatus(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil {
		recordError(r, fmt.Errorf("render: %w", err))
	}
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, c templ.Component) {
	h.renderStatus(w, r, http.StatusOK, c)
}

// serverError records err for the log and answers 500 in the request's shape, without
// the error's text (it may name internals).
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	recordError(r, err)
	h.fail(w, r, http.StatusInternalServerError, "Something went wrong on our side; it has been logged.")
}

// fail answers an error status in the request's shape: JSON detail under /api/, the
// error page elsewhere.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if IsAPI(r) {
		writeDetail(w, status, msg)
		return
	}
	h.renderStatus(w, r, status, views.ErrorPage(h.errorPage(r, status, msg)))
}

// errBodyTooLarge is returned by readBody when the body is over the limit.
var errBodyTooLarge = errors.New("request body too large")

// errBadBody is returned by readBody for a body that does not parse.
type errBadBody struct{ msg string }

func (e errBadBody) Error() string { return e.msg }

// errUnsupportedMedia is returned by readFields for a body in a media type it does not
// parse (415). multipart/form-data is one: the API has no file fields, and the OpenAPI
// document lists only the two types parsed here.
type errUnsupportedMedia struct{ mediaType string }

func (e errUnsupportedMedia) Error() string {
	return fmt.Sprintf("Unsupported media type %q in request: send application/json or application/x-www-form-urlencoded.", e.mediaType)
}

// readFields reads a JSON object or a url-encoded form body into string fields. JSON
// values that are not strings are kept in their JSON text (true, 12) so the caller can
// validate them.
func readFields(r *http.Request) (map[string]string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	out := map[string]string{}
	switch ct {
	case "application/x-www-form-urlencoded":
		if err := parseForm(r); err != nil {
			return nil, err
		}
		for k, v := range r.PostForm {
			if len(v) > 0 {
				out[k] = v[0]
			}
		}
		return out, nil
	case "application/json", "":
		var raw map[string]json.RawMessage
		if err := decodeJSON(r, &raw); err != nil {
			return nil, err
		}
		for k, v := range raw {
			var s string
			if json.Unmarshal(v, &s) == nil {
				out[k] = s
			} else if string(v) != "null" {
				out[k] = string(v)
			}
		}
		return out, nil
	default:
		return nil, errUnsupportedMedia{ct}
	}
}

// decodeJSON decodes one JSON value from the body into dst, refusing trailing data and
// text that is not UTF-8 (which encoding/json would silently rewrite).
func decodeJSON(r *http.Request, dst any) error {
	body, err := io.ReadAll(r.Body) // bounded by the body limit
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errBodyTooLarge
		}
		return errBadBody{"The request body could not be read."}
	}
	if !utf8.Valid(body) {
		return errInvalidUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return errBadBody{"The request body is empty: send a JSON object."}
		}
		return errBadBody{"The request body is not valid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadBody{"The request body has data after the JSON value."}
	}
	return nil
}

// badBody answers a readFields/decodeJSON error: 413, 415 or 400.
func (h *Handler) badBody(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errBodyTooLarge) {
		h.fail(w, r, http.StatusRequestEntityTooLarge, "The request body is too large.")
		return
	}
	var um errUnsupportedMedia
	if errors.As(err, &um) {
		h.fail(w, r, http.StatusUnsupportedMediaType, um.Error())
		return
	}
	var bb errBadBody
	if errors.As(err, &bb) {
		h.fail(w, r, http.StatusBadRequest, bb.msg)
		return
	}
	h.serverError(w, r, err)
}
