package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"matrixas/db"
	"matrixas/internal/fakesynapse"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// TestSeedAnswers: the seed endpoints answer as the reference does (MATRIX.md section 6).
func TestSeedAnswers(t *testing.T) {
	s := testserver.New(t)
	ctx := context.Background()

	// Setup without url (and without PUBLIC_URL): the webhook_url is just the path, and
	// the registration has no url.
	body := testserver.SetupBody()
	delete(body, "url")
	res := s.Setup(t, body)
	if res.WebhookURL != "/_matrix/app/v1/transactions/{txnId}" {
		t.Errorf("webhook_url without url: %q", res.WebhookURL)
	}
	if !strings.Contains(res.RegistrationYAML, "\nurl: null\n") {
		t.Errorf("registration without url:\n%s", res.RegistrationYAML)
	}

	// Status: homeserver_url is the public URL when one is set, else the internal one.
	var st map[string]any
	s.JSON(t, http.MethodGet, "/api/admin/matrix-appservice/status/", s.StaffToken, nil, &st)
	if st["homeserver_url"] != testserver.ClosedURL {
		t.Errorf("status homeserver_url without a public URL: %v", st["homeserver_url"])
	}
	if err := s.Web.Settings().Set(ctx, map[string]string{settings.HomeserverPublicURL.Key: "https://matrix.example.org"}); err != nil {
		t.Fatal(err)
	}
	s.JSON(t, http.MethodGet, "/api/admin/matrix-appservice/status/", s.StaffToken, nil, &st)
	if st["homeserver_url"] != "https://matrix.example.org" {
		t.Errorf("status homeserver_url with a public URL: %v", st["homeserver_url"])
	}
}

// TestLinkMatrixAccountAPI: the staff action's answers, against a homeserver that lets
// the bot tell admin accounts (Synapse with the bot a server admin).
func TestLinkMatrixAccountAPI(t *testing.T) {
	s := testserver.New(t)
	ctx := context.Background()
	link := func(uuid, token string, body any) (int, string) {
		t.Helper()
		resp, b := s.Request(t, http.MethodPost, "/api/users/"+uuid+"/link_matrix_account/", token, body)
		return resp.StatusCode, string(b)
	}
	if code, b := link(s.User.UUID, s.StaffToken, map[string]string{}); code != http.StatusBadRequest || !strings.Contains(b, "not set up yet") {
		t.Errorf("without a domain: %d %s", code, b)
	}
	hs := fakesynapse.New(t, fakesynapse.Options{BotIsAdmin: true, Admins: []string{"@root:example.org"}})
	if err := s.Web.Settings().Set(ctx, map[string]string{settings.HomeserverDomain.Key: "example.org", settings.SenderLocalpart.Key: "waldur-bot",
		settings.HomeserverURL.Key: hs.URL, settings.ASToken.Key: "as-token"}); err != nil {
		t.Fatal(err)
	}
	other := &db.User{Username: "bob", IsActive: true}
	if err := s.Store.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.EnsureProfile(ctx, other.ID, db.ProfileRules{Domain: "example.org", BotLocalpart: "waldur-bot"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		uuid   string
		token  string
		body   any
		status int
		has    string
	}{
		{"anonymous", s.User.UUID, "", map[string]string{}, http.StatusUnauthorized, "detail"},
		{"not staff", s.User.UUID, s.UserToken, map[string]string{}, http.StatusForbidden, "detail"},
		{"no such user", db.NewUUID(), s.StaffToken, map[string]string{}, http.StatusNotFound, "detail"},
		{"not a user id", s.User.UUID, s.StaffToken, map[string]string{"matrix_user_id": "alice"}, http.StatusBadRequest, `{"matrix_user_id":["Enter a Matrix user ID such as @alice:example.org."]}`},
		{"another domain", s.User.UUID, s.StaffToken, map[string]string{"matrix_user_id": "@alice:other.org"}, http.StatusBadRequest, "Only accounts on this homeserver (example.org) can be linked."},
		{"the bot", s.User.UUID, s.StaffToken, map[string]string{"matrix_user_id": "@waldur-bot:example.org"}, http.StatusBadRequest, "That is the appservice bot's own account."},
		{"an admin account", s.User.UUID, s.StaffToken, map[string]string{"matrix_user_id": "@root:example.org"}, http.StatusBadRequest, "@root:example.org: it is a homeserver admin account, which is never linked."},
		{"another user's", s.User.UUID, s.StaffToken, map[string]string{"matrix_user_id": "@bob:example.org"}, http.StatusConflict, `{"detail":"@bob:example.org is linked to another user."}`},
		{"by default the user's own id", s.User.UUID, s.StaffToken, map[string]string{}, http.StatusOK, `"matrix_user_id":"@alice:example.org"`},
		{"again: nothing changes", s.User.UUID, s.StaffToken, map[string]string{"matrix_user_id": "@alice:example.org"}, http.StatusOK, `"registration":"linked"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := link(tc.uuid, tc.token, tc.body)
			if code != tc.status || !strings.Contains(b, tc.has) {
				t.Errorf("%d %s, want %d with %q", code, b, tc.status, tc.has)
			}
		})
	}
	if calls := hs.AdminCalls(); len(calls) == 0 || !strings.Contains(strings.Join(calls, " "), "/_synapse/admin/v1/users/@root:example.org/admin") {
		t.Errorf("the homeserver was not asked about the admin account: %v", calls)
	}
	if !strings.Contains(s.Logs.String(), "matrix account linked") {
		t.Error("the link is not in the log")
	}

	// The homeserver does not answer: nothing is linked.
	if err := s.Web.Settings().Set(ctx, map[string]string{settings.HomeserverURL.Key: testserver.ClosedURL}); err != nil {
		t.Fatal(err)
	}
	if code, b := link(s.User.UUID, s.StaffToken, map[string]string{"matrix_user_id": "@alice2:example.org"}); code != http.StatusServiceUnavailable ||
		!strings.Contains(b, "Could not ask the homeserver whether @alice2:example.org is an admin account") {
		t.Errorf("unreachable homeserver: %d %s", code, b)
	}
}
