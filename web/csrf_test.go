package web_test

import (
	"net/http"
	"strings"
	"testing"

	"matrixas/internal/testserver"
)

// TestCrossOriginWithPublicURL: with PUBLIC_URL set, an unsafe request whose Origin
// differs from it in scheme, host or port is refused, even when the Host header matches
// (as behind a proxy that keeps it) and even when the browser calls it same-origin (a page
// served over plain http is not the https site).
func TestCrossOriginWithPublicURL(t *testing.T) {
	ts := testserver.New(t, testserver.Options{Env: map[string]string{"PUBLIC_URL": "https://bridge.example.org"}})
	tests := []struct {
		name    string
		headers map[string]string
		allowed bool
	}{
		{"the public origin", map[string]string{"Origin": "https://bridge.example.org"}, true},
		{"the public origin, same-origin fetch", map[string]string{"Origin": "https://bridge.example.org", "Sec-Fetch-Site": "same-origin"}, true},
		{"the public origin with its default port", map[string]string{"Origin": "https://bridge.example.org:443"}, true},
		{"the public origin, host in capitals", map[string]string{"Origin": "https://BRIDGE.example.org"}, true},
		{"same host over plain http", map[string]string{"Origin": "http://bridge.example.org"}, false},
		{"same host over plain http, browser says same-origin", map[string]string{"Origin": "http://bridge.example.org", "Sec-Fetch-Site": "same-origin"}, false},
		{"same host, another port", map[string]string{"Origin": "https://bridge.example.org:8443"}, false},
		{"a sibling host", map[string]string{"Origin": "https://evil.bridge.example.org"}, false},
		{"another site", map[string]string{"Origin": "https://evil.example"}, false},
		{"opaque origin", map[string]string{"Origin": "null"}, false},
		{"cross-site fetch metadata, no Origin", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"user-initiated, no Origin", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"non-browser client", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cookie := ts.SessionCookie(t, ts.Staff)
			req := newReq(t, ts, http.MethodPost, "/logout", nil, cookie)
			req.Host = "bridge.example.org" // as a reverse proxy that keeps Host forwards it
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, body := do(t, plainClient, req)
			if tt.allowed {
				if resp.StatusCode != http.StatusSeeOther || sessionExists(t, ts, cookie) {
					t.Errorf("status %d, session kept %v; want the logout to happen", resp.StatusCode, sessionExists(t, ts, cookie))
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `data-testid="error-page"`) {
				t.Errorf("status %d, want the 403 page", resp.StatusCode)
			}
			if !sessionExists(t, ts, cookie) {
				t.Errorf("the refused request logged the user out")
			}
		})
	}
}

// TestCrossOriginSkipsTokenOnlyAPIRequests: a request authenticated by an API token
// that carries no session cookie is not a browser form (a browser cannot add the header
// across sites), so an automation tool that sends an Origin is not refused. With a
// session cookie the browser check applies as before.
func TestCrossOriginSkipsTokenOnlyAPIRequests(t *testing.T) {
	for _, publicURL := range []string{"", "https://bridge.example.org"} {
		t.Run("PUBLIC_URL="+publicURL, func(t *testing.T) {
			ts := testserver.New(t, testserver.Options{Env: map[string]string{"PUBLIC_URL": publicURL}})
			post := func(auth string, cookie *http.Cookie) *http.Response {
				req := newReq(t, ts, http.MethodPost, "/api/projects/", strings.NewReader(`{"name": "From a tool"}`), cookie)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Origin", "https://automation.example")
				req.Header.Set("Sec-Fetch-Site", "cross-site")
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, _ := do(t, plainClient, req)
				return resp
			}
			for _, keyword := range []string{"Token", "token"} {
				if resp := post(keyword+" "+ts.StaffToken, nil); resp.StatusCode != http.StatusCreated {
					t.Errorf("%s token, no cookie, foreign Origin: %d, want 201", keyword, resp.StatusCode)
				}
			}
			if resp := post("Token "+ts.StaffToken, ts.SessionCookie(t, ts.Staff)); resp.StatusCode != http.StatusForbidden {
				t.Errorf("token with a session cookie, foreign Origin: %d, want 403 (CSRF)", resp.StatusCode)
			}
			if resp := post("", ts.SessionCookie(t, ts.Staff)); resp.StatusCode != http.StatusForbidden {
				t.Errorf("session cookie only, foreign Origin: %d, want 403 (CSRF)", resp.StatusCode)
			}
			if resp := post("Bearer "+ts.StaffToken, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("another scheme, foreign Origin: %d, want 403 (not a token request)", resp.StatusCode)
			}
		})
	}
}
