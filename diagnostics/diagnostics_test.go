package diagnostics_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"matrixas/db"
	"matrixas/diagnostics"
	"matrixas/settings"
)

const (
	asToken = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	hsToken = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
	secret  = "registration-secret-c3c3c3c3"
	domain  = "example.org"
	bot     = "@waldur-bot:example.org"
)

// fakeHS imitates a homeserver that has every endpoint diagnostics call, ping included.
type fakeHS struct {
	serverName string // the real server_name; default domain
	knownToken string // the as_token it accepts; default asToken
	pingStatus int    // default 200
	pingBody   string // default {"duration_ms": 42}
	cors       bool   // answer with Access-Control-Allow-Origin: *
	noNonce    bool   // shared-secret registration off

	mu       sync.Mutex
	requests []string // method and path of every request
}

func (f *fakeHS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	name := f.serverName
	if name == "" {
		name = domain
	}
	token := f.knownToken
	if token == "" {
		token = asToken
	}
	if f.cors {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	}
	w.Header().Set("Content-Type", "application/json")
	authed := r.Header.Get("Authorization") == "Bearer "+token
	switch r.Method + " " + r.URL.Path {
	case "GET /_matrix/client/versions":
		w.Write([]byte(`{"versions":["r0.6.1","v1.1","v1.7","v1.11"]}`))
	case "GET /_matrix/federation/v1/version":
		w.Write([]byte(`{"server":{"name":"Synapse","version":"1.99.0"}}`))
	case "GET /_matrix/key/v2/server":
		w.Write([]byte(`{"server_name":"` + name + `"}`))
	case "GET /_synapse/admin/v1/register":
		if f.noNonce {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`))
			return
		}
		w.Write([]byte(`{"nonce":"n0nce"}`))
	case "GET /_matrix/client/v3/account/whoami":
		if !authed {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown token"}`))
			return
		}
		uid := r.URL.Query().Get("user_id")
		if uid == "" {
			uid = "@waldur-bot:" + name
		}
		if !strings.HasSuffix(uid, ":"+name) || strings.HasPrefix(uid, "@ghost") {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errcode":"M_FORBIDDEN","error":"Application service has not registered this user"}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"user_id": uid})
	case "POST /_matrix/client/v1/appservice/waldur/ping":
		if !authed {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown token"}`))
			return
		}
		var body struct {
			TxnID string `json:"transaction_id"`
		}
		if json.NewDecoder(r.Body).Decode(&body) != nil || body.TxnID == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		status, respBody := f.pingStatus, f.pingBody
		if status == 0 {
			status, respBody = http.StatusOK, `{"duration_ms":42}`
		}
		w.WriteHeader(status)
		w.Write([]byte(respBody))
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`))
	}
}

func (f *fakeHS) sawPath(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

// env is a store with settings and diagnostics over it.
type env struct {
	store    *db.Store
	settings *db.Settings
	now      time.Time
	opts     diagnostics.Options
}

func newEnv(t *testing.T, values map[string]string) *env {
	t.Helper()
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "diag.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	st := db.NewSettings(store, nil)
	if len(values) > 0 {
		if err := st.Set(context.Background(), values); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{store: store, settings: st, now: time.Now()}
	// A sender that has just turned its loop, as in a running server.
	e.opts = diagnostics.Options{Now: func() time.Time { return e.now }, BotHeartbeat: func() time.Time { return e.now }}
	return e
}

// setUp are the settings of a fully set-up appservice on homeserverURL.
func setUp(homeserverURL string) map[string]string {
	return map[string]string{
		settings.HomeserverURL.Key:      homeserverURL,
		settings.HomeserverDomain.Key:   domain,
		settings.RegistrationSecret.Key: secret,
		settings.ASToken.Key:            asToken,
		settings.HSToken.Key:            hsToken,
		settings.SenderLocalpart.Key:    "waldur-bot",
		settings.AppserviceURL.Key:      "http://appservice.test:8080",
		settings.Enabled.Key:            "true",
	}
}

func (e *env) run(t *testing.T) *diagnostics.Report {
	t.Helper()
	rep, err := diagnostics.New(e.store, e.settings, e.opts).Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkInvariants(t, rep)
	if testing.Verbose() {
		for _, c := range rep.Checks {
			t.Logf("%-30s ok=%-5v %s | %s", c.Name, c.OK, c.Detail, c.Hint)
		}
	}
	return rep
}

// checkInvariants holds for every report: all checks in order, ok = all ok, a hint on
// every failing check and none on passing ones, and no secret anywhere.
func checkInvariants(t *testing.T, rep *diagnostics.Report) {
	t.Helper()
	// Every check in report order; an optional one may be absent.
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
	}
	var want []string
	for _, name := range diagnostics.CheckNames {
		if slices.Contains(names, name) || !slices.Contains(diagnostics.OptionalChecks, name) {
			want = append(want, name)
		}
	}
	if !slices.Equal(names, want) {
		t.Fatalf("checks %v,\nwant %v", names, want)
	}
	all := true
	for _, c := range rep.Checks {
		if c.Label == "" || c.Detail == "" {
			t.Errorf("%s: empty label or detail: %+v", c.Name, c)
		}
		if !c.OK && c.Hint == "" {
			t.Errorf("%s fails without a hint: %q", c.Name, c.Detail)
		}
		if c.OK && c.Hint != "" {
			t.Errorf("%s passes with a hint: %q", c.Name, c.Hint)
		}
		all = all && c.OK
	}
	if rep.OK != all {
		t.Errorf("report ok = %v, checks say %v", rep.OK, all)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{asToken, hsToken, secret} {
		if strings.Contains(string(b), s) {
			t.Errorf("report contains a secret: %s", b)
		}
	}
}

// expect is what a test wants of one check.
type expect struct {
	ok     bool
	detail string // substring of the detail
	hint   string // substring of the hint ("" = not checked)
}

func assertCheck(t *testing.T, rep *diagnostics.Report, name string, want expect) {
	t.Helper()
	c := rep.Check(name)
	if c == nil {
		t.Fatalf("no check %s", name)
	}
	if c.OK != want.ok || !strings.Contains(c.Detail, want.detail) || !strings.Contains(c.Hint, want.hint) {
		t.Errorf("%s = ok %v, detail %q, hint %q;\nwant ok %v, detail containing %q, hint containing %q",
			name, c.OK, c.Detail, c.Hint, want.ok, want.detail, want.hint)
	}
}

func TestAllGreenWithPing(t *testing.T) {
	hs := &fakeHS{}
	srv := httptest.NewServer(hs)
	defer srv.Close()
	e := newEnv(t, setUp(srv.URL))
	rep := e.run(t)
	if !rep.OK {
		for _, c := range rep.Checks {
			t.Logf("%s ok=%v %s | %s", c.Name, c.OK, c.Detail, c.Hint)
		}
		t.Fatal("report not ok against a healthy homeserver")
	}
	for name, want := range map[string]expect{
		diagnostics.CheckHomeserverConfigured:       {true, srv.URL, ""},
		diagnostics.CheckHomeserverReachable:        {true, "OK — Synapse 1.99.0, spec up to v1.11, round trip ", ""},
		diagnostics.CheckHomeserverServerName:       {true, "server_name is example.org (from the bot's user ID " + bot + ")", ""},
		diagnostics.CheckPublicConfigured:           {true, "Not set", ""},
		diagnostics.CheckPublicReachable:            {true, "Same as internal — no separate check", ""},
		diagnostics.CheckASTokenConfigured:          {true, diagnostics.Fingerprint(asToken), ""},
		diagnostics.CheckHSTokenConfigured:          {true, diagnostics.Fingerprint(hsToken), ""},
		diagnostics.CheckSecretEnabled:              {true, "nonces", ""},
		diagnostics.CheckBotWhoami:                  {true, "OK — authenticated as " + bot, ""},
		diagnostics.CheckUserNamespace:              {true, "OK — can act as the bot " + bot, ""},
		diagnostics.CheckPing:                       {true, "OK — round trip 42 ms", ""},
		diagnostics.CheckTransactions:               {true, "None received yet", ""},
		diagnostics.CheckRoomStats:                  {true, "0 active, 0 creating, 0 errored, 0 total", ""},
		diagnostics.CheckUserStats:                  {true, "0 provisioned out of 0 total", ""},
		diagnostics.CheckProvisioningQueue:          {true, "Empty", ""},
		diagnostics.CheckHomeserverDomainConfigured: {true, domain, ""},
	} {
		assertCheck(t, rep, name, want)
	}
	if fp := diagnostics.Fingerprint(asToken); !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+12 {
		t.Errorf("Fingerprint = %q, want sha256: and 12 hex digits", fp)
	}
}

func TestPingOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   expect
	}{
		{"url not set", http.StatusBadRequest, `{"errcode":"M_URL_NOT_SET","error":"Application service URL is not set"}`,
			expect{false, "has no url", "Run setup with url"}},
		{"bad status from us: hs_token refused", http.StatusBadGateway, `{"errcode":"M_BAD_STATUS","error":"Bad status","status":403,"body":"{}"}`,
			expect{false, "it answered HTTP 403", "old registration"}},
		{"bad status from us: wrong path", http.StatusBadGateway, `{"errcode":"M_BAD_STATUS","error":"Bad status","status":404,"body":"not found"}`,
			expect{false, "it answered HTTP 404", "does not lead to this server"}},
		{"bad status from us: 500", http.StatusBadGateway, `{"errcode":"M_BAD_STATUS","error":"Bad status","status":500}`,
			expect{false, "it answered HTTP 500", "this server's log"}},
		{"connection failed", http.StatusBadGateway, `{"errcode":"M_CONNECTION_FAILED","error":"Connection refused"}`,
			expect{false, "could not connect to http://appservice.test:8080", "reachable from the homeserver"}},
		{"connection timeout", http.StatusGatewayTimeout, `{"errcode":"M_CONNECTION_TIMEOUT","error":"Timeout"}`,
			expect{false, "timed out", "reachable from the homeserver"}},
		{"forbidden: id does not match token", http.StatusForbidden, `{"errcode":"M_FORBIDDEN","error":"not your appservice"}`,
			expect{false, "refused the ping (HTTP 403 M_FORBIDDEN", "restart the homeserver"}},
		{"unsupported: M_UNRECOGNIZED", http.StatusNotFound, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`,
			expect{true, "Not supported by this homeserver — evidence from transactions_received instead: no transaction received yet", ""}},
		{"unsupported: bare 404", http.StatusNotFound, `404 page not found`,
			expect{true, "Not supported by this homeserver", ""}},
		{"unsupported: 405", http.StatusMethodNotAllowed, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`,
			expect{true, "Not supported by this homeserver", ""}},
		{"unexpected", http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"boom"}`,
			expect{false, "Unexpected answer to the ping: HTTP 500 M_UNKNOWN: boom", "homeserver's log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&fakeHS{pingStatus: tt.status, pingBody: tt.body})
			defer srv.Close()
			rep := newEnv(t, setUp(srv.URL)).run(t)
			assertCheck(t, rep, diagnostics.CheckPing, tt.want)
		})
	}
}

func TestPingUnsupportedCitesLastTransaction(t *testing.T) {
	srv := httptest.NewServer(&fakeHS{pingStatus: http.StatusNotFound, pingBody: `{"errcode":"M_UNRECOGNIZED"}`})
	defer srv.Close()
	e := newEnv(t, setUp(srv.URL))
	recordTransaction(t, e.store, "txn-1", e.now.Add(-5*time.Minute))
	rep := e.run(t)
	assertCheck(t, rep, diagnostics.CheckPing, expect{true, "last transaction received 5 min ago", ""})
	assertCheck(t, rep, diagnostics.CheckTransactions, expect{true, "Last received 5 min ago", ""})
}

// unreachable lists homeservers that cannot be used, and what diagnostics must say.
func TestUnreachableHomeservers(t *testing.T) {
	refused := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close()
		return url
	}
	html := func(t *testing.T) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte("<!doctype html><html><body>Welcome to nginx!</body></html>"))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	notFound := func(t *testing.T) string {
		srv := httptest.NewServer(http.NotFoundHandler())
		t.Cleanup(srv.Close)
		return srv.URL
	}
	badGateway := func(t *testing.T) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	untrustedTLS := func(t *testing.T) string {
		srv := httptest.NewUnstartedServer(&fakeHS{})
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	plainOnTLS := func(t *testing.T) string {
		srv := httptest.NewServer(&fakeHS{})
		t.Cleanup(srv.Close)
		return strings.Replace(srv.URL, "http://", "https://", 1)
	}
	tests := []struct {
		name      string
		url       func(t *testing.T) string
		want      expect
		skipWhy   string
		urlDetail bool // the detail names the URL
	}{
		{"refused", refused, expect{false, "Connection refused — is the homeserver running at http://127.0.0.1:", "Start the homeserver"}, "the homeserver is not reachable", true},
		{"dns", func(*testing.T) string { return "http://homeserver.invalid:8008" }, expect{false, "DNS lookup", "DNS"}, "the homeserver is not reachable", false},
		{"untrusted certificate", untrustedTLS, expect{false, "TLS failure: the certificate is signed by an authority this server does not trust", "trust"}, "the homeserver is not reachable", false},
		{"plain HTTP on an https URL", plainOnTLS, expect{false, "TLS failure: the server does not speak TLS", "http://"}, "the homeserver is not reachable", false},
		{"html page", html, expect{false, "not a Matrix homeserver: /_matrix/client/versions returned an HTML page", "without /_matrix"}, "no Matrix homeserver answers", true},
		{"404", notFound, expect{false, "/_matrix/client/versions is 404 Not Found", "base of the client-server API"}, "no Matrix homeserver answers", true},
		{"502 from a proxy", badGateway, expect{false, "answers HTTP 502", "homeserver behind it is down"}, "no Matrix homeserver answers", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url(t)
			rep := newEnv(t, setUp(url)).run(t)
			assertCheck(t, rep, diagnostics.CheckHomeserverReachable, tt.want)
			if tt.urlDetail {
				assertCheck(t, rep, diagnostics.CheckHomeserverReachable, expect{false, url, ""})
			}
			for _, name := range []string{diagnostics.CheckHomeserverServerName, diagnostics.CheckSecretEnabled,
				diagnostics.CheckBotWhoami, diagnostics.CheckUserNamespace, diagnostics.CheckPing} {
				assertCheck(t, rep, name, expect{false, "Skipped — " + tt.skipWhy, "homeserver_reachable"})
			}
			// Local checks still report.
			assertCheck(t, rep, diagnostics.CheckASTokenConfigured, expect{true, "sha256:", ""})
			assertCheck(t, rep, diagnostics.CheckRoomStats, expect{true, "0 total", ""})
		})
	}
}

// TestBlackHoleIsBounded: a homeserver that accepts connections and never answers costs
// about one request timeout, not one per check.
func TestBlackHoleIsBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	values := setUp("http://" + ln.Addr().String())
	// A public URL on the same black hole: a second, independent probe that also hangs.
	values[settings.HomeserverPublicURL.Key] = "http://localhost:" + strings.Split(ln.Addr().String(), ":")[1]
	e := newEnv(t, values)
	e.opts.ConnectTimeout = 3 * time.Second
	e.opts.RequestTimeout = 2 * time.Second

	start := time.Now()
	rep := e.run(t)
	took := time.Since(start)
	t.Logf("diagnostics against a black hole took %s (connect timeout 3s, request timeout 2s)", took)
	if limit := 3*time.Second + 1500*time.Millisecond; took > limit {
		t.Errorf("took %s, want under %s", took, limit)
	}
	assertCheck(t, rep, diagnostics.CheckHomeserverReachable, expect{false, "Connection timed out — the server accepted the connection but sent no answer within 2s", "hung"})
	assertCheck(t, rep, diagnostics.CheckPublicReachable, expect{false, "Connection timed out", "Browsers use this URL"})
	assertCheck(t, rep, diagnostics.CheckBotWhoami, expect{false, "Skipped — the homeserver is not reachable", "homeserver_reachable"})
}

func TestTokenAndDomainProblems(t *testing.T) {
	tests := []struct {
		name   string
		hs     *fakeHS
		values map[string]string
		checks map[string]expect
	}{
		{
			name: "stale registration: the homeserver knows other tokens",
			hs:   &fakeHS{knownToken: "some-older-token"},
			checks: map[string]expect{
				diagnostics.CheckBotWhoami:            {false, "refused the as_token (HTTP 401 M_UNKNOWN_TOKEN", "install the registration YAML"},
				diagnostics.CheckUserNamespace:        {false, "Skipped — the as_token is not accepted", "bot_whoami"},
				diagnostics.CheckPing:                 {false, "Skipped — the as_token is not accepted", "bot_whoami"},
				diagnostics.CheckHomeserverServerName: {true, "server_name is example.org (from /_matrix/key/v2/server)", ""},
				diagnostics.CheckHomeserverReachable:  {true, "OK", ""},
			},
		},
		{
			name:   "wrong domain configured",
			hs:     &fakeHS{},
			values: map[string]string{settings.HomeserverDomain.Key: "wrong.example"},
			checks: map[string]expect{
				diagnostics.CheckHomeserverServerName: {false, "server_name is example.org (from the bot's user ID @waldur-bot:example.org), but the configured domain is wrong.example", "M_EXCLUSIVE"},
				diagnostics.CheckBotWhoami:            {false, "authenticates as @waldur-bot:example.org, not @waldur-bot:wrong.example", "Set the homeserver domain to example.org"},
				diagnostics.CheckUserNamespace:        {false, "refuses to let the appservice act as @waldur-bot:wrong.example: HTTP 403", "homeserver_server_name"},
			},
		},
		{
			name:   "other sender_localpart installed",
			hs:     &fakeHS{},
			values: map[string]string{settings.SenderLocalpart.Key: "new-bot"},
			checks: map[string]expect{
				diagnostics.CheckBotWhoami:            {false, "authenticates as @waldur-bot:example.org, not @new-bot:example.org", "sender_localpart waldur-bot"},
				diagnostics.CheckHomeserverServerName: {true, "example.org", ""},
			},
		},
		{
			name: "shared-secret registration off",
			hs:   &fakeHS{noNonce: true},
			checks: map[string]expect{
				diagnostics.CheckSecretEnabled: {false, "Shared-secret registration is off: GET /_synapse/admin/v1/register answered HTTP 404 M_UNRECOGNIZED", "registration_shared_secret"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.hs)
			defer srv.Close()
			values := setUp(srv.URL)
			for k, v := range tt.values {
				values[k] = v
			}
			rep := newEnv(t, values).run(t)
			if rep.OK {
				t.Error("report ok, want not ok")
			}
			for name, want := range tt.checks {
				assertCheck(t, rep, name, want)
			}
		})
	}
}

func TestNothingConfigured(t *testing.T) {
	e := newEnv(t, nil)
	rep := e.run(t)
	for name, want := range map[string]expect{
		diagnostics.CheckHomeserverConfigured:       {false, "Not set", "MATRIX_HOMESERVER_URL"},
		diagnostics.CheckHomeserverDomainConfigured: {false, "Not set", "MATRIX_HOMESERVER_DOMAIN"},
		diagnostics.CheckHomeserverReachable:        {false, "Skipped — no valid homeserver URL is configured", ""},
		diagnostics.CheckHomeserverServerName:       {false, "Skipped — no homeserver domain is configured", ""},
		diagnostics.CheckASTokenConfigured:          {false, "Not set", "setup"},
		diagnostics.CheckHSTokenConfigured:          {false, "Not set", "setup"},
		diagnostics.CheckSecretConfigured:           {false, "Not set", "MATRIX_USER_REGISTRATION_SECRET"},
		diagnostics.CheckSecretEnabled:              {false, "Skipped", ""},
		diagnostics.CheckBotWhoami:                  {false, "Skipped — no as_token is configured", "setup"},
		diagnostics.CheckUserNamespace:              {false, "Skipped", ""},
		diagnostics.CheckPing:                       {false, "Skipped", ""},
		diagnostics.CheckPublicReachable:            {true, "Same as internal", ""},
	} {
		assertCheck(t, rep, name, want)
	}
}

func TestPublicHomeserver(t *testing.T) {
	tests := []struct {
		name   string
		public func(internal string, cors, plain *httptest.Server) string
		want   expect
	}{
		{"equal to internal", func(internal string, _, _ *httptest.Server) string { return internal + "/" },
			expect{true, "Same as internal — no separate check", ""}},
		{"separate, with CORS", func(_ string, cors, _ *httptest.Server) string { return cors.URL },
			expect{true, "CORS allows browsers (Access-Control-Allow-Origin: *)", ""}},
		{"separate, without CORS", func(_ string, _, plain *httptest.Server) string { return plain.URL },
			expect{false, "without CORS for browsers (no Access-Control-Allow-Origin header)", "Access-Control"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			internal := httptest.NewServer(&fakeHS{})
			defer internal.Close()
			cors := httptest.NewServer(&fakeHS{cors: true})
			defer cors.Close()
			plainHS := &fakeHS{}
			plain := httptest.NewServer(plainHS)
			defer plain.Close()
			values := setUp(internal.URL)
			values[settings.HomeserverPublicURL.Key] = tt.public(internal.URL, cors, plain)
			rep := newEnv(t, values).run(t)
			assertCheck(t, rep, diagnostics.CheckPublicConfigured, expect{true, values[settings.HomeserverPublicURL.Key], ""})
			assertCheck(t, rep, diagnostics.CheckPublicReachable, tt.want)
		})
	}
}

// TestSecretsEchoedByTheHomeserverAreRedacted: a homeserver that puts the token in an
// error message must not get it into the report.
func TestSecretsEchoedByTheHomeserverAreRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/_matrix/client/versions":
			w.Write([]byte(`{"versions":["v1.9"]}`))
		default:
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]string{"errcode": "M_UNKNOWN",
				"error": "cannot use " + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") + " or " + secret})
		}
	}))
	defer srv.Close()
	rep := newEnv(t, setUp(srv.URL)).run(t) // checkInvariants fails on any secret
	assertCheck(t, rep, diagnostics.CheckBotWhoami, expect{false, "[redacted]", ""})
}

// recordTransaction writes a transaction row and the counters as the webhook does.
func recordTransaction(t *testing.T, store *db.Store, txnID string, at time.Time) {
	t.Helper()
	err := store.Tx(context.Background(), func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO as_transactions (txn_id, event_count, processed_at) VALUES (?, 1, ?)`, txnID, at.Unix()); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE counters SET value = value + 1 WHERE name = ?`, db.CounterTransactions); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE counters SET value = MAX(value, ?) WHERE name = ?`, at.Unix(), db.CounterLastTransactionAt)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// exec runs one write statement on the store.
func exec(t *testing.T, store *db.Store, query string) {
	t.Helper()
	if err := store.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(query)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// addRoom inserts a project and its room in state, last changed at modified.
func addRoom(t *testing.T, store *db.Store, state string, modified time.Time, attempts int) {
	t.Helper()
	err := store.Tx(context.Background(), func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO projects (uuid, name, created_at, modified_at) VALUES (?, ?, ?, ?)`,
			db.NewUUID(), "project "+state, modified.Unix(), modified.Unix())
		if err != nil {
			return err
		}
		pid, _ := res.LastInsertId()
		_, err = tx.Exec(`INSERT INTO matrix_rooms (uuid, project_id, state, attempts, members_dirty, created_at, modified_at)
			VALUES (?, ?, ?, ?, 0, ?, ?)`, db.NewUUID(), pid, state, attempts, modified.Unix(), modified.Unix())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// addOutbox inserts an outbox message in state into a room of its own, queued (and,
// when sent or failed, settled) at when, with lastError.
func addOutbox(t *testing.T, store *db.Store, state string, when time.Time, lastError string) {
	t.Helper()
	err := store.Tx(context.Background(), func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO projects (uuid, name, created_at, modified_at) VALUES (?, 'p', ?, ?)`, db.NewUUID(), when.Unix(), when.Unix())
		if err != nil {
			return err
		}
		pid, _ := res.LastInsertId()
		res, err = tx.Exec(`INSERT INTO matrix_rooms (uuid, project_id, state, room_id, created_at, modified_at) VALUES (?, ?, 'active', ?, ?, ?)`,
			db.NewUUID(), pid, "!"+db.NewUUID()+":"+domain, when.Unix(), when.Unix())
		if err != nil {
			return err
		}
		room, _ := res.LastInsertId()
		var sent, failed any
		switch state {
		case "sent":
			sent = when.Unix()
		case "failed":
			failed = when.Unix()
		}
		_, err = tx.Exec(`INSERT INTO bot_outbox (uuid, kind, state, room_pk, room_id, body, last_error, created_at, sent_at, failed_at)
			VALUES (?, 'notification', ?, ?, '!r:x', 'hello', ?, ?, ?, ?)`, db.NewUUID(), state, room, lastError, when.Unix(), sent, failed)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// addProfile inserts a user and its Matrix profile @name:server.
func addProfile(t *testing.T, store *db.Store, name, server string, active, provisioned bool, created time.Time) {
	t.Helper()
	u := &db.User{Username: name, IsActive: active}
	if err := store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	err := store.Tx(context.Background(), func(tx *sql.Tx) error {
		var at any
		if provisioned {
			at = created.Unix()
		}
		_, err := tx.Exec(`INSERT INTO matrix_user_profiles (user_id, matrix_user_id, provisioned, provisioned_at, created_at)
			VALUES (?, ?, ?, ?, ?)`, u.ID, "@"+name+":"+server, provisioned, at, created.Unix())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalState(t *testing.T) {
	srv := httptest.NewServer(&fakeHS{pingStatus: http.StatusNotFound, pingBody: `{"errcode":"M_UNRECOGNIZED"}`})
	defer srv.Close()
	tests := []struct {
		name   string
		seed   func(t *testing.T, e *env)
		checks map[string]expect
	}{
		{
			name: "healthy: recent transactions, provisioned user to act as",
			seed: func(t *testing.T, e *env) {
				addRoom(t, e.store, "active", e.now.Add(-48*time.Hour), 0)
				addRoom(t, e.store, "archived", e.now.Add(-48*time.Hour), 0)
				addProfile(t, e.store, "alice", domain, true, true, e.now.Add(-2*time.Hour))
				addProfile(t, e.store, "bob", domain, true, true, e.now.Add(-3*time.Hour))
				recordTransaction(t, e.store, "old", e.now.Add(-3*time.Hour))
				recordTransaction(t, e.store, "recent-1", e.now.Add(-10*time.Minute))
				recordTransaction(t, e.store, "recent-2", e.now.Add(-2*time.Minute))
				exec(t, e.store, `UPDATE matrix_rooms SET members_dirty = 1 WHERE state = 'active'`)
			},
			checks: map[string]expect{
				diagnostics.CheckTransactions:      {true, "Last received 2 min ago", ""},
				diagnostics.CheckRoomStats:         {true, "1 active, 0 creating, 0 errored, 2 total", ""},
				diagnostics.CheckUserStats:         {true, "2 provisioned out of 2 total", ""},
				diagnostics.CheckProvisioningQueue: {true, "Empty — nothing waiting; 1 room waiting for a member sync", ""},
				diagnostics.CheckUserNamespace:     {true, "OK — can act as platform user @alice:example.org", ""},
				diagnostics.CheckPing:              {true, "last transaction received 2 min ago", ""},
			},
		},
		{
			name: "errored room, stale transactions, stuck queue",
			seed: func(t *testing.T, e *env) {
				addRoom(t, e.store, "active", e.now.Add(-72*time.Hour), 0)
				addRoom(t, e.store, "error", e.now.Add(-time.Hour), 3)
				addRoom(t, e.store, "creating", e.now.Add(-2*time.Hour), 2)
				addProfile(t, e.store, "carol", domain, true, false, e.now.Add(-30*time.Minute))
				addProfile(t, e.store, "gone", domain, false, false, e.now.Add(-90*24*time.Hour)) // inactive: never provisioned, not waiting
				recordTransaction(t, e.store, "old", e.now.Add(-25*time.Hour))
			},
			checks: map[string]expect{
				diagnostics.CheckTransactions:      {false, "Last received 25 h ago (", "TRANSACTIONS_STALE_AFTER (24h)"},
				diagnostics.CheckRoomStats:         {false, "1 active, 1 creating, 1 errored, 3 total", "errored room"},
				diagnostics.CheckUserStats:         {true, "0 provisioned out of 2 total", ""},
				diagnostics.CheckProvisioningQueue: {false, "2 pending (1 room, 1 user), the oldest queued 2 h ago, 1 retrying after an error — stuck", "worker"},
				diagnostics.CheckUserNamespace:     {true, "OK — can act as the bot", ""},
			},
		},
		{
			name: "rooms but never a transaction",
			seed: func(t *testing.T, e *env) {
				addRoom(t, e.store, "active", e.now.Add(-time.Hour), 0)
			},
			checks: map[string]expect{
				diagnostics.CheckTransactions: {false, "None ever received, with 1 active room", "/_matrix/app/v1/transactions/"},
				diagnostics.CheckPing:         {true, "no transaction received yet", ""},
			},
		},
		{
			name: "provisioned user outside the namespace",
			seed: func(t *testing.T, e *env) {
				addProfile(t, e.store, "ghost", domain, true, true, e.now.Add(-time.Hour))
			},
			checks: map[string]expect{
				diagnostics.CheckUserNamespace: {false, "refuses to let the appservice act as @ghost:example.org: HTTP 403 M_FORBIDDEN", "namespaces"},
			},
		},
		{
			name: "young queue is not stuck",
			seed: func(t *testing.T, e *env) {
				addRoom(t, e.store, "creating", e.now.Add(-5*time.Minute), 0)
			},
			checks: map[string]expect{
				diagnostics.CheckProvisioningQueue: {true, "1 pending (1 room, 0 users), the oldest queued 5 min ago", ""},
				diagnostics.CheckTransactions:      {true, "None received yet", ""},
			},
		},
		{
			name: "bot: a working sender with a short queue, no failures",
			seed: func(t *testing.T, e *env) {
				addOutbox(t, e.store, "pending", e.now.Add(-3*time.Minute), "")
				addOutbox(t, e.store, "pending", e.now.Add(-time.Minute), "HTTP 502")
				addOutbox(t, e.store, "failed", e.now.Add(-30*time.Hour), "M_FORBIDDEN") // older than 24 h
				addOutbox(t, e.store, "sent", e.now.Add(-time.Minute), "")
			},
			checks: map[string]expect{
				diagnostics.CheckBotRunning:     {true, "Running — 2 pending, the oldest queued 3 min ago, 1 waiting to be retried", ""},
				diagnostics.CheckOutboxFailures: {true, "None", ""},
			},
		},
		{
			name: "bot: failures in the last day, messages stuck",
			seed: func(t *testing.T, e *env) {
				addOutbox(t, e.store, "pending", e.now.Add(-2*time.Hour), "")
				addOutbox(t, e.store, "failed", e.now.Add(-time.Hour), "M_FORBIDDEN")
				addOutbox(t, e.store, "failed", e.now.Add(-23*time.Hour), "M_FORBIDDEN")
				addOutbox(t, e.store, "failed", e.now.Add(-25*time.Hour), "M_FORBIDDEN")
			},
			checks: map[string]expect{
				diagnostics.CheckBotRunning:     {false, "Running, but 1 pending, the oldest queued 2 h ago — stuck for more than 1h", "Outbox page"},
				diagnostics.CheckOutboxFailures: {false, "2 messages failed in the last 24 h (3 failed kept in all)", "Outbox page"},
			},
		},
		{
			name: "bot: the sender stalled",
			seed: func(t *testing.T, e *env) {
				e.opts.BotHeartbeat = func() time.Time { return e.now.Add(-5 * time.Minute) }
			},
			checks: map[string]expect{
				diagnostics.CheckBotRunning: {false, "Stalled — its loop last turned 5 min ago; nothing pending", "log"},
			},
		},
		{
			name: "bot: no sender in this process",
			seed: func(t *testing.T, e *env) {
				e.opts.BotHeartbeat = nil
				addOutbox(t, e.store, "pending", e.now.Add(-time.Minute), "")
			},
			checks: map[string]expect{
				diagnostics.CheckBotRunning: {false, "Not running — 1 pending", "restart"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, setUp(srv.URL))
			tt.seed(t, e)
			rep := e.run(t)
			for name, want := range tt.checks {
				assertCheck(t, rep, name, want)
			}
		})
	}
}

// TestSkipsWithoutRequests: with no homeserver URL nothing is sent anywhere.
func TestNoRequestsWithoutHomeserver(t *testing.T) {
	hs := &fakeHS{}
	srv := httptest.NewServer(hs)
	defer srv.Close()
	values := setUp(srv.URL)
	delete(values, settings.HomeserverURL.Key)
	newEnv(t, values).run(t)
	if hs.sawPath("") {
		t.Errorf("requests were sent without a homeserver URL: %v", hs.requests)
	}
}
