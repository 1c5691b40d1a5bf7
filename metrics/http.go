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

// httpKey identifies one request series; httpSeries caches its resolved metrics, so a
// request costs one map load instead of hashing its labels twice.
type httpKey struct {
	route, method string
	code          int
}

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
		route := unmatchedRoute
		if p := routePattern(chi.RouteContext(r.Context())); p != "" {
			route = p
		}
		s := m.series(httpKey{route: route, method: method(r.Method), code: code})
		s.requests.Inc()
		s.duration.Observe(time.Since(start).Seconds())
	})
}

// routePattern is the matched route as web.Routes wrote it: chi's RoutePattern, but
// keeping the trailing slash (chi trims it), so "/api/users/" stays what the router and
// the OpenAPI document call it.
func routePattern(rc *chi.Context) string {
	if rc == nil || len(rc.RoutePatterns) == 0 {
		return ""
	}
	p := strings.Join(rc.RoutePatterns, "")
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
	if s, ok := m.httpSeries.Load(k); ok {
		return s.(*httpSeries)
	}
	s := &httpSeries{
		requests: m.httpRequests.WithLabelValues(k.route, k.method, strconv.Itoa(k.code)),
		duration: m.httpDuration.WithLabelValues(k.route, k.method),
	}
	actual, _ := m.httpSeries.LoadOrStore(k, s)
	return actual.(*httpSeries)
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
