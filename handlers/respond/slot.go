package respond

import (
	"context"
	"errors"
	"net/http"
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
// level only (see QuietOnSuccess).
func RequestQuiet(ctx context.Context) bool {
	s := slot(ctx)
	return s != nil && s.quiet
}

// QuietOnSuccess marks a high-volume request whose success is already on record
// elsewhere (the transactions table, the metrics): it is logged at debug level unless
// it fails. Errors and refusals are logged as usual.
func QuietOnSuccess(r *http.Request) {
	if s := slot(r.Context()); s != nil {
		s.quiet = true
	}
}

// RecordError keeps err for the request's log line; the answer is the caller's to write.
func RecordError(r *http.Request, err error) {
	if s := slot(r.Context()); s != nil {
		s.err = errors.Join(s.err, err)
	}
}
