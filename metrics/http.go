package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// unmatchedRoute is the route label of a request that matched no route (a 404 or 405
// from the router): its raw path is never used as a label.
const unmatchedRoute = "unmatched"

// httpKey identifies one request series by the route's raw chi patterns (the first, and
// the rest), method and status. The joined label is built only when a series is first
// seen, so a request does no string building and no allocation for its lookup.
type httpKey struct {
	first, rest string
	method      string
	code        int
}

// httpSeries caches a series' resolved metrics.
type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// HTTPMiddleware counts and times every request by its chi route pattern (after
// routing, so "/api/users/{uuid}/", never the path), method and status. Put it outside
// the panic recovery, so that a recovered panic is counted with its 500.
func (m *Metrics) HTTPMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		cw := &codeWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		code := cw.code
		if code == 0 {
			code = http.StatusOK
		}
		k := httpKey{method: method(r.Method), code: code}
		if rc := chi.RouteContext(r.Context()); rc != nil {
			switch p := rc.RoutePatterns; len(p) {
			case 0:
			case 1:
				k.first = p[0]
			case 2:
				k.first, k.rest = p[0], p[1]
			default:
				k.first, k.rest = p[0], strings.Join(p[1:], "")
			}
		}
		s := m.series(k)
		s.requests.Inc()
		s.duration.Observe(time.Since(start).Seconds())
	})
}

// routePattern is the matched route as web.Routes wrote it: chi's RoutePattern, but
// keeping the trailing slash (chi trims it), so "/api/users/" stays what the router and
// the OpenAPI document call it. "" when nothing matched.
func routePattern(patterns ...string) string {
	p := strings.Join(patterns, "")
	for strings.Contains(p, "/*/") {
		p = strings.ReplaceAll(p, "/*/", "/")
	}
	if strings.HasSuffix(p, "//") {
		p = p[:len(p)-1]
	}
	return p
}

// series returns the cached metrics for k, resolving them the first time.
func (m *Metrics) series(k httpKey) *httpSeries {
	m.httpMu.RLock()
	s, ok := m.httpSeries[k]
	m.httpMu.RUnlock()
	if ok {
		return s
	}
	route := routePattern(k.first, k.rest)
	if route == "" {
		route = unmatchedRoute
	}
	s = &httpSeries{
		requests: m.httpRequests.WithLabelValues(route, k.method, strconv.Itoa(k.code)),
		duration: m.httpDuration.WithLabelValues(route, k.method),
	}
	m.httpMu.Lock()
	defer m.httpMu.Unlock()
	if prev, ok := m.httpSeries[k]; ok {
		return prev
	}
	m.httpSeries[k] = s
	return s
}

// codeWriter remembers the status code written.
type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, deadlines).
func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
