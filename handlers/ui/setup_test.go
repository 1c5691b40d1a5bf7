package ui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"matrixas/internal/testserver"
)

// fakeHomeserver answers the bot provisioning calls (register, display name) with
// success, or with M_UNKNOWN_TOKEN while reject is set.
func fakeHomeserver(t *testing.T, reject *atomic.Bool) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if reject.Load() {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown token"}`)
			return
		}
		switch {
		case r.URL.Path == "/_matrix/client/v3/register":
			io.WriteString(w, `{"user_id":"@waldur-bot:example.org"}`)
		case strings.HasPrefix(r.URL.Path, "/_matrix/client/v3/profile/"):
			io.WriteString(w, `{}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		}
	}))
	t.Cleanup(hs.Close)
	return hs
}

func setupForm(hsURL string) url.Values {
	return url.Values{
		"url": {"https://as.example.org/"}, "sender_localpart": {"waldur-bot"},
		"homeserver_url": {hsURL}, "homeserver_domain": {"example.org"}, "user_registration_secret": {"the-shared-secret"},
	}
}

func TestSetupPageFirstRun(t *testing.T) {
	srv := testserver.New(t, testserver.Options{Env: map[string]string{"PUBLIC_URL": "https://public.example.org"}})
	c := srv.Browser(t)
	ctx := context.Background()

	_, doc := getPage(t, srv, c, "/setup")
	if v, _ := doc.Find("#setup-url").Attr("value"); v != "https://public.example.org" {
		t.Errorf("url defaults to %q, want PUBLIC_URL", v)
	}
	if doc.Find(tid("rotate-warning")).Length() != 0 || doc.Find(tid("current-registration")).Length() != 0 {
		t.Error("first run shows a rotation warning or a current registration")
	}
	if got := textOf(doc, "field-user_registration_secret"); !strings.Contains(got, "not set") {
		t.Errorf("secret field %q", got)
	}
	if doc.Find(`[data-testid^="locked-"]`).Length() != 0 {
		t.Error("a field is locked on a fresh install")
	}

	// Invalid: inline errors, 200, nothing written.
	bad := setupForm("matrix.example.org")
	bad.Set("homeserver_domain", "exa mple.org")
	bad.Set("sender_localpart", ".*")
	resp, doc := postForm(t, srv, c, "/setup", bad)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("invalid setup: status %d", resp.StatusCode)
	}
	for _, f := range []string{"homeserver_url", "homeserver_domain", "sender_localpart"} {
		if textOf(doc, "error-"+f) == "" {
			t.Errorf("no inline error on %s", f)
		}
	}
	if v, _ := doc.Find("#setup-homeserver_domain").Attr("value"); v != "exa mple.org" {
		t.Errorf("typed domain not kept: %q", v)
	}
	if ms, _ := srv.Web.Settings().Matrix(ctx); ms.Enabled || ms.ASToken != "" || ms.HomeserverDomain != "" {
		t.Fatalf("an invalid setup changed the settings: %+v", ms)
	}

	// Valid, with an unreachable homeserver: the YAML once, the bot failed with the reason.
	resp, doc = postForm(t, srv, c, "/setup", setupForm("http://127.0.0.1:1"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("setup: status %d", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on the page with tokens", cc)
	}
	yaml := doc.Find(tid("registration-yaml")).Text()
	ms, _ := srv.Web.Settings().Matrix(ctx)
	if !ms.Enabled || !strings.Contains(yaml, ms.ASToken) || !strings.Contains(yaml, ms.HSToken) {
		t.Fatalf("after setup: enabled %v, YAML with the tokens: %v", ms.Enabled, strings.Contains(yaml, ms.ASToken))
	}
	if got := textOf(doc, "webhook-url"); got != "https://as.example.org/_matrix/app/v1/transactions/{txnId}" {
		t.Errorf("webhook url %q", got)
	}
	if got := textOf(doc, "bot-status"); !strings.HasPrefix(got, "Failed: ") || !strings.Contains(got, "connection refused") {
		t.Errorf("bot status %q", got)
	}
	if f := flashes(doc); len(f) != 1 || !strings.HasPrefix(f[0], "success: Setup complete") {
		t.Errorf("flashes %q", f)
	}
	assertAccessible(t, doc)
	if doc.Find(tid("install-synapse")).Length() != 1 || doc.Find(tid("install-dendrite")).Length() != 1 {
		t.Error("no install instructions")
	}
	if !strings.Contains(textOf(doc, "install-synapse"), "app_service_config_files") || !strings.Contains(textOf(doc, "install-dendrite"), "app_service_api: config_files") {
		t.Errorf("instructions lack the config keys: %q / %q", textOf(doc, "install-synapse"), textOf(doc, "install-dendrite"))
	}
	// The page's YAML is exactly what the download gives.
	href, _ := doc.Find(tid("download-registration")).Attr("href")
	dl, err := c.Get(srv.URL + href)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(dl.Body)
	dl.Body.Close()
	if dl.StatusCode != http.StatusOK || string(body) != yaml {
		t.Errorf("download %s: status %d, same as the page: %v", href, dl.StatusCode, string(body) == yaml)
	}
	if strings.Contains(doc.Text(), "the-shared-secret") {
		t.Error("the registration secret is on the page")
	}

	// Later visits: the registration's public side, never the tokens.
	_, doc = getPage(t, srv, c, "/setup")
	if strings.Contains(doc.Text(), ms.ASToken) || strings.Contains(doc.Text(), ms.HSToken) || strings.Contains(doc.Text(), "the-shared-secret") {
		t.Fatal("GET /setup shows a secret")
	}
	assertAccessible(t, doc)
	if doc.Find(tid("current-registration")).Length() != 1 || doc.Find(tid("rotate-warning")).Length() != 1 {
		t.Error("no current registration or rotation warning after setup")
	}
	for _, f := range []string{"homeserver_url", "homeserver_domain", "user_registration_secret"} {
		if doc.Find(tid("locked-"+f)).Length() != 1 {
			t.Errorf("%s not locked once configured", f)
		}
		if _, named := doc.Find("#setup-" + f).Attr("name"); named {
			t.Errorf("locked %s is still submitted", f)
		}
	}
	if got := textOf(doc, "field-user_registration_secret"); !strings.Contains(got, "set") || strings.Contains(got, "not set") {
		t.Errorf("secret field %q", got)
	}

	// Again without the confirmation: refused, tokens unchanged. With it: rotated.
	resp, doc = postForm(t, srv, c, "/setup", url.Values{"url": {"https://as.example.org"}})
	if resp.StatusCode != http.StatusOK || textOf(doc, "error-confirm_rotate") == "" {
		t.Fatalf("unconfirmed re-run: status %d, error %q", resp.StatusCode, textOf(doc, "error-confirm_rotate"))
	}
	if ms2, _ := srv.Web.Settings().Matrix(ctx); ms2.ASToken != ms.ASToken {
		t.Fatal("an unconfirmed re-run rotated the tokens")
	}
	resp, doc = postForm(t, srv, c, "/setup", url.Values{"url": {"https://as.example.org"}, "confirm_rotate": {"yes"}})
	if resp.StatusCode != http.StatusOK || doc.Find(tid("setup-result")).Length() != 1 {
		t.Fatalf("confirmed re-run: status %d", resp.StatusCode)
	}
	if ms2, _ := srv.Web.Settings().Matrix(ctx); ms2.ASToken == ms.ASToken || ms2.HomeserverDomain != "example.org" {
		t.Errorf("confirmed re-run: tokens rotated %v, domain %q", ms2.ASToken != ms.ASToken, ms2.HomeserverDomain)
	}
}

func TestSetupPageEnvironmentLocks(t *testing.T) {
	srv := testserver.New(t, testserver.Options{Env: map[string]string{
		"MATRIX_HOMESERVER_URL": "http://hs.internal:8008", "MATRIX_USER_REGISTRATION_SECRET": "env-secret",
	}})
	c := srv.Browser(t)
	_, doc := getPage(t, srv, c, "/setup")
	in := doc.Find("#setup-homeserver_url")
	if v, _ := in.Attr("value"); v != "http://hs.internal:8008" {
		t.Errorf("locked value %q", v)
	}
	if _, ro := in.Attr("readonly"); !ro {
		t.Error("env-fixed homeserver_url is editable")
	}
	if !strings.Contains(textOf(doc, "field-homeserver_url"), "MATRIX_HOMESERVER_URL") {
		t.Errorf("no reason naming the variable: %q", textOf(doc, "field-homeserver_url"))
	}
	if !strings.Contains(textOf(doc, "field-user_registration_secret"), "MATRIX_USER_REGISTRATION_SECRET") {
		t.Errorf("secret lock reason %q", textOf(doc, "field-user_registration_secret"))
	}
	if strings.Contains(doc.Text(), "env-secret") {
		t.Error("the secret from the environment is on the page")
	}
	if doc.Find(tid("locked-homeserver_domain")).Length() != 0 {
		t.Error("the domain is locked although nothing sets it")
	}
}

func TestSetupRetryBotProvisioning(t *testing.T) {
	var reject atomic.Bool
	reject.Store(true)
	hs := fakeHomeserver(t, &reject)
	srv := testserver.New(t)
	c := srv.Browser(t)

	got := postRedirectFlash(t, srv, c, "/setup/provision-bot", nil, "/setup")
	if len(got) != 1 || !strings.HasPrefix(got[0], "error: The appservice is not set up yet") {
		t.Errorf("before setup: %q", got)
	}

	resp, doc := postForm(t, srv, c, "/setup", setupForm(hs.URL))
	if resp.StatusCode != http.StatusOK || textOf(doc, "bot-status") != "Failed: M_UNKNOWN_TOKEN" {
		t.Fatalf("setup against a homeserver without the registration: status %d, bot %q", resp.StatusCode, textOf(doc, "bot-status"))
	}

	// JavaScript off: redirect with a flash.
	got = postRedirectFlash(t, srv, c, "/setup/provision-bot", nil, "/setup")
	if len(got) != 1 || !strings.HasPrefix(got[0], "error: Bot provisioning failed: M_UNKNOWN_TOKEN") {
		t.Errorf("retry, still rejected: %q", got)
	}

	// The homeserver now knows the appservice; htmx swaps the bot panel and the flashes.
	reject.Store(false)
	resp, doc = postForm(t, srv, c, "/setup/provision-bot", nil, "HX-Request", "true", "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("htmx retry: status %d", resp.StatusCode)
	}
	if doc.Find("#bot-panel").Length() != 1 || textOf(doc, "bot-status") != "Provisioned" {
		t.Errorf("htmx retry: bot panel %d, status %q", doc.Find("#bot-panel").Length(), textOf(doc, "bot-status"))
	}
	if oob, _ := doc.Find("#flashes").Attr("hx-swap-oob"); oob != "true" || !strings.HasPrefix(strings.Join(flashes(doc), ""), "success: The bot is provisioned") {
		t.Errorf("htmx retry: flashes %q (oob %q)", flashes(doc), oob)
	}
	if doc.Find("title, header, nav").Length() != 0 {
		t.Error("htmx retry answered a whole page")
	}
	if ms, _ := srv.Web.Settings().Matrix(context.Background()); ms.BotProvisionStatus != "ok" {
		t.Errorf("stored bot status %q", ms.BotProvisionStatus)
	}
}
