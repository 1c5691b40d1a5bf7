package web_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"matrixas/db"
	"matrixas/internal/metricstest"
	"matrixas/internal/testserver"
	"matrixas/settings"
	"matrixas/web"
)

const testMetricsToken = "metrics-token-0123456789abcdef"

// getMetrics sends GET url with an optional Authorization header value.
func getMetrics(t *testing.T, url, authorization string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// scrapeMetrics reads /metrics on the main listener with the metrics token.
func scrapeMetrics(t *testing.T, ts *testserver.Server) metricstest.Scrape {
	t.Helper()
	resp, body := getMetrics(t, ts.URL+"/metrics", "Bearer "+testMetricsToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %s", resp.StatusCode, body)
	}
	return metricstest.Parse(t, body)
}

// TestMetricsOffByDefault: without METRICS_TOKEN the main listener has no metrics, for
// anyone, staff included.
func TestMetricsOffByDefault(t *testing.T) {
	ts := testserver.New(t)
	for _, auth := range []string{"", "Token " + ts.StaffToken, "Bearer anything-at-all-0123456789"} {
		if resp, body := getMetrics(t, ts.URL+"/metrics", auth); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /metrics with %q: %d, want 404: %.100s", auth, resp.StatusCode, body)
		}
	}
}

// TestMetricsToken: with METRICS_TOKEN, only the bearer token opens /metrics; sessions
// and API tokens grant nothing.
func TestMetricsToken(t *testing.T) {
	ts := testserver.New(t, testserver.Options{Env: map[string]string{"METRICS_TOKEN": testMetricsToken}})
	session := ts.SessionCookie(t, ts.Staff)
	tests := []struct {
		name, auth string
		cookie     bool
		want       int
	}{
		{"no credentials", "", false, http.StatusUnauthorized},
		{"wrong token", "Bearer " + strings.Repeat("x", len(testMetricsToken)), false, http.StatusUnauthorized},
		{"token prefix", "Bearer " + testMetricsToken[:len(testMetricsToken)-1], false, http.StatusUnauthorized},
		{"staff API token", "Token " + ts.StaffToken, false, http.StatusUnauthorized},
		{"token in the wrong scheme", "Token " + testMetricsToken, false, http.StatusUnauthorized},
		{"staff session", "", true, http.StatusUnauthorized},
		{"metrics token", "Bearer " + testMetricsToken, false, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/metrics", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.cookie {
				req.AddCookie(session)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%d, want %d: %.200s", resp.StatusCode, tt.want, b)
			}
			if tt.want == http.StatusUnauthorized {
				if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
					t.Errorf("WWW-Authenticate %q, want Bearer", h)
				}
				if strings.Contains(string(b), "matrixas_") {
					t.Error("a refused scrape got metrics")
				}
			} else if !strings.Contains(string(b), "matrixas_build_info") {
				t.Errorf("no matrixas metrics in the scrape: %.300s", b)
			}
		})
	}
	if strings.Contains(ts.Logs.String(), testMetricsToken) {
		t.Error("the metrics token is in the log")
	}
}

// TestMetricsMove scrapes, does work (webhook transactions, a duplicate, bad tokens, API
// calls, a setup against an absent homeserver), scrapes again and checks the numbers moved.
func TestMetricsMove(t *testing.T) {
	// A short worker interval: setup does not wake the worker, its next scan does.
	ts := testserver.New(t, testserver.Options{Env: map[string]string{"METRICS_TOKEN": testMetricsToken, "PROVISION_INTERVAL": "100ms"}})
	ctx := context.Background()
	const hsToken = "hs_token_for_metrics_test"
	if err := ts.Web.Settings().Set(ctx, map[string]string{
		settings.HSToken.Key: hsToken, settings.ASToken.Key: "as_token_for_metrics_test", settings.Enabled.Key: "true",
		settings.HomeserverDomain.Key: "localhost", settings.SenderLocalpart.Key: "waldur-bot",
	}); err != nil {
		t.Fatal(err)
	}
	before := scrapeMetrics(t, ts)
	value := func(s metricstest.Scrape, name string, labels map[string]string) float64 {
		v, _ := s.Value(name, labels)
		return v
	}

	txn := func(id, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, ts.URL+"/_matrix/app/v1/transactions/"+id,
			strings.NewReader(`{"events":[{"type":"m.room.message","event_id":"$a","room_id":"!r:localhost","sender":"@u:localhost","content":{}},{"type":"m.room.message","event_id":"$b","room_id":"!r:localhost","sender":"@u:localhost","content":{}}]}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		id, auth string
		want     int
	}{
		{"metrics-1", "Bearer " + hsToken, 200},
		{"metrics-1", "Bearer " + hsToken, 200}, // the homeserver retries: a duplicate
		{"metrics-2", "Bearer wrong-token", 403},
		{"metrics-3", "", 401},
	} {
		if got := txn(c.id, c.auth); got != c.want {
			t.Fatalf("transaction %s with %q: %d, want %d", c.id, c.auth, got, c.want)
		}
	}
	if status := ts.JSON(t, http.MethodGet, "/api/admin/matrix-appservice/status/", ts.StaffToken, nil, nil); status != 200 {
		t.Fatalf("status: %d", status)
	}
	for _, id := range []string{db.NewUUID(), db.NewUUID()} { // two ids, one series
		ts.JSON(t, http.MethodGet, "/api/users/"+id+"/", ts.UserToken, nil, nil)
	}
	// Setup against an address where no homeserver listens: the bot step calls it and fails.
	var setup map[string]any
	if status := ts.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/setup/", ts.StaffToken, map[string]string{
		"url": "http://127.0.0.1:9", "homeserver_url": "http://127.0.0.1:1", "homeserver_domain": "localhost",
		"user_registration_secret": "registration-secret",
	}, &setup); status != 200 {
		t.Fatalf("setup: %d %v", status, setup)
	}

	after := scrapeMetrics(t, ts)
	tests := []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"matrixas_webhook_transactions_total", map[string]string{"result": "new"}, 1},
		{"matrixas_webhook_transactions_total", map[string]string{"result": "duplicate"}, 1},
		{"matrixas_webhook_events_total", nil, 2},
		{"matrixas_webhook_auth_failures_total", map[string]string{"reason": "invalid_token"}, 1},
		{"matrixas_webhook_auth_failures_total", map[string]string{"reason": "missing_token"}, 1},
		{"matrixas_http_requests_total", map[string]string{"route": "/_matrix/app/v1/transactions/{txnId}", "code": "200"}, 2},
		{"matrixas_http_requests_total", map[string]string{"route": "/_matrix/app/v1/transactions/{txnId}", "code": "403"}, 1},
		{"matrixas_http_requests_total", map[string]string{"route": "/api/admin/matrix-appservice/status/", "method": "GET", "code": "200"}, 1},
		{"matrixas_http_requests_total", map[string]string{"route": "/api/users/{uuid}/", "method": "GET", "code": "404"}, 2},
		{"matrixas_homeserver_request_duration_seconds", map[string]string{"caller": "api", "outcome": "network_error"}, 1},
		{"matrixas_transactions_recorded_total", nil, 1},
	}
	for _, tt := range tests {
		got := value(after, tt.name, tt.labels) - value(before, tt.name, tt.labels)
		if tt.name == "matrixas_homeserver_request_duration_seconds" {
			if got < tt.delta {
				t.Errorf("%s%v moved by %v, want at least %v", tt.name, tt.labels, got, tt.delta)
			}
			continue
		}
		if got != tt.delta {
			t.Errorf("%s%v moved by %v, want %v", tt.name, tt.labels, got, tt.delta)
		}
	}
	if v := after.Get(t, "matrixas_last_transaction_timestamp_seconds", nil); v < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("last transaction timestamp %v, want about now", v)
	}
	if after.Get(t, "matrixas_database_up", nil) != 1 {
		t.Error("database_up is not 1")
	}
	for _, route := range after.LabelValues("matrixas_http_requests_total", "route") {
		if strings.Contains(route, "metrics-1") || strings.Contains(route, "/api/users/") && !strings.Contains(route, "{uuid}") && route != "/api/users/" {
			t.Errorf("route label %q is a raw path", route)
		}
	}
	body := func() string { _, b := getMetrics(t, ts.URL+"/metrics", "Bearer "+testMetricsToken); return b }()
	for _, secret := range []string{hsToken, setup["as_token"].(string), setup["hs_token"].(string), ts.StaffToken, "registration-secret"} {
		if strings.Contains(body, secret) {
			t.Errorf("the scrape contains a secret (%.8s...)", secret)
		}
	}

	// The worker now tries to register alice on the absent homeserver, fails, and says so.
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := scrapeMetrics(t, ts)
		if value(s, "matrixas_provision_failures_total", map[string]string{"kind": "user"}) >= 1 &&
			value(s, "matrixas_homeserver_request_duration_seconds", map[string]string{"caller": "worker"}) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker's failed attempt never showed in the metrics:\nprovision: %v", s["matrixas_provision_attempts_total"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsListener serves /metrics on METRICS_ADDR, alone, and stops it with the server.
func TestMetricsListener(t *testing.T) {
	tests := []struct {
		name  string
		token string
	}{
		{"open", ""},
		{"with token", testMetricsToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			metricsAddr := freeLoopbackAddr(t)
			env := map[string]string{
				"DATABASE_PATH": filepath.Join(t.TempDir(), "m.db"),
				"METRICS_ADDR":  metricsAddr,
				"METRICS_TOKEN": tt.token,
			}
			cfg, err := web.LoadConfig(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store, err := db.Open(ctx, cfg.DatabasePath)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			srv, err := web.New(ctx, cfg, store, log, "test")
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, ln) }()

			base := "http://" + metricsAddr
			auth := ""
			if tt.token != "" {
				auth = "Bearer " + tt.token
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				if resp, err := http.Get(base + "/healthz"); err == nil {
					resp.Body.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the metrics listener never answered")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if resp, body := getMetrics(t, base+"/metrics", auth); resp.StatusCode != 200 || !strings.Contains(body, "matrixas_build_info") {
				t.Errorf("GET /metrics on METRICS_ADDR: %d %.200s", resp.StatusCode, body)
			}
			if tt.token != "" {
				if resp, _ := getMetrics(t, base+"/metrics", ""); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("METRICS_ADDR without the token: %d, want 401", resp.StatusCode)
				}
			}
			for _, path := range []string{"/healthz", "/api/schema/", "/"} {
				if resp, _ := getMetrics(t, base+path, auth); resp.StatusCode != http.StatusNotFound {
					t.Errorf("METRICS_ADDR serves %s: %d, want 404 (only /metrics)", path, resp.StatusCode)
				}
			}
			// The main listener serves metrics only with a token.
			want := http.StatusNotFound
			if tt.token != "" {
				want = http.StatusOK
			}
			if resp, _ := getMetrics(t, "http://"+ln.Addr().String()+"/metrics", auth); resp.StatusCode != want {
				t.Errorf("main listener /metrics: %d, want %d", resp.StatusCode, want)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Serve did not return")
			}
			if c, err := net.DialTimeout("tcp", metricsAddr, time.Second); err == nil {
				c.Close()
				t.Error("the metrics listener still accepts connections after shutdown")
			}
		})
	}
}

// TestMetricsListenerBusy: a METRICS_ADDR that cannot be bound stops the start.
func TestMetricsListenerBusy(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	env := map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "m.db"), "METRICS_ADDR": busy.Addr().String()}
	cfg, err := web.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := db.Open(ctx, cfg.DatabasePath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv, err := web.New(ctx, cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = srv.Serve(ctx, ln)
	if err == nil || !strings.Contains(err.Error(), "METRICS_ADDR") {
		t.Errorf("Serve with a busy METRICS_ADDR: %v, want an error naming METRICS_ADDR", err)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestMetricsConfig(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testMetricsToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    web.MetricsConfig
		wantErr string
	}{
		{"default off", nil, web.MetricsConfig{}, ""},
		{"listener", map[string]string{"METRICS_ADDR": "127.0.0.1:9100"}, web.MetricsConfig{Addr: "127.0.0.1:9100"}, ""},
		{"token", map[string]string{"METRICS_TOKEN": testMetricsToken}, web.MetricsConfig{Token: testMetricsToken}, ""},
		{"token file", map[string]string{"METRICS_TOKEN_FILE": tokenFile}, web.MetricsConfig{Token: testMetricsToken}, ""},
		{"bad address", map[string]string{"METRICS_ADDR": "9100"}, web.MetricsConfig{}, "METRICS_ADDR"},
		{"same as LISTEN_ADDR", map[string]string{"METRICS_ADDR": "127.0.0.1:8080"}, web.MetricsConfig{}, "METRICS_ADDR: must differ"},
		{"short token", map[string]string{"METRICS_TOKEN": "short"}, web.MetricsConfig{}, "METRICS_TOKEN: must be at least 16"},
		{"token and file", map[string]string{"METRICS_TOKEN": testMetricsToken, "METRICS_TOKEN_FILE": tokenFile}, web.MetricsConfig{}, "METRICS_TOKEN and METRICS_TOKEN_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := web.LoadConfig(envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testMetricsToken) {
					t.Error("the error shows the token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Metrics != tt.want {
				t.Errorf("Metrics = %+v, want %+v", cfg.Metrics, tt.want)
			}
		})
	}
}
