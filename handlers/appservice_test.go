package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"matrixas/db"
	"matrixas/internal/testserver"
)

// closedURL is a homeserver URL where nothing listens, so bot provisioning is "skipped".
const closedURL = "http://127.0.0.1:9"

func setupBody() map[string]string {
	return map[string]string{
		"url": "http://127.0.0.1:8080/", "homeserver_url": closedURL, "homeserver_domain": "example.org",
		"user_registration_secret": "reg-secret-value", "sender_localpart": "waldur-bot",
	}
}

type setupResp struct {
	RegistrationYAML   string `json:"registration_yaml"`
	ASToken            string `json:"as_token"`
	HSToken            string `json:"hs_token"`
	SenderLocalpart    string `json:"sender_localpart"`
	WebhookURL         string `json:"webhook_url"`
	BotProvisionStatus string `json:"bot_provision_status"`
}

func doSetup(t *testing.T, s *testserver.Server, body any) setupResp {
	t.Helper()
	var res setupResp
	if code := s.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/setup/", s.StaffToken, body, &res); code != http.StatusOK {
		t.Fatalf("setup: status %d", code)
	}
	return res
}

func TestStatusFieldsBeforeAndAfterSetup(t *testing.T) {
	s := testserver.New(t)
	var before map[string]any
	if code := s.JSON(t, http.MethodGet, "/api/admin/matrix-appservice/status/", s.StaffToken, nil, &before); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	want := []string{"enabled", "as_token_configured", "hs_token_configured", "sender_localpart", "bot_user_id", "webhook_path", "homeserver_url", "homeserver_domain", "transaction_count"}
	if len(before) != len(want) {
		t.Errorf("status has %d fields, want exactly %d: %v", len(before), len(want), before)
	}
	for _, k := range want {
		if _, ok := before[k]; !ok {
			t.Errorf("status lacks %s", k)
		}
	}
	if before["enabled"] != false || before["bot_user_id"] != "" || before["as_token_configured"] != false {
		t.Errorf("before setup: %v", before)
	}

	doSetup(t, s, setupBody())
	var after map[string]any
	s.JSON(t, http.MethodGet, "/api/admin/matrix-appservice/status/", s.StaffToken, nil, &after)
	if after["enabled"] != true || after["as_token_configured"] != true || after["hs_token_configured"] != true ||
		after["bot_user_id"] != "@waldur-bot:example.org" || after["homeserver_url"] != closedURL ||
		after["webhook_path"] != "/_matrix/app/v1/transactions/{txnId}" || after["transaction_count"] != float64(0) {
		t.Errorf("after setup: %v", after)
	}
}

func TestSetupRotatesAndStores(t *testing.T) {
	s := testserver.New(t)
	first := doSetup(t, s, setupBody())
	if len(first.ASToken) != 64 || len(first.HSToken) != 64 || strings.Trim(first.ASToken+first.HSToken, "0123456789abcdef") != "" {
		t.Fatalf("tokens are not 64 lowercase hex: %q %q", first.ASToken, first.HSToken)
	}
	if first.ASToken == first.HSToken {
		t.Fatal("as and hs tokens are equal")
	}
	if first.WebhookURL != "http://127.0.0.1:8080/_matrix/app/v1/transactions/{txnId}" {
		t.Errorf("webhook_url %q", first.WebhookURL)
	}
	if first.BotProvisionStatus != "skipped" {
		t.Errorf("bot_provision_status %q, want skipped (nothing listens)", first.BotProvisionStatus)
	}
	if !strings.Contains(first.RegistrationYAML, "as_token: "+first.ASToken) || !strings.Contains(first.RegistrationYAML, "url: http://127.0.0.1:8080\n") {
		t.Errorf("registration yaml:\n%s", first.RegistrationYAML)
	}

	// A second call rotates both tokens and keeps the configured homeserver fields even
	// when the request names others.
	body := setupBody()
	body["homeserver_url"] = "http://other.example:8008"
	second := doSetup(t, s, body)
	if second.ASToken == first.ASToken || second.HSToken == first.HSToken {
		t.Error("setup did not rotate the tokens")
	}
	ms, err := s.Web.Settings().Matrix(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ms.HomeserverURL != closedURL || ms.ASToken != second.ASToken || !ms.Enabled || ms.BotProvisionStatus != "skipped" {
		t.Errorf("settings after rotation: url %q enabled %v bot %q", ms.HomeserverURL, ms.Enabled, ms.BotProvisionStatus)
	}
	// The registration secret is write-only: never in a response.
	resp, b := s.Request(t, http.MethodGet, "/api/admin/matrix-appservice/status/", s.StaffToken, nil)
	if strings.Contains(string(b), "reg-secret-value") || resp.StatusCode != http.StatusOK {
		t.Errorf("status leaks the secret or failed: %d %s", resp.StatusCode, b)
	}
}

func TestSetupFormEncoded(t *testing.T) {
	s := testserver.New(t)
	form := url.Values{}
	for k, v := range setupBody() {
		form.Set(k, v)
	}
	res := doSetup(t, s, form)
	if res.SenderLocalpart != "waldur-bot" || len(res.HSToken) != 64 {
		t.Errorf("form setup: %+v", res)
	}
}

func TestSetupValidationChangesNothing(t *testing.T) {
	s := testserver.New(t)
	tests := []struct {
		name   string
		body   any
		fields []string
	}{
		{"nothing configured", map[string]string{}, []string{"homeserver_url", "homeserver_domain", "user_registration_secret", "url"}},
		{"regex localpart", map[string]string{"sender_localpart": ".*", "url": "http://as", "homeserver_url": "http://hs", "homeserver_domain": "hs", "user_registration_secret": "x"}, []string{"sender_localpart"}},
		{"bad urls", map[string]string{"url": "as.example.org", "homeserver_url": "ftp://hs", "homeserver_public_url": "nope", "homeserver_domain": "hs", "user_registration_secret": "x"}, []string{"url", "homeserver_url", "homeserver_public_url"}},
		{"bad domain", map[string]string{"url": "http://as", "homeserver_url": "http://hs", "homeserver_domain": "a b", "user_registration_secret": "x"}, []string{"homeserver_domain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errs map[string][]string
			if code := s.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/setup/", s.StaffToken, tt.body, &errs); code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", code)
			}
			for _, f := range tt.fields {
				if len(errs[f]) == 0 {
					t.Errorf("no error for %s: %v", f, errs)
				}
			}
			ms, err := s.Web.Settings().Matrix(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if ms.Enabled || ms.ASToken != "" || ms.HomeserverURL != "" || ms.HomeserverDomain != "" || ms.RegistrationSecret != "" {
				t.Errorf("a refused setup changed settings: %+v", ms)
			}
		})
	}
	// Malformed bodies.
	for _, body := range []string{`{`, `[]`, `{"url": "http://as"} x`} {
		if code := s.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/setup/", s.StaffToken, body, nil); code != http.StatusBadRequest {
			t.Errorf("body %q: status %d, want 400", body, code)
		}
	}
}

func TestAdminEndpointsAuthorization(t *testing.T) {
	s := testserver.New(t)
	for _, ep := range []struct{ method, path string }{
		{http.MethodGet, "/api/admin/matrix-appservice/status/"},
		{http.MethodPost, "/api/admin/matrix-appservice/setup/"},
		{http.MethodPost, "/api/admin/matrix-appservice/provision-bot/"},
		{http.MethodGet, "/api/admin/matrix-appservice/registration.yaml"},
	} {
		var d map[string]string
		if code := s.JSON(t, ep.method, ep.path, "", "{}", &d); code != http.StatusUnauthorized || d["detail"] == "" {
			t.Errorf("%s %s anonymous: %d %v", ep.method, ep.path, code, d)
		}
		if code := s.JSON(t, ep.method, ep.path, s.UserToken, "{}", &d); code != http.StatusForbidden || d["detail"] == "" {
			t.Errorf("%s %s non-staff: %d %v", ep.method, ep.path, code, d)
		}
	}
}

func TestRegistrationDownload(t *testing.T) {
	s := testserver.New(t)
	resp, body := s.Request(t, http.MethodGet, "/api/admin/matrix-appservice/registration.yaml", s.StaffToken, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "not set up") {
		t.Fatalf("before setup: %d %s", resp.StatusCode, body)
	}
	res := doSetup(t, s, setupBody())
	resp, body = s.Request(t, http.MethodGet, "/api/admin/matrix-appservice/registration.yaml", s.StaffToken, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after setup: %d", resp.StatusCode)
	}
	if string(body) != res.RegistrationYAML {
		t.Errorf("download differs from setup's registration_yaml:\n%s\n---\n%s", body, res.RegistrationYAML)
	}
	for h, want := range map[string]string{
		"Content-Disposition": `attachment; filename="waldur-registration.yaml"`,
		"Content-Type":        "application/yaml; charset=utf-8",
		"Cache-Control":       "no-store",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}

func TestProvisionBotBeforeSetup(t *testing.T) {
	s := testserver.New(t)
	var d map[string]string
	if code := s.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/provision-bot/", s.StaffToken, "{}", &d); code != http.StatusBadRequest || d["detail"] == "" {
		t.Errorf("provision-bot before setup: %d %v", code, d)
	}
}

// hsRequest sends a homeserver-style request with a Bearer token.
func hsRequest(t *testing.T, s *testserver.Server, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func txnCount(t *testing.T, s *testserver.Server) int64 {
	t.Helper()
	n, err := s.Store.Counter(context.Background(), db.CounterTransactions)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWebhook(t *testing.T) {
	s := testserver.New(t)
	res := doSetup(t, s, setupBody())
	hs := res.HSToken
	msg := `{"events":[{"type":"m.room.message","event_id":"$e1","room_id":"!r:example.org","sender":"@a:example.org","content":{"body":"hi"}}]}`
	tests := []struct {
		name, method, path, token, body string
		status                          int
		errcode                         string
	}{
		{"no token", http.MethodPut, "/_matrix/app/v1/transactions/t0", "", msg, 401, "M_MISSING_TOKEN"},
		{"wrong token", http.MethodPut, "/_matrix/app/v1/transactions/t0", strings.Repeat("0", 64), msg, 403, "M_FORBIDDEN"},
		{"as token is not the hs token", http.MethodPut, "/_matrix/app/v1/transactions/t0", res.ASToken, msg, 403, "M_FORBIDDEN"},
		{"not json", http.MethodPut, "/_matrix/app/v1/transactions/t0", hs, `{"events": [`, 400, "M_NOT_JSON"},
		{"events not a list", http.MethodPut, "/_matrix/app/v1/transactions/t0", hs, `{"events": {}}`, 400, "M_BAD_JSON"},
		{"ok", http.MethodPut, "/_matrix/app/v1/transactions/t1", hs, msg, 200, ""},
		{"replay", http.MethodPut, "/_matrix/app/v1/transactions/t1", hs, msg, 200, ""},
		{"legacy path", http.MethodPut, "/transactions/t2", hs, msg, 200, ""},
		{"ping", http.MethodPost, "/_matrix/app/v1/ping", hs, `{"transaction_id":"p1"}`, 200, ""},
		{"ping without token", http.MethodPost, "/_matrix/app/v1/ping", "", `{}`, 401, "M_MISSING_TOKEN"},
		{"user query", http.MethodGet, "/_matrix/app/v1/users/@x:example.org", hs, "", 404, "M_NOT_FOUND"},
		{"alias query", http.MethodGet, "/_matrix/app/v1/rooms/%23waldur-x:example.org", hs, "", 404, "M_NOT_FOUND"},
		{"unknown path", http.MethodGet, "/_matrix/app/v1/thirdparty/protocol/x", hs, "", 404, "M_UNRECOGNIZED"},
		{"wrong method", http.MethodGet, "/_matrix/app/v1/transactions/t1", hs, "", 405, "M_UNRECOGNIZED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := hsRequest(t, s, tt.method, tt.path, tt.token, tt.body)
			if code != tt.status {
				t.Fatalf("status %d, want %d (%v)", code, tt.status, out)
			}
			if tt.errcode != "" && out["errcode"] != tt.errcode {
				t.Errorf("errcode %v, want %s", out["errcode"], tt.errcode)
			}
			if tt.status == 200 && len(out) != 0 {
				t.Errorf("body %v, want {}", out)
			}
		})
	}
	if n := txnCount(t, s); n != 2 {
		t.Errorf("transaction_count = %d, want 2 (t1 once, t2)", n)
	}
	events, _ := s.Store.Counter(context.Background(), db.CounterEvents)
	if events != 2 {
		t.Errorf("events counter = %d, want 2", events)
	}
	// No secret in the log.
	logs := s.Logs.String()
	for _, secret := range []string{hs, res.ASToken, "reg-secret-value"} {
		if strings.Contains(logs, secret) {
			t.Error("a secret reached the log")
		}
	}
}

func TestWebhookConcurrentSameTxnCountsOnce(t *testing.T) {
	s := testserver.New(t)
	hs := doSetup(t, s, setupBody()).HSToken
	var wg sync.WaitGroup
	codes := make(chan int, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := hsRequest(t, s, http.MethodPut, fmt.Sprintf("/_matrix/app/v1/transactions/c%d", i%8), hs, `{"events":[{"type":"x","event_id":"$1"}]}`)
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("status %d", c)
		}
	}
	if n := txnCount(t, s); n != 8 {
		t.Errorf("transaction_count = %d, want 8 distinct txnIds", n)
	}
}

func TestWebhookDisabledDiscards(t *testing.T) {
	s := testserver.New(t)
	hs := doSetup(t, s, setupBody()).HSToken
	if err := s.Web.Settings().Set(context.Background(), map[string]string{db.SettingEnabled: "false"}); err != nil {
		t.Fatal(err)
	}
	code, out := hsRequest(t, s, http.MethodPut, "/_matrix/app/v1/transactions/d1", hs, `{"events":[]}`)
	if code != http.StatusOK || len(out) != 0 {
		t.Fatalf("disabled: %d %v", code, out)
	}
	if seen, _ := s.Store.TransactionSeen(context.Background(), "d1"); seen || txnCount(t, s) != 0 {
		t.Error("a transaction was recorded while disabled")
	}
}

func TestWebhookBodyLimit(t *testing.T) {
	s := testserver.New(t, testserver.Options{Env: map[string]string{"WEBHOOK_MAX_BODY_MB": "1"}})
	hs := doSetup(t, s, setupBody()).HSToken
	big := `{"events":[{"type":"m.room.message","content":{"body":"` + strings.Repeat("x", 1<<20) + `"}}]}`
	code, out := hsRequest(t, s, http.MethodPut, "/_matrix/app/v1/transactions/big", hs, big)
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d (%v), want 413", code, out)
	}
	if txnCount(t, s) != 0 {
		t.Error("an oversized transaction was recorded")
	}
}

func TestWebhookSurvivesRestart(t *testing.T) {
	dbPath := t.TempDir() + "/restart.db"
	s := testserver.New(t, testserver.Options{DatabasePath: dbPath})
	hs := doSetup(t, s, setupBody()).HSToken
	if code, _ := hsRequest(t, s, http.MethodPut, "/_matrix/app/v1/transactions/r1", hs, `{"events":[]}`); code != 200 {
		t.Fatal(code)
	}
	s.Close()
	s2 := testserver.New(t, testserver.Options{DatabasePath: dbPath})
	if code, _ := hsRequest(t, s2, http.MethodPut, "/_matrix/app/v1/transactions/r1", hs, `{"events":[]}`); code != 200 {
		t.Fatal(code)
	}
	if n := txnCount(t, s2); n != 1 {
		t.Errorf("after restart and replay, count = %d, want 1", n)
	}
}
