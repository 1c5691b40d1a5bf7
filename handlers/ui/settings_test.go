package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"matrixas/internal/testserver"
	"matrixas/settings"
)

func TestSettingsPage(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	ctx := context.Background()
	st := srv.Web.Settings()

	tests := []struct {
		name   string
		form   url.Values
		fields []string
	}{
		{"empty", url.Values{}, []string{"homeserver_url", "homeserver_domain"}},
		{"bad url", url.Values{"homeserver_url": {"matrix.example.org"}, "homeserver_domain": {"example.org"}}, []string{"homeserver_url"}},
		{"bad public url", url.Values{"homeserver_url": {"http://hs:8008"}, "homeserver_public_url": {"ftp://x"}, "homeserver_domain": {"example.org"}}, []string{"homeserver_public_url"}},
		{"bad domain", url.Values{"homeserver_url": {"http://hs:8008"}, "homeserver_domain": {"exa mple.org"}}, []string{"homeserver_domain"}},
		{"long secret", url.Values{"homeserver_url": {"http://hs:8008"}, "homeserver_domain": {"example.org"}, "user_registration_secret": {strings.Repeat("s", 1025)}}, []string{"user_registration_secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, doc := postForm(t, srv, c, "/settings", tt.form)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for _, f := range tt.fields {
				if textOf(doc, "error-"+f) == "" {
					t.Errorf("no error on %s", f)
				}
			}
			if n := doc.Find(".field-error").Length(); n != len(tt.fields) {
				t.Errorf("%d errors, want %d", n, len(tt.fields))
			}
			if ms, _ := st.Matrix(ctx); ms.HomeserverURL != "" || ms.HomeserverDomain != "" {
				t.Errorf("an invalid form saved something: %q %q", ms.HomeserverURL, ms.HomeserverDomain)
			}
		})
	}

	got := postRedirectFlash(t, srv, c, "/settings", url.Values{
		"homeserver_url": {"http://hs:8008/"}, "homeserver_public_url": {"https://chat.example.org"},
		"homeserver_domain": {"example.org"}, "user_registration_secret": {"first-secret"},
	}, "/settings")
	if len(got) != 1 || got[0] != "success: Settings saved." {
		t.Errorf("flashes %q", got)
	}
	ms, _ := st.Matrix(ctx)
	if ms.HomeserverURL != "http://hs:8008" || ms.HomeserverPublicURL != "https://chat.example.org" || ms.HomeserverDomain != "example.org" || ms.RegistrationSecret != "first-secret" {
		t.Fatalf("saved %+v", ms)
	}
	_, doc := getPage(t, srv, c, "/settings")
	if strings.Contains(doc.Text(), "first-secret") {
		t.Fatal("the settings page shows the secret")
	}
	if v, _ := doc.Find("#settings-user_registration_secret").Attr("value"); v != "" {
		t.Errorf("secret input has value %q", v)
	}

	// An empty secret keeps the stored one; an empty public URL clears it. Changing the
	// domain of an enabled appservice warns that setup must run again.
	if err := st.Set(ctx, map[string]string{settings.Enabled.Key: "true", settings.ASToken.Key: strings.Repeat("a", 64)}); err != nil {
		t.Fatal(err)
	}
	got = postRedirectFlash(t, srv, c, "/settings", url.Values{"homeserver_url": {"http://hs:8008"}, "homeserver_domain": {"new.example.org"}}, "/settings")
	if len(got) != 2 || !strings.HasPrefix(got[0], "info: The domain changed") || got[1] != "success: Settings saved." {
		t.Errorf("flashes %q", got)
	}
	ms, _ = st.Matrix(ctx)
	if ms.RegistrationSecret != "first-secret" || ms.HomeserverPublicURL != "" || ms.HomeserverDomain != "new.example.org" {
		t.Errorf("after the second save: secret kept %v, public %q, domain %q", ms.RegistrationSecret == "first-secret", ms.HomeserverPublicURL, ms.HomeserverDomain)
	}
	_, doc = getPage(t, srv, c, "/settings")
	if got := textOf(doc, "as-token"); !strings.HasPrefix(got, "sha256:") || strings.Contains(doc.Text(), strings.Repeat("a", 64)) {
		t.Errorf("as_token shown as %q", got)
	}
}

func TestSettingsPageEnvironmentLocks(t *testing.T) {
	srv := testserver.New(t, testserver.Options{Env: map[string]string{"MATRIX_HOMESERVER_DOMAIN": "env.example.org", "MATRIX_USER_REGISTRATION_SECRET": "env-secret"}})
	c := srv.Browser(t)
	_, doc := getPage(t, srv, c, "/settings")
	if _, ro := doc.Find("#settings-homeserver_domain").Attr("readonly"); !ro || !strings.Contains(textOf(doc, "field-homeserver_domain"), "MATRIX_HOMESERVER_DOMAIN") {
		t.Errorf("domain field: readonly %v, text %q", ro, textOf(doc, "field-homeserver_domain"))
	}
	if doc.Find(tid("locked-user_registration_secret")).Length() != 1 || strings.Contains(doc.Text(), "env-secret") {
		t.Error("secret not locked, or shown")
	}
	// A crafted form cannot change what the environment fixes.
	postRedirectFlash(t, srv, c, "/settings", url.Values{
		"homeserver_url": {"http://hs:8008"}, "homeserver_domain": {"evil.example.org"}, "user_registration_secret": {"evil"},
	}, "/settings")
	ms, _ := srv.Web.Settings().Matrix(context.Background())
	if ms.HomeserverDomain != "env.example.org" || ms.RegistrationSecret != "env-secret" || ms.HomeserverURL != "http://hs:8008" {
		t.Errorf("after a crafted post: %q %v %q", ms.HomeserverDomain, ms.RegistrationSecret == "env-secret", ms.HomeserverURL)
	}
	for _, key := range []string{settings.HomeserverDomain.Key, settings.RegistrationSecret.Key} {
		if v, _ := srv.Web.Settings().Get(context.Background(), key); v != "" {
			t.Errorf("%s written to the database: %q", key, v)
		}
	}
}
