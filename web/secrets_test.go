package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/internal/testserver"
)

// exchange is one request and its answer, as the client saw them.
type exchange struct {
	n       int
	method  string
	path    string // with the query
	status  int
	headers string // every response header but Set-Cookie, "Name: value" lines
	body    string
	cookies []*http.Cookie
}

// recorder is an http.RoundTripper that keeps every exchange it carries.
type recorder struct {
	mu  sync.Mutex
	log []*exchange
}

func (rec *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var hdr strings.Builder
	for k, vs := range resp.Header {
		if k == "Set-Cookie" {
			continue
		}
		for _, v := range vs {
			fmt.Fprintf(&hdr, "%s: %s\n", k, v)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.log = append(rec.log, &exchange{n: len(rec.log), method: req.Method, path: req.URL.RequestURI(), status: resp.StatusCode,
		headers: hdr.String(), body: string(body), cookies: resp.Cookies()})
	return resp, nil
}

func (rec *recorder) last() *exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.log[len(rec.log)-1]
}

// secretHS imitates a homeserver that knows the appservice's current as_token, and is
// careless: every error it answers quotes the token it was sent, so a test sees whether
// this server passes a homeserver's error text through to pages, answers or logs.
func secretHS(t *testing.T, ts *testserver.Server) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		ms, err := ts.Web.Settings().Matrix(context.Background())
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		echo := func(status int, code string) {
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"errcode": code, "error": "Rejected token " + token + " for " + r.URL.String()})
		}
		switch p := r.URL.Path; {
		case p == "/_matrix/client/versions":
			io.WriteString(w, `{"versions":["v1.1","v1.7"]}`)
		case p == "/_matrix/federation/v1/version":
			io.WriteString(w, `{"server":{"name":"Fake","version":"1"}}`)
		case p == "/_matrix/key/v2/server":
			io.WriteString(w, `{"server_name":"localhost"}`)
		case p == "/_synapse/admin/v1/register":
			io.WriteString(w, `{"nonce":"n0nce"}`)
		case token != ms.ASToken:
			echo(http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
		case strings.HasSuffix(p, "/account/whoami"):
			uid := r.URL.Query().Get("user_id")
			if uid == "" {
				uid = ms.BotUserID().String()
			}
			json.NewEncoder(w).Encode(map[string]string{"user_id": uid})
		case strings.HasSuffix(p, "/register"):
			echo(http.StatusBadRequest, "M_USER_IN_USE")
		case strings.Contains(p, "/profile/"):
			io.WriteString(w, `{}`)
		case strings.HasSuffix(p, "/ping"):
			echo(http.StatusBadGateway, "M_CONNECTION_FAILED")
		default:
			echo(http.StatusNotFound, "M_UNRECOGNIZED")
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestNoSecretLeaks drives a broad scenario through capturing clients (sign-in good and
// bad, setup and rotation through the API and the dashboard, the registration download,
// bot provisioning, diagnostics, webhook calls with good, bad and legacy-query tokens,
// a password change, staff creation, an API token made on the dashboard, API calls,
// sign-out) and then checks every response body and header and every log line: no
// as_token, hs_token, registration secret, password, SESSION_KEY, session id or API
// token appears anywhere, except the tokens in the setup answers and the registration
// download, and the new API token on the page that creates it, once.
func TestNoSecretLeaks(t *testing.T) {
	sessionKey := "session-key-" + strings.Repeat("5e", 16)
	ts := testserver.New(t, testserver.Options{Env: map[string]string{"SESSION_KEY": sessionKey}})
	hs := secretHS(t, ts)
	ctx := context.Background()
	rec := &recorder{}
	capture := func(c *http.Client) *http.Client {
		c.Transport = rec
		return c
	}
	api := capture(&http.Client{})
	anon := capture(ts.AnonymousBrowser(t))
	browser := capture(ts.AnonymousBrowser(t))

	const registrationSecret = "registration-secret-7a7a7a7a7a"
	const newPassword = "a-new-operator-password-8b8b8b8b" // the policy refuses one holding the username
	const otherStaffPassword = "other-staff-password-9c9c9c9c"
	wrongPassword := "wrong-password-6d6d6d6d"

	// allowed says which exchanges may carry which secrets (by exchange number).
	allowed := map[int][]string{}
	call := func(c *http.Client, method, path string, hdr map[string]string, body string) *exchange {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, ts.URL+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return rec.last()
	}
	form := func(v url.Values) (map[string]string, string) {
		return map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": ts.URL}, v.Encode()
	}
	token := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Token " + tok, "Content-Type": "application/json"}
	}
	want := func(e *exchange, status int) {
		t.Helper()
		if e.status != status {
			t.Fatalf("%s %s: %d, want %d: %.300s", e.method, e.path, e.status, status, e.body)
		}
	}
	matrixSettings := func() *db.MatrixSettings {
		ms, err := ts.Web.Settings().Matrix(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	var asTokens, hsTokens []string

	// Sign-in: wrong, then right.
	h, b := form(url.Values{"username": {"staff"}, "password": {wrongPassword}})
	want(call(anon, http.MethodPost, "/login", h, b), http.StatusUnauthorized)
	want(call(anon, http.MethodGet, "/login", nil, ""), http.StatusOK)
	h, b = form(url.Values{"username": {"staff"}, "password": {testserver.StaffPassword}})
	want(call(browser, http.MethodPost, "/login", h, b), http.StatusSeeOther)

	// Setup through the API, then again (rotation); both answers carry their tokens.
	setupBody, _ := json.Marshal(map[string]string{
		"url": ts.URL, "homeserver_url": hs.URL, "homeserver_domain": "localhost",
		"user_registration_secret": registrationSecret, "sender_localpart": "waldur-bot",
	})
	for range 2 {
		e := call(api, http.MethodPost, "/api/admin/matrix-appservice/setup/", token(ts.StaffToken), string(setupBody))
		want(e, http.StatusOK)
		ms := matrixSettings()
		asTokens, hsTokens = append(asTokens, ms.ASToken), append(hsTokens, ms.HSToken)
		allowed[e.n] = []string{ms.ASToken, ms.HSToken}
		if !strings.Contains(e.body, ms.ASToken) || !strings.Contains(e.body, ms.HSToken) {
			t.Errorf("the setup answer lacks its tokens")
		}
	}
	e := call(api, http.MethodGet, "/api/admin/matrix-appservice/registration.yaml", token(ts.StaffToken), "")
	want(e, http.StatusOK)
	allowed[e.n] = []string{asTokens[1], hsTokens[1]}
	want(call(api, http.MethodGet, "/api/admin/matrix-appservice/status/", token(ts.StaffToken), ""), http.StatusOK)
	want(call(api, http.MethodPost, "/api/admin/matrix-appservice/provision-bot/", token(ts.StaffToken), "{}"), http.StatusOK)
	want(call(api, http.MethodGet, "/api/admin/matrix/diagnostics/", token(ts.StaffToken), ""), http.StatusOK)

	// Setup through the dashboard (a third generation), with its one-time result page.
	h, b = form(url.Values{"url": {ts.URL}, "confirm_rotate": {"yes"}, "sender_localpart": {"waldur-bot"}})
	e = call(browser, http.MethodPost, "/setup", h, b)
	want(e, http.StatusOK)
	ms := matrixSettings()
	if ms.ASToken == asTokens[1] {
		t.Fatalf("dashboard setup did not rotate the tokens: %.300s", e.body)
	}
	asTokens, hsTokens = append(asTokens, ms.ASToken), append(hsTokens, ms.HSToken)
	allowed[e.n] = []string{ms.ASToken, ms.HSToken}
	h, b = form(url.Values{})
	call(browser, http.MethodPost, "/setup/provision-bot", h, b)
	for _, p := range []string{"/", "/setup", "/settings", "/diagnostics", "/diagnostics?run=1", "/account", "/transactions", "/rooms", "/users", "/projects", "/reprovision"} {
		want(call(browser, http.MethodGet, p, nil, ""), http.StatusOK)
	}
	call(browser, http.MethodGet, "/diagnostics/results", map[string]string{"HX-Request": "true"}, "")
	call(browser, http.MethodGet, "/diagnostics/summary", map[string]string{"HX-Request": "true"}, "")
	// Settings: a failing save (it re-renders the form) and a good one.
	h, b = form(url.Values{"homeserver_url": {"not a url"}, "homeserver_domain": {"localhost"}, "user_registration_secret": {registrationSecret}})
	call(browser, http.MethodPost, "/settings", h, b)
	h, b = form(url.Values{"homeserver_url": {hs.URL}, "homeserver_domain": {"localhost"}, "user_registration_secret": {registrationSecret}})
	call(browser, http.MethodPost, "/settings", h, b)

	// The homeserver's side: good token, wrong token, the legacy query parameter.
	hsTok := hsTokens[len(hsTokens)-1]
	txn := `{"events":[]}`
	want(call(api, http.MethodPut, "/_matrix/app/v1/transactions/s1", map[string]string{"Authorization": "Bearer " + hsTok}, txn), http.StatusOK)
	want(call(api, http.MethodPut, "/_matrix/app/v1/transactions/s2", map[string]string{"Authorization": "Bearer " + hsTokens[0]}, txn), http.StatusForbidden)
	want(call(api, http.MethodPut, "/_matrix/app/v1/transactions/s3?access_token="+hsTok, nil, txn), http.StatusOK)
	want(call(api, http.MethodPut, "/_matrix/app/v1/transactions/s4?access_token="+asTokens[2], nil, txn), http.StatusForbidden)
	want(call(api, http.MethodPost, "/_matrix/app/v1/ping", map[string]string{"Authorization": "Bearer " + hsTok}, "{}"), http.StatusOK)
	call(api, http.MethodGet, "/_matrix/app/v1/users/@x:localhost", map[string]string{"Authorization": "Bearer " + hsTok}, "")

	// The account page: an API token made (shown once), a staff user, a password change.
	h, b = form(url.Values{"name": {"leak test"}})
	e = call(browser, http.MethodPost, "/account/tokens", h, b)
	want(e, http.StatusOK)
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(e.body))
	if err != nil {
		t.Fatal(err)
	}
	dashToken := strings.TrimSpace(doc.Find(`[data-testid="new-token"]`).Text())
	if dashToken == "" {
		t.Fatalf("no new token on the page")
	}
	allowed[e.n] = []string{dashToken}
	want(call(api, http.MethodGet, "/api/admin/matrix-appservice/status/", token(dashToken), ""), http.StatusOK)
	want(call(browser, http.MethodGet, "/account", nil, ""), http.StatusOK)
	h, b = form(url.Values{"username": {"second"}, "full_name": {"Second"}, "email": {"second@example.org"}, "password": {otherStaffPassword}, "confirm_password": {otherStaffPassword + "x"}})
	call(browser, http.MethodPost, "/account/staff", h, b) // mismatch: the form comes back
	h, b = form(url.Values{"username": {"second"}, "full_name": {"Second"}, "email": {"second@example.org"}, "password": {otherStaffPassword}, "confirm_password": {otherStaffPassword}})
	call(browser, http.MethodPost, "/account/staff", h, b)
	h, b = form(url.Values{"current_password": {wrongPassword}, "new_password": {newPassword}, "confirm_password": {newPassword}})
	call(browser, http.MethodPost, "/account/password", h, b) // wrong current password
	h, b = form(url.Values{"current_password": {testserver.StaffPassword}, "new_password": {newPassword}, "confirm_password": {newPassword}})
	want(call(browser, http.MethodPost, "/account/password", h, b), http.StatusSeeOther)
	want(call(browser, http.MethodGet, "/account", nil, ""), http.StatusOK)

	// The API with every kind of caller.
	for _, p := range []string{"/api/users/", "/api/projects/", "/api/matrix-rooms/", "/api/matrix-user-profiles/", "/api/admin/matrix/reprovision/"} {
		call(api, http.MethodGet, p, token(ts.StaffToken), "")
		call(api, http.MethodGet, p, token(ts.UserToken), "")
		call(api, http.MethodGet, p, token("0123456789abcdef0123456789abcdef01234567"), "")
	}
	call(api, http.MethodGet, "/api/users/", map[string]string{"Authorization": "Token " + ts.UserToken + "x"}, "")
	h, b = form(url.Values{})
	want(call(browser, http.MethodPost, "/logout", h, b), http.StatusSeeOther)
	call(browser, http.MethodGet, "/", nil, "")

	// The secrets, by name.
	secrets := map[string]string{
		"registration secret":     registrationSecret,
		"staff password":          testserver.StaffPassword,
		"wrong password":          wrongPassword,
		"new password":            newPassword,
		"second staff's password": otherStaffPassword,
		"SESSION_KEY":             sessionKey,
		"staff API token":         ts.StaffToken,
		"user API token":          ts.UserToken,
		"dashboard API token":     dashToken,
	}
	for i, tok := range asTokens {
		secrets[fmt.Sprintf("as_token #%d", i+1)] = tok
	}
	for i, tok := range hsTokens {
		secrets[fmt.Sprintf("hs_token #%d", i+1)] = tok
	}
	sessions := 0
	for _, ex := range rec.log {
		for _, c := range ex.cookies {
			if c.Name != auth.SessionCookie || c.Value == "" || c.MaxAge < 0 {
				continue
			}
			sessions++
			secrets[fmt.Sprintf("session cookie #%d", sessions)] = c.Value
			if id := ts.SessionID(t, c); id != "" {
				secrets[fmt.Sprintf("session id #%d", sessions)] = id
			}
		}
	}
	if sessions < 2 {
		t.Fatalf("only %d session cookies seen", sessions)
	}

	for name, secret := range secrets {
		if len(secret) < 8 {
			t.Fatalf("secret %s is too short to search for: %q", name, secret)
		}
		for _, ex := range rec.log {
			if strings.Contains(ex.headers, secret) {
				t.Errorf("%s appears in the headers of %s %s", name, ex.method, ex.path)
			}
			if !strings.Contains(ex.body, secret) {
				continue
			}
			ok := false
			for _, s := range allowed[ex.n] {
				ok = ok || s == secret
			}
			if !ok {
				t.Errorf("%s appears in the answer to %s %s (%d)", name, ex.method, ex.path, ex.status)
			}
		}
		if strings.Contains(ts.Logs.String(), secret) {
			t.Errorf("%s appears in the log", name)
		}
	}
	// The allowed answers are not cached.
	for _, ex := range rec.log {
		if len(allowed[ex.n]) > 0 && !strings.Contains(ex.headers, "Cache-Control: no-store") {
			t.Errorf("%s %s carries secrets without Cache-Control: no-store", ex.method, ex.path)
		}
	}
	t.Logf("%d exchanges, %d secrets, %d log bytes checked", len(rec.log), len(secrets), len(ts.Logs.String()))
}
