package testserver

import (
	"net/http"
	"testing"
)

// ClosedURL is a homeserver URL where nothing listens, so bot provisioning is "skipped".
const ClosedURL = "http://127.0.0.1:9"

// SetupBody is a complete setup request for a homeserver at ClosedURL (domain
// example.org, appservice url http://127.0.0.1:8080/); tests change what they need.
func SetupBody() map[string]string {
	return map[string]string{
		"url": "http://127.0.0.1:8080/", "homeserver_url": ClosedURL, "homeserver_domain": "example.org",
		"user_registration_secret": "reg-secret-value", "sender_localpart": "waldur-bot",
	}
}

// SetupResult is the setup API's answer.
type SetupResult struct {
	RegistrationYAML   string `json:"registration_yaml"`
	ASToken            string `json:"as_token"`
	HSToken            string `json:"hs_token"`
	SenderLocalpart    string `json:"sender_localpart"`
	WebhookURL         string `json:"webhook_url"`
	BotProvisionStatus string `json:"bot_provision_status"`
}

// Setup runs POST /api/admin/matrix-appservice/setup/ as staff with body (a JSON value or
// url.Values) and fails the test unless it answers 200.
func (s *Server) Setup(t testing.TB, body any) SetupResult {
	t.Helper()
	var res SetupResult
	if code := s.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/setup/", s.StaffToken, body, &res); code != http.StatusOK {
		t.Fatalf("setup: status %d", code)
	}
	return res
}
