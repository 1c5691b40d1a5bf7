package web_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/crypto/bcrypt"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/handlers/ui"
	"matrixas/internal/testserver"
)

// noRedirect makes a client return redirects instead of following them.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// do sends req with client and returns the response with its body read.
func do(t *testing.T, client *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// newReq builds a request to the test server; a cookie, when given, is sent as is.
func newReq(t *testing.T, ts *testserver.Server, method, path string, body io.Reader, cookie *http.Cookie) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	return req
}

// loginReq is a form POST to /login as a browser on this site sends it: from the site's
// public URL when one is configured (a browser there sends that as its Origin).
func loginReq(t *testing.T, ts *testserver.Server, form url.Values, cookie *http.Cookie) *http.Request {
	t.Helper()
	req := newReq(t, ts, http.MethodPost, "/login", strings.NewReader(form.Encode()), cookie)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ts.URL)
	if ts.Config.PublicURL != "" {
		req.Header.Set("Origin", ts.Config.PublicURL)
	}
	return req
}

// plainClient is a client without a cookie jar that does not follow redirects.
var plainClient = &http.Client{CheckRedirect: noRedirect}

// sessionCookieOf returns the session cookie a response sets, or nil.
func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == auth.SessionCookie {
			return c
		}
	}
	return nil
}

// pageAs requests the overview page with a session cookie (nil = anonymous) and returns
// the status and Location.
func pageAs(t *testing.T, ts *testserver.Server, cookie *http.Cookie) (int, string) {
	t.Helper()
	resp, _ := do(t, plainClient, newReq(t, ts, http.MethodGet, "/", nil, cookie))
	return resp.StatusCode, resp.Header.Get("Location")
}

// sessionExists reports whether the session a cookie names has a live row.
func sessionExists(t *testing.T, ts *testserver.Server, c *http.Cookie) bool {
	t.Helper()
	id := ts.SessionID(t, c)
	if id == "" {
		t.Fatalf("cookie %s does not decode", c.Name)
	}
	_, err := ts.Store.SessionByHash(context.Background(), auth.HashToken(id))
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

var staffForm = url.Values{"username": {"staff"}, "password": {testserver.StaffPassword}}

func TestLoginPage(t *testing.T) {
	ts := testserver.New(t)
	resp, body := do(t, plainClient, newReq(t, ts, http.MethodGet, "/login", nil, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /login: %d", resp.StatusCode)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	form := doc.Find(`[data-testid="login-form"]`)
	if form.Length() != 1 || form.AttrOr("method", "") != "post" || form.AttrOr("action", "") != "/login" {
		t.Fatalf("login form missing or wrong: %d", form.Length())
	}
	for _, name := range []string{"username", "password"} {
		if form.Find(`input[name="`+name+`"]`).Length() != 1 {
			t.Errorf("login form has no %s field", name)
		}
	}
	if doc.Find(`[data-testid="nav"]`).Length() != 0 {
		t.Errorf("anonymous login page shows the navigation")
	}
}

func TestLoginFailures(t *testing.T) {
	ts := testserver.New(t)
	tests := []struct {
		name string
		form url.Values
	}{
		{"wrong password", url.Values{"username": {"staff"}, "password": {"not-the-password"}}},
		{"unknown user", url.Values{"username": {"nobody"}, "password": {testserver.StaffPassword}}},
		{"non-staff user", url.Values{"username": {"alice"}, "password": {testserver.StaffPassword}}},
		{"empty form", url.Values{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, plainClient, loginReq(t, ts, tt.form, nil))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if c := sessionCookieOf(resp); c != nil && c.MaxAge >= 0 && c.Value != "" {
				t.Errorf("a failed login set a session cookie")
			}
			doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			if doc.Find(`[data-testid="login-error"]`).Length() != 1 {
				t.Errorf("no login error shown")
			}
			if got := doc.Find(`input[name="username"]`).AttrOr("value", ""); got != tt.form.Get("username") {
				t.Errorf("username field %q, want it kept as %q", got, tt.form.Get("username"))
			}
			if pw := tt.form.Get("password"); pw != "" && strings.Contains(string(body), pw) {
				t.Errorf("the page echoes the password")
			}
		})
	}
	if strings.Contains(ts.Logs.String(), testserver.StaffPassword) || strings.Contains(ts.Logs.String(), "not-the-password") {
		t.Errorf("a password reached the logs")
	}
}

func TestLoginCookie(t *testing.T) {
	tests := []struct {
		name       string
		publicURL  string
		wantSecure bool
	}{
		{"plain http", "", false},
		{"http public URL", "http://bridge.example.org", false},
		{"https public URL", "https://bridge.example.org", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := testserver.New(t, testserver.Options{Env: map[string]string{"PUBLIC_URL": tt.publicURL}})
			resp, _ := do(t, plainClient, loginReq(t, ts, staffForm, nil))
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
				t.Fatalf("login: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
			}
			c := sessionCookieOf(resp)
			if c == nil {
				t.Fatal("no session cookie")
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != tt.wantSecure {
				t.Errorf("cookie HttpOnly=%v SameSite=%v Path=%q Secure=%v; want HttpOnly, Lax, /, Secure=%v",
					c.HttpOnly, c.SameSite, c.Path, c.Secure, tt.wantSecure)
			}
			if c.MaxAge <= 0 || c.MaxAge > int(auth.SessionMaxAge.Seconds()) {
				t.Errorf("cookie Max-Age %d", c.MaxAge)
			}
			if !sessionExists(t, ts, c) {
				t.Errorf("no server-side session row")
			}
			if status, _ := pageAs(t, ts, c); status != http.StatusOK {
				t.Errorf("the new session does not open the dashboard: %d", status)
			}
		})
	}
}

// TestLoginRenewsSessionID checks there is no session fixation: whatever session the
// browser held before, signing in binds the user to a new id and deletes the old row.
func TestLoginRenewsSessionID(t *testing.T) {
	ts := testserver.New(t)
	tests := []struct {
		name   string
		before func(t *testing.T) *http.Cookie
	}{
		{"anonymous session (planted by an attacker, say)", func(t *testing.T) *http.Cookie { return ts.SessionCookie(t, nil) }},
		{"already signed in", func(t *testing.T) *http.Cookie { return ts.SessionCookie(t, ts.Staff) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.before(t)
			if !sessionExists(t, ts, before) {
				t.Fatal("the session before login has no row")
			}
			resp, _ := do(t, plainClient, loginReq(t, ts, staffForm, before))
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("login: %d", resp.StatusCode)
			}
			after := sessionCookieOf(resp)
			if after == nil {
				t.Fatal("login set no cookie")
			}
			if after.Value == before.Value || ts.SessionID(t, after) == ts.SessionID(t, before) {
				t.Fatal("the session id was not renewed at login")
			}
			if sessionExists(t, ts, before) {
				t.Errorf("the old session row survived the login")
			}
			row, err := ts.Store.SessionByHash(context.Background(), auth.HashToken(ts.SessionID(t, after)))
			if err != nil || row.UserID != ts.Staff.ID {
				t.Errorf("new session row %+v, %v; want bound to staff", row, err)
			}
			if status, loc := pageAs(t, ts, before); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
				t.Errorf("the old cookie still works: %d %q", status, loc)
			}
			if status, _ := pageAs(t, ts, after); status != http.StatusOK {
				t.Errorf("the new cookie does not work: %d", status)
			}
		})
	}
}

func TestLoginNextIsLocalOnly(t *testing.T) {
	ts := testserver.New(t)
	tests := []struct {
		next, want string
	}{
		{"/rooms?x=1", "/rooms?x=1"},
		{"/transactions", "/transactions"},
		{"", "/"},
		{"//evil.example", "/"},
		{"//evil.example/path", "/"},
		{"https://evil.example", "/"},
		{"http://evil.example/login", "/"},
		{`/\evil.example`, "/"},
		{"/\t/evil.example", "/"},
		{"evil.example", "/"},
		{"javascript:alert(1)", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.next, func(t *testing.T) {
			// The form carries next through...
			resp, body := do(t, plainClient, newReq(t, ts, http.MethodGet, "/login?next="+url.QueryEscape(tt.next), nil, nil))
			doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(body)))
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /login: %d, %v", resp.StatusCode, err)
			}
			hidden := doc.Find(`[data-testid="login-form"] input[name="next"]`).AttrOr("value", "")
			wantHidden := tt.want
			if tt.want == "/" {
				wantHidden = "" // refused (or empty): the form carries nothing
			}
			if hidden != wantHidden {
				t.Errorf("hidden next %q, want %q", hidden, wantHidden)
			}
			// ...and the login redirects only to a local path.
			form := url.Values{"username": {"staff"}, "password": {testserver.StaffPassword}, "next": {tt.next}}
			resp, _ = do(t, plainClient, loginReq(t, ts, form, nil))
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.want {
				t.Errorf("login with next=%q: %d to %q, want 303 to %q", tt.next, resp.StatusCode, resp.Header.Get("Location"), tt.want)
			}
		})
	}
}

func TestLoginRedirect(t *testing.T) {
	tests := []struct {
		name, method, target string
		htmx                 bool
		wantStatus           int
		wantLocation         string // Location, or HX-Redirect for htmx
	}{
		{"page with query", http.MethodGet, "/rooms?x=1", false, http.StatusSeeOther, "/login?next=%2Frooms%3Fx%3D1"},
		{"overview", http.MethodGet, "/", false, http.StatusSeeOther, "/login"},
		{"form post", http.MethodPost, "/rooms/abc/retry", false, http.StatusSeeOther, "/login"},
		{"htmx request", http.MethodGet, "/rooms", true, http.StatusUnauthorized, "/login?next=%2Frooms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://bridge.example.org"+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.htmx {
				req.Header.Set("HX-Request", "true")
			}
			rec := httptest.NewRecorder()
			ui.LoginRedirect(rec, req)
			got := rec.Header().Get("Location")
			if tt.htmx {
				got = rec.Header().Get("HX-Redirect")
			}
			if rec.Code != tt.wantStatus || got != tt.wantLocation {
				t.Errorf("%d to %q, want %d to %q", rec.Code, got, tt.wantStatus, tt.wantLocation)
			}
		})
	}
}

func TestAnonymousPagesRedirectToLogin(t *testing.T) {
	ts := testserver.New(t)
	status, loc := pageAs(t, ts, nil)
	if status != http.StatusSeeOther || loc != "/login" {
		t.Errorf("GET / anonymous: %d to %q, want 303 to /login", status, loc)
	}
	// An API token does not open the dashboard: tokens count under /api/ only.
	req := newReq(t, ts, http.MethodGet, "/", nil, nil)
	req.Header.Set("Authorization", "Token "+ts.StaffToken)
	if resp, _ := do(t, plainClient, req); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / with a staff API token: %d, want a redirect to /login", resp.StatusCode)
	}
	// A signed-in non-staff user (who cannot use the login form, but may hold a session
	// from elsewhere) is refused, not redirected.
	resp, body := do(t, plainClient, newReq(t, ts, http.MethodGet, "/", nil, ts.SessionCookie(t, ts.User)))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `data-testid="error-page"`) {
		t.Errorf("GET / as non-staff: %d, want the 403 page", resp.StatusCode)
	}
}

func TestLogoutRevokesServerSide(t *testing.T) {
	ts := testserver.New(t)
	cookie := ts.SessionCookie(t, ts.Staff)
	other := ts.SessionCookie(t, ts.Staff) // another browser of the same user
	if status, _ := pageAs(t, ts, cookie); status != http.StatusOK {
		t.Fatalf("session does not work before logout: %d", status)
	}
	req := newReq(t, ts, http.MethodPost, "/logout", nil, cookie)
	req.Header.Set("Origin", ts.URL)
	resp, _ := do(t, plainClient, req)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := sessionCookieOf(resp); c == nil || c.MaxAge >= 0 {
		t.Errorf("logout does not clear the cookie: %+v", c)
	}
	if sessionExists(t, ts, cookie) {
		t.Errorf("the session row survived logout")
	}
	// Replaying the old cookie (copied before logout) gets the login page.
	if status, loc := pageAs(t, ts, cookie); status != http.StatusSeeOther || loc != "/login" {
		t.Errorf("old cookie after logout: %d to %q, want 303 to /login", status, loc)
	}
	// Logout ends this session only.
	if status, _ := pageAs(t, ts, other); status != http.StatusOK {
		t.Errorf("logout ended the user's other session: %d", status)
	}
}

func TestPasswordChangeRevokesSessions(t *testing.T) {
	ts := testserver.New(t)
	ctx := context.Background()
	first, second := ts.SessionCookie(t, ts.Staff), ts.SessionCookie(t, ts.Staff)
	alice := ts.SessionCookie(t, ts.User)

	// The lowest bcrypt cost keeps the test fast; SetPassword does not care.
	h, err := bcrypt.GenerateFromPassword([]byte("a brand new password"), bcrypt.MinCost)
	hash := string(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Store.SetPassword(ctx, ts.Staff.ID, hash); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*http.Cookie{first, second} {
		if status, loc := pageAs(t, ts, c); status != http.StatusSeeOther || loc != "/login" {
			t.Errorf("staff session %d after password change: %d to %q, want 303 to /login", i, status, loc)
		}
	}
	if !sessionExists(t, ts, alice) {
		t.Errorf("another user's session was revoked")
	}
	if resp, _ := do(t, plainClient, loginReq(t, ts, staffForm, nil)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old password: %d, want 401", resp.StatusCode)
	}
	form := url.Values{"username": {"staff"}, "password": {"a brand new password"}}
	if resp, _ := do(t, plainClient, loginReq(t, ts, form, nil)); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("new password: %d, want 303", resp.StatusCode)
	}
	// API tokens are not sessions: a password change leaves them working.
	if status := ts.JSON(t, http.MethodGet, "/api/foundation-probe/", ts.StaffToken, nil, nil); status != http.StatusNotFound {
		t.Errorf("staff token after password change: %d, want it still accepted (404 for the unknown path)", status)
	}
}

func TestDeactivationRevokesSessionsAndTokens(t *testing.T) {
	ts := testserver.New(t)
	ctx := context.Background()
	cookie := ts.SessionCookie(t, ts.Staff)
	token2 := ts.NewToken(t, ts.Staff)
	aliceToken := ts.UserToken
	// An unknown path under /api/ answers 404 to an accepted token and 401 to a refused one.
	const probe = "/api/foundation-probe/"
	for _, tok := range []string{ts.StaffToken, token2} {
		if status := ts.JSON(t, http.MethodGet, probe, tok, nil, nil); status != http.StatusNotFound {
			t.Fatalf("token before deactivation: %d", status)
		}
	}

	// Another active staff user, so that deactivating this one is allowed (the last one
	// never is: db.ErrLastStaff).
	if err := ts.Store.CreateUser(ctx, &db.User{Username: "operator2", IsStaff: true, IsActive: true}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Store.SetUserActive(ctx, ts.Staff.ID, false); err != nil {
		t.Fatal(err)
	}
	if status, loc := pageAs(t, ts, cookie); status != http.StatusSeeOther || loc != "/login" {
		t.Errorf("session after deactivation: %d to %q", status, loc)
	}
	if sessionExists(t, ts, cookie) {
		t.Errorf("the session row survived deactivation")
	}
	for _, tok := range []string{ts.StaffToken, token2} {
		var body respond.Detail
		if status := ts.JSON(t, http.MethodGet, probe, tok, nil, &body); status != http.StatusUnauthorized || body.Detail == "" {
			t.Errorf("token after deactivation: %d %+v, want 401 with a detail", status, body)
		}
	}
	if tokens, err := ts.Store.ListAPITokens(ctx, ts.Staff.ID); err != nil || len(tokens) != 0 {
		t.Errorf("tokens left after deactivation: %d, %v", len(tokens), err)
	}
	if resp, _ := do(t, plainClient, loginReq(t, ts, staffForm, nil)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login while deactivated: %d, want 401", resp.StatusCode)
	}
	if status := ts.JSON(t, http.MethodGet, probe, aliceToken, nil, nil); status != http.StatusNotFound {
		t.Errorf("another user's token was revoked: %d", status)
	}

	// Reactivation lets the user sign in again but does not bring the tokens back.
	if err := ts.Store.SetUserActive(ctx, ts.Staff.ID, true); err != nil {
		t.Fatal(err)
	}
	if status := ts.JSON(t, http.MethodGet, probe, ts.StaffToken, nil, nil); status != http.StatusUnauthorized {
		t.Errorf("token after reactivation: %d, want 401", status)
	}
	if resp, _ := do(t, plainClient, loginReq(t, ts, staffForm, nil)); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login after reactivation: %d, want 303", resp.StatusCode)
	}
}

// clientFrom returns a client whose connections come from the loopback address ip, so
// that the server sees distinct client addresses.
func clientFrom(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: noRedirect}
}

func TestLoginThrottle(t *testing.T) {
	const limit = 5
	fail := func(t *testing.T, ts *testserver.Server, c *http.Client, username string) {
		t.Helper()
		form := url.Values{"username": {username}, "password": {"wrong password"}}
		if resp, _ := do(t, c, loginReq(t, ts, form, nil)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed login %s: %d, want 401", username, resp.StatusCode)
		}
	}
	assertThrottled := func(t *testing.T, ts *testserver.Server, c *http.Client) {
		t.Helper()
		resp, body := do(t, c, loginReq(t, ts, staffForm, nil))
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 429", resp.StatusCode)
		}
		after, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || after < 1 || after > 15*60+1 {
			t.Errorf("Retry-After %q, want seconds up to 15 minutes", resp.Header.Get("Retry-After"))
		}
		if sessionCookieOf(resp) != nil && sessionCookieOf(resp).MaxAge >= 0 {
			t.Errorf("a throttled login set a session cookie")
		}
		if !strings.Contains(string(body), `data-testid="login-error"`) {
			t.Errorf("the 429 page does not explain itself")
		}
	}
	assertAllowed := func(t *testing.T, ts *testserver.Server, c *http.Client) {
		t.Helper()
		if resp, _ := do(t, c, loginReq(t, ts, staffForm, nil)); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d, want 303", resp.StatusCode)
		}
	}

	t.Run("per username, from any address", func(t *testing.T) {
		ts := testserver.New(t)
		for i := range limit {
			fail(t, ts, clientFrom(t, "127.0.0."+strconv.Itoa(10+i)), "staff")
		}
		// The right password from a fresh address gets in: failures elsewhere must not
		// lock the owner out (issue 13: anyone could keep the admin out for good).
		assertAllowed(t, ts, clientFrom(t, "127.0.0.20"))
		// Another user is not affected from yet another address.
		form := url.Values{"username": {"alice"}, "password": {testserver.StaffPassword}}
		if resp, _ := do(t, clientFrom(t, "127.0.0.21"), loginReq(t, ts, form, nil)); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("alice (non-staff) from a fresh address: %d, want 401 (not 429)", resp.StatusCode)
		}
	})

	t.Run("per address, for any username", func(t *testing.T) {
		ts := testserver.New(t)
		attacker := clientFrom(t, "127.0.0.30")
		for i := range limit {
			fail(t, ts, attacker, "user"+strconv.Itoa(i))
		}
		assertThrottled(t, ts, attacker)
		// The same user from another address still gets in.
		assertAllowed(t, ts, clientFrom(t, "127.0.0.31"))
	})

	t.Run("below the limit", func(t *testing.T) {
		ts := testserver.New(t)
		c := clientFrom(t, "127.0.0.40")
		for range limit - 1 {
			fail(t, ts, c, "staff")
		}
		assertAllowed(t, ts, c)
	})
}

func TestCrossOriginProtection(t *testing.T) {
	ts := testserver.New(t)
	tests := []struct {
		name    string
		headers map[string]string
		allowed bool
	}{
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"same-site (a sibling subdomain)", map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"foreign Origin without fetch metadata", map[string]string{"Origin": "https://evil.example"}, false},
		{"same host, another port", map[string]string{"Origin": "http://127.0.0.1:1"}, false},
		{"cross-site htmx request", map[string]string{"Sec-Fetch-Site": "cross-site", "HX-Request": "true"}, false},
		{"same-origin htmx request", map[string]string{"Sec-Fetch-Site": "same-origin", "HX-Request": "true"}, true},
		{"same Origin without fetch metadata", map[string]string{"Origin": "<self>"}, true},
		{"user-initiated (bookmark, typed)", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"non-browser client", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cookie := ts.SessionCookie(t, ts.Staff)
			req := newReq(t, ts, http.MethodPost, "/logout", nil, cookie)
			for k, v := range tt.headers {
				req.Header.Set(k, strings.ReplaceAll(v, "<self>", ts.URL))
			}
			resp, body := do(t, plainClient, req)
			if tt.allowed {
				if resp.StatusCode != http.StatusSeeOther || sessionExists(t, ts, cookie) {
					t.Errorf("status %d, session kept %v; want the logout to happen", resp.StatusCode, sessionExists(t, ts, cookie))
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			if !strings.Contains(string(body), `data-testid="error-page"`) {
				t.Errorf("the refusal of a page request is not the error page")
			}
			if !sessionExists(t, ts, cookie) {
				t.Errorf("the refused request logged the user out")
			}
		})
	}

	t.Run("cross-site login", func(t *testing.T) {
		req := loginReq(t, ts, staffForm, nil)
		req.Header.Set("Origin", "https://evil.example")
		if resp, _ := do(t, plainClient, req); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site login: %d, want 403 (login CSRF)", resp.StatusCode)
		}
	})

	t.Run("cross-site API write answers JSON", func(t *testing.T) {
		// With the session cookie a browser would send along: a token alone is not a
		// browser's request and skips this check (TestCrossOriginSkipsTokenOnlyAPIRequests).
		req := newReq(t, ts, http.MethodPost, "/api/foundation-probe/", strings.NewReader("{}"), ts.SessionCookie(t, ts.Staff))
		req.Header.Set("Authorization", "Token "+ts.StaffToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, body := do(t, plainClient, req)
		if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(string(body), `"detail"`) {
			t.Errorf("cross-site API POST: %d %q %s, want 403 {\"detail\": ...}", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})

	t.Run("cross-site navigation is a safe GET", func(t *testing.T) {
		req := newReq(t, ts, http.MethodGet, "/", nil, ts.SessionCookie(t, ts.Staff))
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if resp, _ := do(t, plainClient, req); resp.StatusCode != http.StatusOK {
			t.Errorf("cross-site GET /: %d, want 200 (links from other sites work)", resp.StatusCode)
		}
	})
}

func TestAPITokenErrors(t *testing.T) {
	ts := testserver.New(t)
	tests := []struct {
		name, auth string
		want       int
	}{
		{"unknown token", "Token 0000000000000000000000000000000000000000", http.StatusUnauthorized},
		{"valid token", "Token " + ts.UserToken, http.StatusNotFound},
		{"valid token, extra spaces", "Token   " + ts.UserToken + " ", http.StatusNotFound},
		{"other scheme is ignored", "Bearer " + ts.StaffToken, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newReq(t, ts, http.MethodGet, "/api/foundation-probe/", nil, nil)
			req.Header.Set("Authorization", tt.auth)
			resp, body := do(t, plainClient, req)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(string(body), `"detail"`) {
				t.Errorf("body %s is not {\"detail\": ...}", body)
			}
			if tt.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
}

// TestSignInWaitsForTheFirstStaffUser: on a first start the first staff user is created
// while the server already serves (its password's hashing is most of the start); a
// sign-in meanwhile waits for it rather than fail, and gets in once it exists.
func TestSignInWaitsForTheFirstStaffUser(t *testing.T) {
	created := make(chan struct{})
	ts := testserver.New(t, testserver.Options{FirstRun: created})
	form := url.Values{"username": {"first"}, "password": {"first-run-pass-1"}}

	// Before the user exists, a sign-in is not answered: the client gives up first.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if resp, err := plainClient.Do(loginReq(t, ts, form, nil).WithContext(ctx)); err == nil {
		resp.Body.Close()
		t.Fatalf("a sign-in before the first staff user exists was answered %d; want it to wait", resp.StatusCode)
	}

	answer := make(chan int, 1)
	go func() {
		resp, err := plainClient.Do(loginReq(t, ts, form, nil))
		if err != nil {
			answer <- 0
			return
		}
		resp.Body.Close()
		answer <- resp.StatusCode
	}()
	hash, err := auth.NewPasswords(bcrypt.MinCost).Hash("first-run-pass-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Store.CreateUser(context.Background(), &db.User{Username: "first", IsStaff: true, IsActive: true, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	close(created)
	if code := <-answer; code != http.StatusSeeOther {
		t.Errorf("sign-in once the first staff user exists: %d, want 303", code)
	}
}
