package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"matrixas/db"
	"matrixas/internal/testserver"
)

// checkSecurityHeaders returns what is wrong with a response's security headers: every
// response is nosniff with a referrer policy; an HTML one also has a CSP that forbids
// framing and inline script and style.
func checkSecurityHeaders(resp *http.Response) []string {
	var bad []string
	h := resp.Header
	if h.Get("X-Content-Type-Options") != "nosniff" {
		bad = append(bad, "X-Content-Type-Options is "+h.Get("X-Content-Type-Options"))
	}
	switch h.Get("Referrer-Policy") {
	case "same-origin", "no-referrer", "strict-origin", "strict-origin-when-cross-origin":
	default:
		bad = append(bad, "Referrer-Policy is "+h.Get("Referrer-Policy"))
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		return bad
	}
	csp := h.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name != "" {
			directives[name] = value
		}
	}
	if directives["frame-ancestors"] != "'none'" {
		bad = append(bad, "CSP frame-ancestors is "+directives["frame-ancestors"])
	}
	for _, unsafe := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "data: 'self'"} {
		for _, d := range []string{"default-src", "script-src", "style-src"} {
			if strings.Contains(" "+directives[d]+" ", " "+unsafe+" ") {
				bad = append(bad, "CSP "+d+" allows "+unsafe)
			}
		}
	}
	if directives["script-src"] == "" && directives["default-src"] == "" {
		bad = append(bad, "CSP has no script-src or default-src: "+csp)
	}
	if directives["object-src"] != "'none'" {
		bad = append(bad, "CSP object-src is "+directives["object-src"])
	}
	return bad
}

// inlineCode returns what in an HTML page the CSP would block: inline scripts, style
// attributes and <style> blocks, event handler attributes, javascript: URLs.
func inlineCode(body []byte) []string {
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(body)))
	if err != nil {
		return []string{"not HTML: " + err.Error()}
	}
	var bad []string
	doc.Find("script:not([src])").Each(func(_ int, s *goquery.Selection) { bad = append(bad, "inline <script>") })
	doc.Find("style").Each(func(_ int, s *goquery.Selection) { bad = append(bad, "<style> block") })
	doc.Find("*").Each(func(_ int, s *goquery.Selection) {
		for _, a := range s.Nodes[0].Attr {
			switch {
			case a.Key == "style":
				bad = append(bad, "style attribute on <"+goquery.NodeName(s)+">")
			case strings.HasPrefix(a.Key, "on"):
				bad = append(bad, a.Key+" attribute on <"+goquery.NodeName(s)+">")
			case (a.Key == "href" || a.Key == "src" || a.Key == "action") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:"):
				bad = append(bad, "javascript: URL")
			}
		}
	})
	return bad
}

// TestSecurityHeadersOnEveryPage walks the real router and fetches every GET route, as
// staff (with a room, project and user to show, so detail pages render) and as an
// anonymous visitor, plus the error pages: every answer carries the security headers, and
// no HTML page has inline code the CSP would block (or need 'unsafe-inline' for).
func TestSecurityHeadersOnEveryPage(t *testing.T) {
	ts := testserver.New(t)
	ctx := context.Background()
	enableAppservice(t, ts)
	// Something for the detail pages to show.
	p, _, err := ts.Store.PutProject(ctx, db.DirectoryProject{Name: "Headers"}, false)
	if err != nil {
		t.Fatal(err)
	}
	room, err := ts.Store.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]string{
		"/rooms/{uuid}":    "/rooms/" + room.UUID,
		"/projects/{uuid}": "/projects/" + p.UUID,
		"/users/{uuid}":    "/users/" + ts.User.UUID,
	}
	staff := ts.SessionCookie(t, ts.Staff)

	var paths []string
	for _, r := range walkRoutes(t, ts) {
		if r.method != http.MethodGet {
			continue
		}
		rule, ok := ruleFor(r)
		if !ok {
			t.Errorf("route %s has no access rule", r.pattern)
			continue
		}
		path := samplePath(t, r.pattern, rule.access)
		if s, ok := samples[r.pattern]; ok {
			path = s
		}
		paths = append(paths, path)
	}
	// Error pages and fragments too.
	paths = append(paths, "/no-such-page", "/api/no-such-endpoint/", "/diagnostics/results?run=1", "/static/no-such-file.css")

	htmlPages := 0
	for _, path := range paths {
		for _, who := range []string{"staff", "anonymous", "htmx"} {
			req := newReq(t, ts, http.MethodGet, path, nil, nil)
			switch who {
			case "staff":
				req.AddCookie(staff)
			case "htmx":
				req.AddCookie(staff)
				req.Header.Set("HX-Request", "true")
			}
			if strings.HasPrefix(path, "/_matrix/") {
				req.Header.Set("Authorization", "Bearer "+hsTestToken)
			}
			resp, body := do(t, plainClient, req)
			for _, msg := range checkSecurityHeaders(resp) {
				t.Errorf("GET %s as %s (%d): %s", path, who, resp.StatusCode, msg)
			}
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				htmlPages++
				for _, msg := range inlineCode(body) {
					t.Errorf("GET %s as %s: %s (blocked by the CSP)", path, who, msg)
				}
			}
		}
	}
	// A 405 and a 403.
	for _, c := range []struct {
		method, path string
		cookie       *http.Cookie
	}{
		{http.MethodDelete, "/login", nil},
		{http.MethodGet, "/", ts.SessionCookie(t, ts.User)},
	} {
		resp, _ := do(t, plainClient, newReq(t, ts, c.method, c.path, nil, c.cookie))
		for _, msg := range checkSecurityHeaders(resp) {
			t.Errorf("%s %s (%d): %s", c.method, c.path, resp.StatusCode, msg)
		}
	}
	if htmlPages < 20 {
		t.Errorf("only %d HTML answers checked: the walk missed the pages", htmlPages)
	}
	t.Logf("%d paths, %d HTML answers checked", len(paths), htmlPages)
}

// TestSecretsAreNotCached: every answer that carries a secret says Cache-Control:
// no-store, so no browser or proxy keeps it: the setup answer (API and dashboard), the
// registration download, and the account page showing a new API token.
func TestSecretsAreNotCached(t *testing.T) {
	ts := testserver.New(t, testserver.Options{Env: map[string]string{"MATRIX_HOMESERVER_URL": "http://127.0.0.1:9", "MATRIX_HOMESERVER_DOMAIN": "localhost",
		"MATRIX_USER_REGISTRATION_SECRET": "registration-secret-for-cache-test"}})
	browser := ts.Browser(t)
	setup, _ := json.Marshal(map[string]string{"url": ts.URL})
	formPost := func(path string, v url.Values) *http.Request {
		req := newReq(t, ts, http.MethodPost, path, strings.NewReader(v.Encode()), nil)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", ts.URL)
		return req
	}
	apiReq := func(method, path, body string) *http.Request {
		var req *http.Request
		if body != "" {
			req = newReq(t, ts, method, path, strings.NewReader(body), nil)
			req.Header.Set("Content-Type", "application/json")
		} else {
			req = newReq(t, ts, method, path, nil, nil)
		}
		req.Header.Set("Authorization", "Token "+ts.StaffToken)
		return req
	}
	tests := []struct {
		name   string
		client *http.Client
		req    func() *http.Request
		status int
		secret string // what the body shows: checked so the row tests a page that has it
	}{
		{"setup (API)", plainClient, func() *http.Request {
			return apiReq(http.MethodPost, "/api/admin/matrix-appservice/setup/", string(setup))
		}, http.StatusOK, "as_token"},
		{"registration download", plainClient, func() *http.Request {
			return apiReq(http.MethodGet, "/api/admin/matrix-appservice/registration.yaml", "")
		}, http.StatusOK, "hs_token"},
		{"setup (dashboard)", browser, func() *http.Request {
			return formPost("/setup", url.Values{"url": {ts.URL}, "confirm_rotate": {"yes"}})
		}, http.StatusOK, "hs_token"},
		{"new API token (account page)", browser, func() *http.Request { return formPost("/account/tokens", url.Values{"name": {"cache test"}}) }, http.StatusOK, `data-testid="new-token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.client, tt.req())
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tt.status, body)
			}
			if !strings.Contains(string(body), tt.secret) {
				t.Fatalf("the answer does not carry %s: %.300s", tt.secret, body)
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
}
