package diagnostics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"maunium.net/go/mautrix"

	"matrixas/auth"
	"matrixas/diagnostics"
	"matrixas/internal/dendritetest"
	"matrixas/matrix"
	"matrixas/settings"
)

// TestAgainstDendrite runs the diagnostics against a real Dendrite: all green when set
// up, then each classic failure in turn on the same homeserver.
func TestAgainstDendrite(t *testing.T) {
	dendritetest.Require(t)
	ctx := context.Background()

	// This appservice's side: answers whatever Dendrite might push.
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer as.Close()

	const sharedSecret = "diagnostics-shared-secret"
	e := newEnv(t, map[string]string{
		settings.HomeserverDomain.Key:   dendritetest.DefaultServerName,
		settings.RegistrationSecret.Key: sharedSecret,
		settings.ASToken.Key:            auth.RandomHex(32),
		settings.HSToken.Key:            auth.RandomHex(32),
		settings.SenderLocalpart.Key:    "waldur-bot",
		settings.AppserviceURL.Key:      as.URL,
		settings.Enabled.Key:            "true",
	})
	ms, err := e.settings.Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := matrix.BuildRegistration(ms)
	if err != nil {
		t.Fatal(err)
	}
	yaml, err := reg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	regFile := filepath.Join(t.TempDir(), "registration.yaml")
	if err := os.WriteFile(regFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	hs := dendritetest.Start(t, dendritetest.Options{
		RegistrationFiles: []string{regFile},
		SharedSecret:      sharedSecret,
		Federation:        true, // for /_matrix/federation/v1/version and /_matrix/key/v2/server
	})
	// The public URL differs from the internal one only by name, so the CORS probe runs.
	public := strings.Replace(hs.URL, "127.0.0.1", "localhost", 1)
	set := func(values map[string]string) {
		t.Helper()
		if err := e.settings.Set(ctx, values); err != nil {
			t.Fatal(err)
		}
	}
	set(map[string]string{settings.HomeserverURL.Key: hs.URL, settings.HomeserverPublicURL.Key: public})

	t.Run("set up: all green", func(t *testing.T) {
		rep := e.run(t)
		if !rep.OK {
			for _, c := range rep.Checks {
				t.Logf("%s ok=%v %s | %s", c.Name, c.OK, c.Detail, c.Hint)
			}
			t.Fatal("a set-up Dendrite is not all green")
		}
		for name, want := range map[string]expect{
			diagnostics.CheckHomeserverReachable:  {true, "OK — Dendrite 0.13.8, spec up to v1.2, round trip ", ""},
			diagnostics.CheckHomeserverServerName: {true, "server_name is localhost (from the bot's user ID @waldur-bot:localhost)", ""},
			diagnostics.CheckPublicReachable:      {true, "CORS allows browsers", ""},
			diagnostics.CheckSecretEnabled:        {true, "nonces", ""},
			diagnostics.CheckBotWhoami:            {true, "OK — authenticated as @waldur-bot:localhost", ""},
			diagnostics.CheckUserNamespace:        {true, "OK — can act as the bot @waldur-bot:localhost", ""},
			diagnostics.CheckPing:                 {true, "Not supported by this homeserver (spec up to v1.2; ping needs v1.7) — evidence from transactions_received instead: no transaction received yet", ""},
			// Dendrite has no admin API an appservice may use, and no well-known here.
			diagnostics.CheckBotAdmin:      {true, "Not available — Dendrite 0.13.8 has no admin API an appservice may use: deactivated users are signed out", ""},
			diagnostics.CheckLiveKit:       {true, "None listed: ", ""},
			diagnostics.CheckWebhookErrors: {true, "None ", ""},
		} {
			assertCheck(t, rep, name, want)
		}
	})

	t.Run("acts as a provisioned platform user", func(t *testing.T) {
		// Register alice through the appservice (the non-exclusive namespace), as the
		// provisioning worker does, and record her profile as provisioned.
		cli, err := mautrix.NewClient(hs.URL, "", ms.ASToken)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cli.MakeRequest(ctx, http.MethodPost, cli.BuildClientURL("v3", "register"), &mautrix.ReqRegister[any]{
			Username: "alice", Type: mautrix.AuthTypeAppservice, InhibitLogin: true,
		}, nil)
		if err != nil {
			t.Fatalf("register alice through the appservice: %v", err)
		}
		addProfile(t, e.store, "alice", dendritetest.DefaultServerName, true, true, e.now)
		rep := e.run(t)
		assertCheck(t, rep, diagnostics.CheckUserNamespace, expect{true, "OK — can act as platform user @alice:localhost", ""})
		assertCheck(t, rep, diagnostics.CheckUserStats, expect{true, "1 provisioned out of 1 total", ""})
	})

	t.Run("wrong domain", func(t *testing.T) {
		set(map[string]string{settings.HomeserverDomain.Key: "matrix.example.org"})
		defer set(map[string]string{settings.HomeserverDomain.Key: dendritetest.DefaultServerName})
		rep := e.run(t)
		assertCheck(t, rep, diagnostics.CheckHomeserverServerName,
			expect{false, "server_name is localhost (from the bot's user ID @waldur-bot:localhost), but the configured domain is matrix.example.org", "Set the homeserver domain to localhost"})
		assertCheck(t, rep, diagnostics.CheckBotWhoami, expect{false, "not @waldur-bot:matrix.example.org", "localhost"})
		// alice's stored ID is real, so acting as her still works: the failure is pinned
		// on the domain, not on the namespace.
		assertCheck(t, rep, diagnostics.CheckUserNamespace, expect{true, "OK — can act as platform user @alice:localhost", ""})
	})

	t.Run("stale registration: tokens rotated, homeserver not restarted", func(t *testing.T) {
		set(map[string]string{settings.ASToken.Key: auth.RandomHex(32), settings.HSToken.Key: auth.RandomHex(32)})
		rep := e.run(t)
		assertCheck(t, rep, diagnostics.CheckBotWhoami, expect{false, "refused the as_token (HTTP 401 M_UNKNOWN_TOKEN", "restart the homeserver"})
		assertCheck(t, rep, diagnostics.CheckUserNamespace, expect{false, "Skipped — the as_token is not accepted", "bot_whoami"})
		assertCheck(t, rep, diagnostics.CheckPing, expect{false, "Skipped — the as_token is not accepted", "bot_whoami"})
		// The signing keys still tell the server_name.
		assertCheck(t, rep, diagnostics.CheckHomeserverServerName, expect{true, "server_name is localhost (from /_matrix/key/v2/server)", ""})
	})

	t.Run("homeserver stopped", func(t *testing.T) {
		hs.Stop()
		rep := e.run(t)
		assertCheck(t, rep, diagnostics.CheckHomeserverReachable,
			expect{false, "Connection refused — is the homeserver running at " + hs.URL + "?", "Start the homeserver"})
		assertCheck(t, rep, diagnostics.CheckPublicReachable, expect{false, "Connection refused", "Browsers use this URL"})
		for _, name := range []string{diagnostics.CheckHomeserverServerName, diagnostics.CheckSecretEnabled,
			diagnostics.CheckBotWhoami, diagnostics.CheckUserNamespace, diagnostics.CheckPing} {
			assertCheck(t, rep, name, expect{false, "Skipped — the homeserver is not reachable", "homeserver_reachable"})
		}
	})
}
