package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/handlers/appservice"
	"matrixas/handlers/respond"
	"matrixas/handlers/ui"
)

// statusWriter remembers the status code for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestIDs number the requests of this process; an id is "<prefix>-<n>", and the
// prefix (host name and a random part, as chi's RequestID middleware makes them) tells
// processes apart. The id is formatted only when a line is written.
var requestIDs = struct {
	prefix string
	n      atomic.Uint64
}{prefix: requestIDPrefix()}

func requestIDPrefix() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + "/" + auth.RandomHex(5)
}

func requestID(n uint64) string {
	return requestIDs.prefix + "-" + fmt.Sprintf("%06d", n)
}

// logRequests logs each request once, after it finished: request id, method, route
// pattern, path (never the query: it may carry a legacy access_token), status, duration
// and the error a handler recorded. A panic is logged with its stack and answered 500.
func logRequests(log *slog.Logger, onPanic http.HandlerFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := requestIDs.n.Add(1)
			sw := &statusWriter{ResponseWriter: w}
			r = r.WithContext(respond.WithErrorSlot(r.Context()))
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error("panic", "request_id", requestID(id), "method", r.Method, "path", r.URL.Path,
						"panic", p, "stack", string(debug.Stack()))
					if sw.status == 0 {
						onPanic(sw, r)
					}
					return
				}
				level := slog.LevelInfo
				reqErr := respond.RequestError(r.Context())
				switch {
				case reqErr != nil || sw.status >= 500:
					level = slog.LevelError
				case sw.status < 400 && respond.RequestQuiet(r.Context()):
					level = slog.LevelDebug
				}
				if !log.Enabled(r.Context(), level) {
					return
				}
				attrs := make([]slog.Attr, 0, 8)
				attrs = append(attrs,
					slog.String("request_id", requestID(id)),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Int("status", sw.status),
					slog.Int64("bytes", sw.bytes),
					slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				)
				if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
					attrs = append(attrs, slog.String("route", rc.RoutePattern()))
				}
				if reqErr != nil {
					attrs = append(attrs, slog.String("error", reqErr.Error()))
				}
				log.LogAttrs(r.Context(), level, "request", attrs...)
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// securityHeaders sets the headers every response carries. The CSP allows no inline
// script or style: htmx is configured through a meta tag and its indicator styles are off.
// The values are shared, never modified slices: setting them allocates nothing.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range securityHeaderValues {
			h[kv.key] = kv.value
		}
		next.ServeHTTP(w, r)
	})
}

var securityHeaderValues = []struct {
	key   string // canonical form
	value []string
}{
	{"Content-Security-Policy", []string{"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"}},
	{"X-Content-Type-Options", []string{"nosniff"}},
	{"Referrer-Policy", []string{"same-origin"}},
	{"X-Frame-Options", []string{"DENY"}},
}

// limitBody caps request bodies; handlers turn the resulting error into a 413.
// A declared length over the limit is refused before reading, in the request's shape:
// Matrix error, API detail, or the dashboard's error page.
func limitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				w.Header().Set("Connection", "close")
				if strings.HasPrefix(r.URL.Path, "/_matrix/") || strings.HasPrefix(r.URL.Path, "/transactions/") {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusRequestEntityTooLarge)
					w.Write([]byte(`{"errcode":"M_TOO_LARGE","error":"Request body too large"}` + "\n"))
					return
				}
				respond.TooLarge(w, r)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// countServerErrors counts every 5xx answer to the homeserver in errs (webhook_errors):
// the homeserver retries them, and an operator should know it has to.
func countServerErrors(errs *appservice.ErrorWindow) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				if p := recover(); p != nil {
					errs.Add(time.Now()) // the panic handler outside answers 500
					panic(p)
				}
				if sw.status >= 500 {
					errs.Add(time.Now())
				}
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// authenticate reads the session cookie (dashboard) or the API token (Authorization:
// Token <key>, under /api/ only) once, and puts the user in the context.
func authenticate(store *db.Store, sessions *auth.SessionStore) func(http.Handler) http.Handler {
	var touched sync.Map // token id -> time.Time of the last last-used write
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			if strings.HasPrefix(r.URL.Path, "/api/") {
				if key, isToken, problem := apiToken(r); isToken {
					if problem != "" {
						tokenRefused(w, problem)
						return
					}
					user, tokenID, err := store.UserByTokenHash(ctx, auth.HashToken(key))
					if errors.Is(err, db.ErrNotFound) {
						tokenRefused(w, "Invalid token.")
						return
					}
					if err != nil {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(http.StatusServiceUnavailable)
						w.Write([]byte(`{"detail":"The database is unavailable."}` + "\n"))
						return
					}
					// Last-used is informational: written at most once a minute per token, so
					// API traffic does not queue writes behind the webhook.
					if last, ok := touched.Load(tokenID); !ok || time.Since(last.(time.Time)) > time.Minute {
						touched.Store(tokenID, time.Now())
						store.TouchAPIToken(context.WithoutCancel(ctx), tokenID) // best effort
					}
					next.ServeHTTP(w, r.WithContext(auth.WithUser(ctx, user)))
					return
				}
			}
			if _, err := r.Cookie(auth.SessionCookie); err == nil {
				sess, err := sessions.Get(r, auth.SessionCookie)
				// Get caches the session in r's context (gorilla's registry); keep that
				// context so the handler reuses the session instead of reading it again.
				ctx = r.Context()
				if err == nil {
					if uid := auth.SessionUserID(sess); uid != 0 {
						if user, err := store.UserByID(ctx, uid); err == nil && user.IsActive {
							ctx = auth.WithUser(ctx, user)
						}
					}
				}
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// apiToken reads "Authorization: Token <key>" as the reference framework (DRF) does:
// the keyword in any case, then exactly one key. isToken is false for another scheme (or
// none); problem says what is wrong with a Token header that carries no single key.
func apiToken(r *http.Request) (key string, isToken bool, problem string) {
	parts := strings.Fields(r.Header.Get("Authorization"))
	if len(parts) == 0 || !strings.EqualFold(parts[0], "Token") {
		return "", false, ""
	}
	switch len(parts) {
	case 1:
		return "", true, "Invalid token header. No credentials provided."
	case 2:
		return parts[1], true, ""
	}
	return "", true, "Invalid token header. Token string should not contain spaces."
}

// tokenRefused answers 401 for a token header that does not authenticate.
func tokenRefused(w http.ResponseWriter, detail string) {
	b, _ := json.Marshal(respond.Detail{Detail: detail})
	w.Header().Set("WWW-Authenticate", `Token realm="api"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	w.Write(append(b, '\n'))
}

// requireStaffPage lets active staff through; anonymous visitors go to the login page and
// authenticated non-staff get 403.
var requireStaffPage = staffOnly(ui.LoginRedirect, respond.Forbidden)

// staffOnly lets active staff through and answers the others with anonymous or forbidden.
func staffOnly(anonymous, forbidden http.HandlerFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case auth.StaffFrom(r.Context()) != nil:
				next.ServeHTTP(w, r)
			case auth.UserFrom(r.Context()) == nil:
				anonymous(w, r)
			default:
				forbidden(w, r)
			}
		})
	}
}

// requireUser lets any authenticated API caller through; anonymous gets 401.
func requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth.UserFrom(r.Context()) == nil {
			respond.Unauthorized(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireStaff lets active staff through; anonymous gets 401 and others 403.
var requireStaff = staffOnly(respond.Unauthorized, respond.Forbidden)

// staffOrNotFound lets active staff through; anonymous gets 401 and others 404, as if
// the object did not exist (history exports: their existence is no one else's business).
var staffOrNotFound = staffOnly(respond.Unauthorized, notFoundDetail)

// notFoundDetail answers 404 {"detail": "Not found."}, the answer to an unknown id.
func notFoundDetail(w http.ResponseWriter, r *http.Request) {
	respond.Fail(w, r, http.StatusNotFound, "Not found.")
}

// staffWrites lets any authenticated caller read (requireUser), and only staff change
// anything.
func staffWrites(next http.Handler) http.Handler {
	return requireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || auth.StaffFrom(r.Context()) != nil {
			next.ServeHTTP(w, r)
			return
		}
		respond.Forbidden(w, r)
	}))
}

// crossOrigin refuses cross-site unsafe requests (CSRF) on cookie-authenticated routes,
// answering in the request's shape. With PUBLIC_URL set, the Origin must be that URL's
// origin exactly (scheme, host and port): net/http's check compares the Origin's host
// with the Host header only, so a page on http://host could post to https://host.
// Requests that carry an API token and no session cookie are not checked: a browser
// cannot add an Authorization header to a cross-site form, so such a request is an
// automation tool's, whatever Origin it sends.
func crossOrigin(publicURL string) func(http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	deny := http.HandlerFunc(respond.CrossOriginDenied)
	cop.SetDenyHandler(deny)
	publicOrigin := originOf(publicURL)
	return func(next http.Handler) http.Handler {
		checked := cop.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions:
				next.ServeHTTP(w, r)
			case isTokenOnly(r):
				next.ServeHTTP(w, r)
			case publicOrigin == "":
				checked.ServeHTTP(w, r)
			case r.Header.Get("Origin") != "":
				if originOf(r.Header.Get("Origin")) != publicOrigin {
					deny.ServeHTTP(w, r)
					return
				}
				next.ServeHTTP(w, r)
			default:
				// No Origin: a browser still says where the request comes from in its
				// fetch metadata; neither header means a client that is not a browser.
				if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
					deny.ServeHTTP(w, r)
					return
				}
				next.ServeHTTP(w, r)
			}
		})
	}
}

// isTokenOnly reports whether r is an API request authenticated by a token header and
// carrying no session cookie.
func isTokenOnly(r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return false
	}
	if _, isToken, _ := apiToken(r); !isToken {
		return false
	}
	_, err := r.Cookie(auth.SessionCookie)
	return err != nil
}

// originOf returns the serialized origin of an absolute http(s) URL (scheme://host[:port],
// lowercased, the default port left out, as browsers send it), or "" for anything else
// ("null", a relative URL).
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}
