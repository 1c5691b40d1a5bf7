package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"matrixas/internal/testserver"
)

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

	s.Setup(t, testserver.SetupBody())
	var after map[string]any
	s.JSON(t, http.MethodGet, "/api/admin/matrix-appservice/status/", s.StaffToken, nil, &after)
	if after["enabled"] != true || after["as_token_configured"] != true || after["hs_token_configured"] != true ||
		after["bot_user_id"] != "@waldur-bot:example.org" || after["homeserver_url"] != testserver.ClosedURL ||
		after["webhook_path"] != "/_matrix/app/v1/transactions/{txnId}" || after["transaction_count"] != float64(0) {
		t.Errorf("after setup: %v", after)
	}
}

func TestSetupRotatesAndStores(t *testing.T) {
	s := testserver.New(t)
	first := s.Setup(t, testserver.SetupBody())
	if len(first.ASToken) != 64 || len(first.HSToken) != 64 || strings.Trim(first.ASToken+first.HSToken, "0123456789abcdef") != "" {
		t.Fatalf("tokens are not 64 lowercase hex: %q %q", first.ASToken, first.HSToken)
	}
	if first.ASToken == first.HSToken {
		t.Fatal("as and hs tokens are equal")
	}
	if first.WebhookURL != "http://127.0.0.1:8080/_matrix/app/v1/transactions/{txnId}" {
		t.Errorf("webhook_url %q", first.WebhookURL)
	}
	if !strings.HasPrefix(string(first.BotProvisionStatus), "failed: ") || !strings.Contains(string(first.BotProvisionStatus), "connection refused") {
		t.Errorf("bot_provision_status %q, want failed: ...connection refused (nothing listens)", first.BotProvisionStatus)
	}
	if !strings.Contains(first.RegistrationYAML, "as_token: "+first.ASToken) || !strings.Contains(first.RegistrationYAML, "url: http://127.0.0.1:8080\n") {
		t.Errorf("registration yaml:\n%s", first.RegistrationYAML)
	}

	// A second call rotates both tokens and keeps the configured homeserver fields even
	// when the request names others.
	body := testserver.SetupBody()
	body["homeserver_url"] = "http://other.example:8008"
	second := s.Setup(t, body)
	if second.ASToken == first.ASToken || second.HSToken == first.HSToken {
		t.Error("setup did not rotate the tokens")
	}
	ms, err := s.Web.Settings().Matrix(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ms.HomeserverURL != testserver.ClosedURL || ms.ASToken != second.ASToken || !ms.Enabled || string(ms.BotProvisionStatus) != second.BotProvisionStatus {
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
	for k, v := range testserver.SetupBody() {
		form.Set(k, v)
	}
	res := s.Setup(t, form)
	if res.SenderLocalpart != "waldur-bot" || len(res.HSToken) != 64 {
		t.Errorf("form setup: %+v", res)
	}
}

func TestSetupValidationChangesNothing(t *testing.T) {
	s := testserver.New(t)
	tests := []struct {
		name   string
		body   any
		fields []string // {"field": [...]} answers
		detail string   // {"detail": "..."} answers
	}{
		// The reference's answer: every missing prerequisite by its environment variable;
		// url is not one.
		{"nothing configured", map[string]string{}, nil,
			"Matrix prerequisites missing: MATRIX_HOMESERVER_URL, MATRIX_HOMESERVER_DOMAIN, MATRIX_USER_REGISTRATION_SECRET"},
		{"only the domain given", map[string]string{"homeserver_domain": "hs"}, nil,
			"Matrix prerequisites missing: MATRIX_HOMESERVER_URL, MATRIX_USER_REGISTRATION_SECRET"},
		{"regex localpart", map[string]string{"sender_localpart": ".*", "url": "http://as", "homeserver_url": "http://hs", "homeserver_domain": "hs", "user_registration_secret": "x"}, []string{"sender_localpart"}, ""},
		{"bad urls", map[string]string{"url": "as.example.org", "homeserver_url": "ftp://hs", "homeserver_public_url": "nope", "homeserver_domain": "hs", "user_registration_secret": "x"}, []string{"url", "homeserver_url", "homeserver_public_url"}, ""},
		{"bad domain", map[string]string{"url": "http://as", "homeserver_url": "http://hs", "homeserver_domain": "a b", "user_registration_secret": "x"}, []string{"homeserver_domain"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var answer map[string]any
			if code := s.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/setup/", s.StaffToken, tt.body, &answer); code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", code)
			}
			if tt.detail != "" && (len(answer) != 1 || answer["detail"] != tt.detail) {
				t.Errorf("answer %v, want only the detail %q", answer, tt.detail)
			}
			for _, f := range tt.fields {
				if msgs, ok := answer[f].([]any); !ok || len(msgs) == 0 {
					t.Errorf("no error for %s: %v", f, answer)
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
	res := s.Setup(t, testserver.SetupBody())
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
