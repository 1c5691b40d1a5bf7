package web_test

import (
	"net/http"
	"strings"
	"testing"

	"matrixas/internal/testserver"
)

// TestAPIHeadAnswersLikeGet: HEAD on every GET route under /api/ answers as GET does
// (status, content type, length), without a body, for every kind of caller; the routes
// are walked from the real router, so a new GET route is covered without editing this.
func TestAPIHeadAnswersLikeGet(t *testing.T) {
	ts := testserver.New(t)
	callers := map[string]func(*http.Request){
		"anonymous":       func(*http.Request) {},
		"non-staff token": withToken(ts.UserToken),
		"staff token":     withToken(ts.StaffToken),
		"staff session":   withCookie(ts.SessionCookie(t, ts.Staff)),
	}
	n := 0
	for _, r := range walkRoutes(t, ts) {
		if r.method != http.MethodGet || !strings.HasPrefix(r.pattern, "/api/") {
			continue
		}
		n++
		path := samplePath(t, r.pattern, apiUser)
		for name, cred := range callers {
			get := newReq(t, ts, http.MethodGet, path, nil, nil)
			cred(get)
			getResp, getBody := do(t, plainClient, get)
			head := newReq(t, ts, http.MethodHead, path, nil, nil)
			cred(head)
			headResp, headBody := do(t, plainClient, head)
			if headResp.StatusCode != getResp.StatusCode {
				t.Errorf("HEAD %s as %s: %d, GET answers %d", path, name, headResp.StatusCode, getResp.StatusCode)
				continue
			}
			if len(headBody) != 0 {
				t.Errorf("HEAD %s as %s: a %d-byte body", path, name, len(headBody))
			}
			if h, g := headResp.Header.Get("Content-Type"), getResp.Header.Get("Content-Type"); h != g {
				t.Errorf("HEAD %s as %s: Content-Type %q, GET %q", path, name, h, g)
			}
			// The schema is the same on every call, so its length must be too (other
			// answers carry times and durations that differ between two calls).
			if r.pattern == "/api/schema/" && headResp.ContentLength != int64(len(getBody)) {
				t.Errorf("HEAD %s as %s: Content-Length %d, GET's body has %d bytes", path, name, headResp.ContentLength, len(getBody))
			}
		}
	}
	if n < 10 {
		t.Fatalf("walked %d GET routes under /api/, expected the whole API", n)
	}
	// A method the route does not have is still 405, for HEAD's sake too.
	if resp, _ := do(t, plainClient, newReq(t, ts, http.MethodHead, "/api/admin/matrix-appservice/setup/", nil, nil)); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD on a POST-only route: %d, want 405", resp.StatusCode)
	}
}

// TestAPITokenKeywordIsCaseInsensitive: "Token" is matched without regard to case, as
// the reference framework does; a header that is the keyword with no key, or with a key
// holding spaces, is a 401 that says so.
func TestAPITokenKeywordIsCaseInsensitive(t *testing.T) {
	ts := testserver.New(t)
	tests := []struct {
		header string
		want   int
		detail string
	}{
		{"Token " + ts.StaffToken, http.StatusOK, ""},
		{"token " + ts.StaffToken, http.StatusOK, ""},
		{"TOKEN " + ts.StaffToken, http.StatusOK, ""},
		{"ToKeN\t" + ts.StaffToken, http.StatusOK, ""},
		{"token 0000000000000000000000000000000000000000", http.StatusUnauthorized, "Invalid token."},
		{"token", http.StatusUnauthorized, "No credentials provided."},
		{"Token " + ts.StaffToken + " extra", http.StatusUnauthorized, "should not contain spaces"},
		{"Tokens " + ts.StaffToken, http.StatusUnauthorized, ""}, // another keyword: anonymous
	}
	for _, tt := range tests {
		req := newReq(t, ts, http.MethodGet, "/api/admin/matrix-appservice/status/", nil, nil)
		req.Header.Set("Authorization", tt.header)
		resp, body := do(t, plainClient, req)
		if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.detail) {
			t.Errorf("Authorization %q: %d %s, want %d with %q", strings.Replace(tt.header, ts.StaffToken, "<key>", 1), resp.StatusCode, body, tt.want, tt.detail)
		}
	}
}
