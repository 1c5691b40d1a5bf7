package web

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"matrixas/db"
	"matrixas/matrix"
)

// redactHandler is the last line of defence for the log: it removes the current as/hs
// tokens and registration secret from every message and attribute, whatever component
// logged them (a homeserver's error text may quote a token), and the start-up secrets
// it was given (the platform's token and event secret: the receiver's path holds one).
type redactHandler struct {
	inner    slog.Handler
	settings *db.Settings
	fixed    []string                    // secrets known at start
	cache    *atomic.Pointer[secretList] // shared by the handlers derived by WithAttrs/WithGroup
}

// secretList is the secrets of one settings view; the settings cache hands out a new
// view after every write, so the pointer says when to rebuild the list.
type secretList struct {
	view    *db.MatrixSettings
	secrets []string
}

func newRedactingLogger(log *slog.Logger, settings *db.Settings, fixed ...string) *slog.Logger {
	var keep []string
	for _, f := range fixed {
		if f != "" {
			keep = append(keep, f)
		}
	}
	return slog.New(&redactHandler{inner: log.Handler(), settings: settings, fixed: keep, cache: new(atomic.Pointer[secretList])})
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *redactHandler) secrets(ctx context.Context) []string {
	ms, err := h.settings.Matrix(ctx)
	if err != nil {
		return h.fixed
	}
	if c := h.cache.Load(); c != nil && c.view == ms {
		return c.secrets
	}
	c := &secretList{view: ms, secrets: append(matrix.Secrets(ms), h.fixed...)}
	h.cache.Store(c)
	return c.secrets
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	secrets := h.secrets(context.WithoutCancel(ctx))
	if len(secrets) == 0 || !recordHas(r, secrets) {
		return h.inner.Handle(ctx, r) // the common case: nothing to rewrite, no copy
	}
	out := slog.NewRecord(r.Time, r.Level, matrix.Redact(r.Message, secrets), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a, secrets))
		return true
	})
	return h.inner.Handle(ctx, out)
}

// recordHas reports whether the record's message or any attribute would change.
func recordHas(r slog.Record, secrets []string) bool {
	found := matrix.Redact(r.Message, secrets) != r.Message
	r.Attrs(func(a slog.Attr) bool {
		found = found || attrHas(a, secrets)
		return !found
	})
	return found
}

func attrHas(a slog.Attr, secrets []string) bool {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return matrix.Redact(v.String(), secrets) != v.String()
	case slog.KindGroup:
		for _, g := range v.Group() {
			if attrHas(g, secrets) {
				return true
			}
		}
		return false
	case slog.KindAny:
		return true // errors and other values: rewrite to be safe
	}
	return false
}

func redactAttr(a slog.Attr, secrets []string) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, matrix.Redact(v.String(), secrets))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = redactAttr(g, secrets)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, matrix.Redact(x.Error(), secrets))
		case fmt.Stringer:
			return slog.String(a.Key, matrix.Redact(x.String(), secrets))
		default:
			return slog.String(a.Key, matrix.Redact(fmt.Sprint(x), secrets))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	// Attributes fixed now are redacted with the secrets known now; later records are
	// redacted at Handle time.
	secrets := h.secrets(context.Background())
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a, secrets)
	}
	return &redactHandler{inner: h.inner.WithAttrs(red), settings: h.settings, fixed: h.fixed, cache: h.cache}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{inner: h.inner.WithGroup(name), settings: h.settings, fixed: h.fixed, cache: h.cache}
}
