package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"matrixas/db"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// access says who may call a route. Every route of the real router needs one row in
// routeTable; TestRouteAuthorization derives what each kind of caller must get from it.
type access string

const (
	// public: anyone, no session or token needed (health checks, the login page).
	public access = "public"
	// login: the sign-in and sign-out form posts: anyone may post, but only from this
	// site (CSRF-protected like every cookie-authenticated write).
	login access = "login"
	// static: embedded assets, for anyone.
	static access = "static"
	// staffPage: dashboard pages and their form/htmx posts: anonymous visitors are sent
	// to /login, signed-in non-staff get 403, staff get through. API tokens do not count.
	staffPage access = "staffPage"
	// apiUser: JSON API for any authenticated caller (token or session): anonymous 401.
	apiUser access = "apiUser"
	// apiStaff: JSON API for staff only: anonymous 401, non-staff 403.
	apiStaff access = "apiStaff"
	// apiStaffWrite: JSON API that any authenticated caller may read (GET/HEAD) and only
	// staff may change.
	apiStaffWrite access = "apiStaffWrite"
	// apiStaffHidden: JSON API for staff only, which answers other authenticated callers
	// 404 as if nothing were there (history exports); anonymous 401.
	apiStaffHidden access = "apiStaffHidden"
	// matrix: called by the homeserver with "Authorization: Bearer <hs_token>"; sessions
	// and API tokens grant nothing.
	matrixHS access = "matrix"
	// metricsScrape: Prometheus metrics: only "Authorization: Bearer <METRICS_TOKEN>" opens
	// them; sessions, API tokens and the hs_token get 401 (the test sets a token).
	metricsScrape access = "metrics"
)

// routeRule is one row: method ("*" = every method the route answers), chi pattern, access.
type routeRule struct {
	method, pattern string
	access          access
}

// routeTable lists every route. Adding a route? Add one line here, in the same place
// as in web.Routes, saying who may call it.
var routeTable = []routeRule{
	{http.MethodGet, "/healthz", public},
	{http.MethodGet, "/readyz", public},
	{http.MethodGet, "/metrics", metricsScrape},
	{"*", "/static/*", static},

	{http.MethodPut, "/_matrix/app/v1/transactions/{txnId}", matrixHS},
	{http.MethodPost, "/_matrix/app/v1/ping", matrixHS},
	{http.MethodGet, "/_matrix/app/v1/users/{userId}", matrixHS},
	{http.MethodGet, "/_matrix/app/v1/rooms/{roomAlias}", matrixHS},
	{http.MethodPut, "/transactions/{txnId}", matrixHS},
	// The platform's web hook: the path's secret is the credential (a wrong one is 404).
	{http.MethodPost, "/api/waldur/events/{secret}/", public},

	{http.MethodGet, "/login", public},
	{http.MethodPost, "/login", login},
	{http.MethodPost, "/logout", login},

	{http.MethodGet, "/", staffPage},
	{http.MethodGet, "/account", staffPage},
	{http.MethodPost, "/account/password", staffPage},
	{http.MethodPost, "/account/tokens", staffPage},
	{http.MethodPost, "/account/tokens/{id}/revoke", staffPage},
	{http.MethodPost, "/account/staff", staffPage},
	{http.MethodPost, "/account/staff/{id}/deactivate", staffPage},
	{http.MethodPost, "/account/staff/{id}/activate", staffPage},
	{http.MethodGet, "/transactions", staffPage},
	{http.MethodGet, "/setup", staffPage},
	{http.MethodPost, "/setup", staffPage},
	{http.MethodPost, "/setup/provision-bot", staffPage},
	{http.MethodGet, "/settings", staffPage},
	{http.MethodPost, "/settings", staffPage},
	{http.MethodGet, "/diagnostics", staffPage},
	{http.MethodGet, "/diagnostics/results", staffPage},
	{http.MethodGet, "/diagnostics/summary", staffPage},
	{http.MethodGet, "/rooms", staffPage},
	{http.MethodGet, "/rooms/{uuid}", staffPage},
	{http.MethodPost, "/rooms/{uuid}/retry", staffPage},
	{http.MethodPost, "/rooms/{uuid}/disable", staffPage},
	{http.MethodPost, "/rooms/{uuid}/reactivate", staffPage},
	{http.MethodPost, "/rooms/{uuid}/sync-members", staffPage},
	{http.MethodPost, "/rooms/{uuid}/join", staffPage},
	{http.MethodPost, "/rooms/{uuid}/leave", staffPage},
	{http.MethodPost, "/rooms/{uuid}/delete", staffPage},
	{http.MethodPost, "/rooms/{uuid}/export_history", staffPage},
	{http.MethodGet, "/rooms/{uuid}/exports", staffPage},
	{http.MethodGet, "/exports", staffPage},
	{http.MethodGet, "/outbox", staffPage},
	{http.MethodPost, "/outbox/{uuid}/retry", staffPage},
	{http.MethodGet, "/projects", staffPage},
	{http.MethodGet, "/projects/{uuid}", staffPage},
	{http.MethodPost, "/projects/{uuid}/room", staffPage},
	{http.MethodGet, "/users", staffPage},
	{http.MethodGet, "/users/{uuid}", staffPage},
	{http.MethodGet, "/reprovision", staffPage},
	{http.MethodPost, "/reprovision", staffPage},
	{http.MethodGet, "/reprovision/progress", staffPage},
	{http.MethodGet, "/platform", staffPage},
	{http.MethodGet, "/platform/status", staffPage},
	{http.MethodPost, "/platform/sync", staffPage},
	{http.MethodPost, "/platform/hook", staffPage},

	{http.MethodGet, "/api/schema/", public},
	{http.MethodGet, "/api/admin/matrix-appservice/status/", apiStaff},
	{http.MethodPost, "/api/admin/matrix-appservice/setup/", apiStaff},
	{http.MethodPost, "/api/admin/matrix-appservice/provision-bot/", apiStaff},
	{http.MethodGet, "/api/admin/matrix-appservice/registration.yaml", apiStaff},
	{http.MethodGet, "/api/admin/matrix/diagnostics/", apiStaff},
	{http.MethodGet, "/api/admin/matrix/reprovision/", apiStaff},
	{http.MethodPost, "/api/admin/matrix/reprovision/", apiStaff},
	{http.MethodGet, "/api/admin/platform-sync/", apiStaff},
	{http.MethodPost, "/api/admin/platform-sync/", apiStaff},

	{http.MethodGet, "/api/users/", apiStaffWrite},
	{http.MethodPost, "/api/users/", apiStaffWrite},
	{http.MethodGet, "/api/users/{uuid}/", apiStaffWrite},
	{http.MethodPut, "/api/users/{uuid}/", apiStaffWrite},
	{http.MethodPatch, "/api/users/{uuid}/", apiStaffWrite},
	{http.MethodPost, "/api/users/{uuid}/deactivate/", apiStaffWrite},
	{http.MethodPost, "/api/users/{uuid}/link_matrix_account/", apiStaffWrite},
	{http.MethodGet, "/api/projects/", apiStaffWrite},
	{http.MethodPost, "/api/projects/", apiStaffWrite},
	{http.MethodGet, "/api/projects/{uuid}/", apiStaffWrite},
	{http.MethodPut, "/api/projects/{uuid}/", apiStaffWrite},
	{http.MethodPatch, "/api/projects/{uuid}/", apiStaffWrite},
	{http.MethodDelete, "/api/projects/{uuid}/", apiStaffWrite},
	{http.MethodGet, "/api/projects/{uuid}/members/", apiStaffWrite},
	{http.MethodPut, "/api/projects/{uuid}/members/", apiStaffWrite},
	{http.MethodPost, "/api/projects/{uuid}/members/", apiStaffWrite},
	{http.MethodDelete, "/api/projects/{uuid}/members/{user}/", apiStaffWrite},
	{http.MethodGet, "/api/customers/", apiStaffWrite},
	{http.MethodPost, "/api/customers/", apiStaffWrite},
	{http.MethodGet, "/api/customers/{uuid}/", apiStaffWrite},
	{http.MethodPut, "/api/customers/{uuid}/", apiStaffWrite},
	{http.MethodPatch, "/api/customers/{uuid}/", apiStaffWrite},
	{http.MethodDelete, "/api/customers/{uuid}/", apiStaffWrite},
	{http.MethodGet, "/api/customers/{uuid}/owners/", apiStaffWrite},
	{http.MethodPut, "/api/customers/{uuid}/owners/", apiStaffWrite},
	{http.MethodPost, "/api/customers/{uuid}/owners/", apiStaffWrite},
	{http.MethodDelete, "/api/customers/{uuid}/owners/{user}/", apiStaffWrite},
	{http.MethodGet, "/api/matrix-rooms/", apiStaffWrite},
	{http.MethodPost, "/api/matrix-rooms/", apiStaffWrite},
	{http.MethodGet, "/api/matrix-rooms/eligible_projects/", apiStaffWrite},
	{http.MethodGet, "/api/matrix-rooms/{uuid}/", apiStaffWrite},
	{http.MethodDelete, "/api/matrix-rooms/{uuid}/", apiStaffWrite},
	{http.MethodGet, "/api/matrix-rooms/{uuid}/members/", apiStaffWrite},
	{http.MethodPost, "/api/matrix-rooms/{uuid}/sync_members/", apiStaffWrite},
	{http.MethodPost, "/api/matrix-rooms/{uuid}/retry/", apiStaffWrite},
	{http.MethodPost, "/api/matrix-rooms/{uuid}/disable/", apiStaffWrite},
	{http.MethodPost, "/api/matrix-rooms/{uuid}/reactivate/", apiStaffWrite},
	{http.MethodPost, "/api/matrix-rooms/{uuid}/join/", apiStaffWrite},
	{http.MethodPost, "/api/matrix-rooms/{uuid}/leave/", apiStaffWrite},
	{http.MethodPost, "/api/matrix-rooms/{uuid}/export_history/", apiStaffWrite},
	{http.MethodPost, "/api/matrix-rooms/{uuid}/messages/", apiStaffWrite},
	{http.MethodGet, "/api/matrix-user-profiles/", apiStaffWrite},
	{http.MethodGet, "/api/matrix-exports/", apiStaffHidden},
	{http.MethodGet, "/api/matrix-exports/{uuid}/", apiStaffHidden},
	{http.MethodGet, "/api/matrix-exports/{uuid}/download/export/", apiStaffHidden},
	{http.MethodGet, "/api/matrix-exports/{uuid}/download/media/", apiStaffHidden},
	{http.MethodGet, "/api/matrix/credentials/", apiUser},
	{http.MethodPost, "/api/matrix/session/", apiUser},
	{http.MethodPost, "/api/matrix-rooms/{uuid}/open/", apiUser},
}

// paramSamples gives plausible values for URL parameters by name; a parameter missing
// here gets a random UUID (32 hex digits), which matches nothing: a 404 is a fine answer
// for staff, the test only cares that the caller got past (or was stopped by) auth.
var paramSamples = map[string]string{
	"txnId":     "foundation-txn-1",
	"userId":    "@waldur-probe:localhost",
	"roomAlias": "#waldur-probe:localhost",
}

var paramRE = regexp.MustCompile(`\{([^}:]+)(?::([^}]*))?\}`)

// samplePath fills a chi pattern's parameters and wildcard with plausible values.
func samplePath(t *testing.T, pattern string, a access) string {
	t.Helper()
	var failed bool
	p := paramRE.ReplaceAllStringFunc(pattern, func(m string) string {
		sub := paramRE.FindStringSubmatch(m)
		name, re := sub[1], sub[2]
		candidates := []string{db.NewUUID(), "987654321", "probe"}
		if v, ok := paramSamples[name]; ok {
			candidates = []string{v}
		}
		if re == "" {
			return url.PathEscape(candidates[0])
		}
		for _, c := range candidates {
			if regexp.MustCompile(`^(?:` + re + `)$`).MatchString(c) {
				return url.PathEscape(c)
			}
		}
		failed = true
		return m
	})
	if failed {
		t.Fatalf("route %s: no sample value matches its parameter pattern; add one to paramSamples in web/routes_test.go", pattern)
	}
	if strings.HasSuffix(p, "*") {
		if a == static {
			p = strings.TrimSuffix(p, "*") + "app.css"
		} else {
			p = strings.TrimSuffix(p, "*") + "probe"
		}
	}
	return p
}

// caller is one kind of client in the authorization matrix.
type caller string

const (
	anonymous    caller = "anonymous"
	userToken    caller = "non-staff API token"
	userSession  caller = "non-staff session"
	staffToken   caller = "staff API token"
	staffSession caller = "staff session"
	hsToken      caller = "homeserver hs_token"
	wrongHS      caller = "wrong hs_token"
	metricsTok   caller = "metrics bearer token"
)

// outcome is what a caller must get.
type outcome int

const (
	allowed      outcome = iota // got through auth: not 401/403, not sent to /login, not 500
	toLogin                     // 303 to /login
	unauthorized                // 401 {"detail": ...}
	forbidden                   // 403 (JSON detail under /api/, the error page elsewhere)
	matrixDenied                // 401 or 403 {"errcode": ...}
	notForbidden                // anything but 403 and 5xx (the login forms: 401 and 429 are answers)
)

func (o outcome) String() string {
	return [...]string{"allowed", "a redirect to /login", "401 {detail}", "403", "401/403 {errcode}", "not 403/5xx"}[o]
}

func isSafe(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// expectations says what each caller must get from a route of access a.
func expectations(a access, method string) (map[caller]outcome, error) {
	switch a {
	case public, static:
		return map[caller]outcome{anonymous: allowed, userSession: allowed, staffSession: allowed}, nil
	case login:
		return map[caller]outcome{anonymous: notForbidden, userSession: notForbidden, staffSession: notForbidden}, nil
	case staffPage:
		return map[caller]outcome{anonymous: toLogin, userToken: toLogin, staffToken: toLogin, userSession: forbidden, staffSession: allowed}, nil
	case apiUser:
		return map[caller]outcome{anonymous: unauthorized, userToken: allowed, userSession: allowed, staffToken: allowed, staffSession: allowed}, nil
	case apiStaff:
		return map[caller]outcome{anonymous: unauthorized, userToken: forbidden, userSession: forbidden, staffToken: allowed, staffSession: allowed}, nil
	case apiStaffHidden:
		return map[caller]outcome{anonymous: unauthorized, userToken: notFound, userSession: notFound, staffToken: allowed, staffSession: allowed}, nil
	case apiStaffWrite:
		if isSafe(method) {
			return expectations(apiUser, method)
		}
		return expectations(apiStaff, method)
	case matrixHS:
		return map[caller]outcome{anonymous: matrixDenied, wrongHS: matrixDenied, staffToken: matrixDenied, staffSession: matrixDenied, hsToken: allowed}, nil
	case metricsScrape:
		return map[caller]outcome{anonymous: unauthorized, userToken: unauthorized, staffToken: unauthorized, userSession: unauthorized,
			staffSession: unauthorized, hsToken: unauthorized, metricsTok: allowed}, nil
	}
	return nil, fmt.Errorf("unknown access class %q", a)
}

type walkedRoute struct{ method, pattern string }

// walkRoutes lists the real router's (method, pattern) pairs, sorted.
func walkRoutes(t *testing.T, ts *testserver.Server) []walkedRoute {
	t.Helper()
	routes, ok := ts.Web.Handler().(chi.Routes)
	if !ok {
		t.Fatalf("the root handler is a %T, not a chi router", ts.Web.Handler())
	}
	var out []walkedRoute
	err := chi.Walk(routes, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, walkedRoute{method, pattern})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].pattern != out[j].pattern {
			return out[i].pattern < out[j].pattern
		}
		return out[i].method < out[j].method
	})
	return out
}

// ruleFor finds the row for a walked route.
func ruleFor(r walkedRoute) (routeRule, bool) {
	for _, rule := range routeTable {
		if rule.pattern == r.pattern && (rule.method == r.method || rule.method == "*") {
			return rule, true
		}
	}
	return routeRule{}, false
}

// TestRouteTableIsComplete fails for a route without a row (and for a row without a
// route), so no route ships without a decision about who may call it.
func TestRouteTableIsComplete(t *testing.T) {
	ts := testserver.New(t)
	walked := walkRoutes(t, ts)
	if len(walked) == 0 {
		t.Fatal("chi.Walk found no routes")
	}
	for _, r := range walked {
		if _, ok := ruleFor(r); !ok {
			t.Errorf("route %s %s has no row in routeTable (web/routes_test.go): add one line\n\t{http.Method%s, %q, <access>},\nwhere <access> is public, login, static, staffPage, apiUser, apiStaff, apiStaffWrite, apiStaffHidden, matrix or metrics",
				r.method, r.pattern, methodConst(r.method), r.pattern)
		}
	}
	for _, rule := range routeTable {
		if _, err := expectations(rule.access, rule.method); err != nil {
			t.Errorf("routeTable row %s %s: %v", rule.method, rule.pattern, err)
		}
		found := false
		for _, r := range walked {
			if r.pattern == rule.pattern && (rule.method == r.method || rule.method == "*") {
				found = true
			}
		}
		if !found {
			t.Errorf("routeTable has a row for %s %s, but the router has no such route: remove the row (or fix its method/pattern)", rule.method, rule.pattern)
		}
	}
}

func methodConst(m string) string {
	if m == "" {
		return ""
	}
	return m[:1] + strings.ToLower(m[1:])
}

// TestRouteAuthorization calls every route as every kind of caller and checks each gets
// what the route's access class promises. Unsafe methods carry an empty JSON object and
// same-origin browser headers; a cross-site variant must be refused on cookie routes.
func TestRouteAuthorization(t *testing.T) {
	ts := testserver.New(t, testserver.Options{Env: map[string]string{"METRICS_TOKEN": testMetricsToken}})
	ctx := context.Background()
	// A configured, enabled appservice, so that the homeserver's routes check a real token.
	if err := ts.Web.Settings().Set(ctx, map[string]string{
		settings.ASToken.Key: strings.Repeat("a", 64), settings.HSToken.Key: strings.Repeat("b", 64), settings.Enabled.Key: "true",
	}); err != nil {
		t.Fatal(err)
	}

	for _, r := range walkRoutes(t, ts) {
		rule, ok := ruleFor(r)
		if !ok {
			continue // TestRouteTableIsComplete reports it
		}
		want, err := expectations(rule.access, r.method)
		if err != nil {
			continue
		}
		path := samplePath(t, r.pattern, rule.access)
		t.Run(r.method+" "+r.pattern, func(t *testing.T) {
			// Fresh credentials per route: a route may end a session or revoke a token.
			creds := map[caller]func(*http.Request){
				anonymous:    func(*http.Request) {},
				userToken:    withToken(ts.NewToken(t, ts.User)),
				staffToken:   withToken(ts.NewToken(t, ts.Staff)),
				userSession:  withCookie(ts.SessionCookie(t, ts.User)),
				staffSession: withCookie(ts.SessionCookie(t, ts.Staff)),
				hsToken:      withBearer(currentHSToken(t, ts)),
				wrongHS:      withBearer(strings.Repeat("0", 64)),
				metricsTok:   withBearer(testMetricsToken),
			}
			callers := make([]caller, 0, len(want))
			for c := range want {
				callers = append(callers, c)
			}
			sort.Slice(callers, func(i, j int) bool { return callers[i] < callers[j] })
			for _, c := range callers {
				if c == hsToken { // read it again: a route (setup) may have rotated it
					creds[c] = withBearer(currentHSToken(t, ts))
				}
				req := routeRequest(t, ts, r.method, path, rule.access, "same-origin")
				creds[c](req)
				resp, body := do(t, plainClient, req)
				if msg := check(want[c], resp, body); msg != "" {
					t.Errorf("%s %s as %s: %s (access %s, want %v)", r.method, path, c, msg, rule.access, want[c])
				}
			}

			// Cookie-authenticated writes refuse cross-site requests (CSRF), whoever asks.
			if !isSafe(r.method) && rule.access != public && rule.access != static && rule.access != matrixHS {
				req := routeRequest(t, ts, r.method, path, rule.access, "cross-site")
				withCookie(ts.SessionCookie(t, ts.Staff))(req)
				if resp, _ := do(t, plainClient, req); resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s %s cross-site with a staff session: %d, want 403 (CSRF)", r.method, path, resp.StatusCode)
				}
			}
		})
	}
}

func withToken(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Token "+tok) }
}

func withBearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func withCookie(c *http.Cookie) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(c) }
}

func currentHSToken(t *testing.T, ts *testserver.Server) string {
	t.Helper()
	ms, err := ts.Web.Settings().Matrix(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ms.HSToken
}

// routeRequest builds the request for a route: unsafe methods carry {} and, unless the
// route is the homeserver's, the fetch metadata of a browser on site ("same-origin" or
// "cross-site").
func routeRequest(t *testing.T, ts *testserver.Server, method, path string, a access, site string) *http.Request {
	t.Helper()
	var body *strings.Reader
	if !isSafe(method) {
		body = strings.NewReader("{}")
	}
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequest(method, ts.URL+path, body)
	} else {
		req, err = http.NewRequest(method, ts.URL+path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if a != matrixHS {
			req.Header.Set("Sec-Fetch-Site", site)
			if site == "same-origin" {
				req.Header.Set("Origin", ts.URL)
			} else {
				req.Header.Set("Origin", "https://evil.example")
			}
		}
	}
	return req
}

// check returns "" when resp is the outcome o, else what is wrong.
func check(o outcome, resp *http.Response, body []byte) string {
	status := resp.StatusCode
	loc := resp.Header.Get("Location")
	toLoginPage := status == http.StatusSeeOther && (loc == "/login" || strings.HasPrefix(loc, "/login?"))
	got := fmt.Sprintf("got %d", status)
	if loc != "" {
		got += " to " + loc
	}
	switch o {
	case allowed:
		switch {
		case status == http.StatusUnauthorized || status == http.StatusForbidden || toLoginPage:
			return got + ": refused"
		case status == http.StatusInternalServerError:
			return got + ": a plausible request must not crash the handler (bad input is a 4xx)"
		}
	case notForbidden:
		if status == http.StatusForbidden || status >= 500 {
			return got
		}
	case toLogin:
		if !toLoginPage {
			return got
		}
	case unauthorized:
		if status != http.StatusUnauthorized || !hasJSONField(body, "detail") {
			return got + " " + truncate(body)
		}
	case forbidden:
		if status != http.StatusForbidden {
			return got
		}
		if strings.HasPrefix(resp.Request.URL.Path, "/api/") && !hasJSONField(body, "detail") {
			return got + " without a {\"detail\"} body: " + truncate(body)
		}
	case matrixDenied:
		if (status != http.StatusUnauthorized && status != http.StatusForbidden) || !hasJSONField(body, "errcode") {
			return got + " " + truncate(body)
		}
	case notFound:
		if status != http.StatusNotFound || !hasJSONField(body, "detail") {
			return got + " " + truncate(body)
		}
	}
	return ""
}

func hasJSONField(body []byte, field string) bool {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	s, ok := m[field].(string)
	return ok && s != ""
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// Staff accounts in the directory API (issue 13). Staff accounts are this server's
// operators, not platform users: the routes that name a user answer differently when
// the user is a staff account. staffAccountTable has one row per such route (every
// /api/users/ route: TestStaffAccountRoutes fails for one without a row).
const (
	// staffAccountList: the list; non-staff callers do not see staff accounts in it.
	staffAccountList access = "staffAccountList"
	// staffAccountRead: a staff account's detail; non-staff callers get 404, as for a
	// user that does not exist.
	staffAccountRead access = "staffAccountRead"
	// staffAccountWrite: a directory write naming a staff account (in the path or, for
	// the upsert, the body's uuid): 403 for staff too, with a detail that says where
	// staff accounts are managed; nothing changes.
	staffAccountWrite access = "staffAccountWrite"
	// staffAccountLink: linking a Matrix account to a staff account is allowed (staff
	// join rooms with one), for staff callers only; it changes no staff account.
	staffAccountLink access = "staffAccountLink"
)

var staffAccountTable = []routeRule{
	{http.MethodGet, "/api/users/", staffAccountList},
	{http.MethodPost, "/api/users/", staffAccountWrite},
	{http.MethodGet, "/api/users/{uuid}/", staffAccountRead},
	{http.MethodPut, "/api/users/{uuid}/", staffAccountWrite},
	{http.MethodPatch, "/api/users/{uuid}/", staffAccountWrite},
	{http.MethodPost, "/api/users/{uuid}/deactivate/", staffAccountWrite},
	// Staff may hold Matrix accounts (joining rooms), so theirs can be linked too: the
	// test server has no homeserver domain, so the answer is the 400 saying so.
	{http.MethodPost, "/api/users/{uuid}/link_matrix_account/", staffAccountLink},
}

// staffAccountExpectations says what each caller gets from a route of access a when the
// user named is a staff account.
func staffAccountExpectations(a access) map[caller]outcome {
	switch a {
	case staffAccountList:
		return map[caller]outcome{anonymous: unauthorized, userToken: staffHidden, userSession: staffHidden, staffToken: staffListed, staffSession: staffListed}
	case staffAccountRead:
		return map[caller]outcome{anonymous: unauthorized, userToken: notFound, userSession: notFound, staffToken: allowed, staffSession: allowed}
	case staffAccountWrite:
		return map[caller]outcome{anonymous: unauthorized, userToken: forbidden, userSession: forbidden, staffToken: staffManaged, staffSession: staffManaged}
	case staffAccountLink:
		return map[caller]outcome{anonymous: unauthorized, userToken: forbidden, userSession: forbidden, staffToken: linkNotSetUp, staffSession: linkNotSetUp}
	}
	return nil
}

const (
	notFound     outcome = iota + 100 // 404 {"detail": ...}
	staffManaged                      // 403 {"detail"} naming the Account page and matrixas createstaff
	staffHidden                       // 200, and the staff account is not in the list
	staffListed                       // 200, and the staff account is in the list
	linkNotSetUp                      // 400 {"detail"}: no homeserver domain to link on (not refused as a staff account)
)

// checkStaffAccount returns "" when resp is the outcome o for the staff account target.
func checkStaffAccount(o outcome, resp *http.Response, body []byte, target *db.User) string {
	got := fmt.Sprintf("got %d %s", resp.StatusCode, truncate(body))
	switch o {
	case notFound:
		if resp.StatusCode != http.StatusNotFound || !hasJSONField(body, "detail") {
			return got
		}
	case staffManaged:
		if resp.StatusCode != http.StatusForbidden || !staffManagedDetail(body) {
			return got
		}
	case linkNotSetUp:
		if resp.StatusCode != http.StatusBadRequest || !hasJSONField(body, "detail") || staffManagedDetail(body) {
			return got
		}
	case staffHidden, staffListed:
		if resp.StatusCode != http.StatusOK {
			return got
		}
		if listed := strings.Contains(string(body), target.UUID); listed != (o == staffListed) {
			return fmt.Sprintf("staff account listed: %v", listed)
		}
	default:
		return check(o, resp, body)
	}
	return ""
}

// TestStaffAccountRoutes calls every /api/users/ route about a staff account (the
// caller's own and another) as every kind of caller, and checks each gets what
// staffAccountTable promises, and that no staff account changed.
func TestStaffAccountRoutes(t *testing.T) {
	ts := testserver.New(t)
	ctx := context.Background()
	other := &db.User{Username: "operator2", Email: "op2@example.org", FullName: "Op Two", IsStaff: true, IsActive: true}
	if err := ts.Store.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, r := range walkRoutes(t, ts) {
		if !strings.HasPrefix(r.pattern, "/api/users/") {
			continue
		}
		found := false
		for _, rule := range staffAccountTable {
			found = found || (rule.method == r.method && rule.pattern == r.pattern)
		}
		if !found {
			t.Errorf("route %s %s names users but has no row in staffAccountTable (web/routes_test.go): say what it does with a staff account", r.method, r.pattern)
		}
	}

	for _, rule := range staffAccountTable {
		for _, target := range []*db.User{ts.Staff, other} {
			t.Run(rule.method+" "+rule.pattern+" on "+target.Username, func(t *testing.T) {
				path := strings.ReplaceAll(rule.pattern, "{uuid}", target.UUID)
				body := ""
				if !isSafe(rule.method) {
					body = fmt.Sprintf(`{"uuid": %q, "username": "renamed", "email": "x@evil.example", "is_active": false}`, target.UUID)
				}
				creds := map[caller]func(*http.Request){
					anonymous:    func(*http.Request) {},
					userToken:    withToken(ts.NewToken(t, ts.User)),
					staffToken:   withToken(ts.NewToken(t, ts.Staff)),
					userSession:  withCookie(ts.SessionCookie(t, ts.User)),
					staffSession: withCookie(ts.SessionCookie(t, ts.Staff)),
				}
				for c, want := range staffAccountExpectations(rule.access) {
					var rd io.Reader
					if body != "" {
						rd = strings.NewReader(body)
					}
					req, err := http.NewRequest(rule.method, ts.URL+path, rd)
					if err != nil {
						t.Fatal(err)
					}
					if body != "" {
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Origin", ts.URL)
					}
					creds[c](req)
					resp, b := do(t, plainClient, req)
					if msg := checkStaffAccount(want, resp, b, target); msg != "" {
						t.Errorf("%s %s as %s: %s (access %s)", rule.method, path, c, msg, rule.access)
					}
				}
			})
		}
	}
	for _, u := range []*db.User{ts.Staff, other} {
		got, err := ts.Store.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Username != u.Username || got.Email != u.Email || !got.IsActive || !got.IsStaff {
			t.Errorf("staff account %s changed through the directory API: %+v", u.Username, got)
		}
	}
}
