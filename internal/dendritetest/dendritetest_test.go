package dendritetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"maunium.net/go/mautrix"

	"matrixas/internal/dendritetest"
)

// writeRegistration writes a minimal appservice registration owning
// @testbot:localhost and returns its absolute path.
func writeRegistration(t *testing.T, dir, name, asToken, hsToken string) string {
	t.Helper()
	reg := fmt.Sprintf(`id: testbot
url: http://127.0.0.1:9
as_token: %q
hs_token: %q
sender_localpart: testbot
rate_limited: false
namespaces:
  users:
    - exclusive: true
      regex: '@testbot:localhost'
  aliases: []
  rooms: []
`, asToken, hsToken)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(reg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// whoami calls /account/whoami with the given access token.
func whoami(ctx context.Context, t *testing.T, url, token string) (*mautrix.RespWhoami, error) {
	t.Helper()
	cli, err := mautrix.NewClient(url, "", token)
	if err != nil {
		t.Fatal(err)
	}
	return cli.Whoami(ctx)
}

func TestServer(t *testing.T) {
	dendritetest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	begin := time.Now()
	if _, err := dendritetest.BinDir(); err != nil {
		t.Fatal(err)
	}
	t.Logf("BinDir (install if missing): %s", time.Since(begin))

	regDir := t.TempDir()
	reg1 := writeRegistration(t, regDir, "reg1.yaml", "as-token-one", "hs-token-one")
	reg2 := writeRegistration(t, regDir, "reg2.yaml", "as-token-two", "hs-token-two")

	begin = time.Now()
	srv := dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{reg1}})
	t.Logf("Start: %s (%s, data dir %s)", time.Since(begin), srv.URL, srv.DataDir)
	if srv.ServerName != "localhost" || srv.SharedSecret != "dendritetest-shared-secret" {
		t.Errorf("defaults: ServerName %q SharedSecret %q", srv.ServerName, srv.SharedSecret)
	}

	// The as_token is accepted: Dendrite creates the appservice bot itself.
	resp, err := whoami(ctx, t, srv.URL, "as-token-one")
	if err != nil {
		t.Fatalf("whoami with as_token: %v", err)
	}
	if resp.UserID != "@testbot:localhost" {
		t.Errorf("whoami with as_token = %s, want @testbot:localhost", resp.UserID)
	}

	userID, token, err := srv.RegisterUser(ctx, "alice", "alice-password")
	if err != nil {
		t.Fatalf("RegisterUser: %v", err)
	}
	if userID != "@alice:localhost" || token == "" {
		t.Fatalf("RegisterUser = %q, %q", userID, token)
	}
	resp, err = whoami(ctx, t, srv.URL, token)
	if err != nil || resp.UserID.String() != userID {
		t.Fatalf("whoami as alice = %v, %v", resp, err)
	}

	// Rotate the tokens: only a restart makes Dendrite read the new file.
	srv.SetRegistrationFiles(reg2)
	oldURL := srv.URL
	begin = time.Now()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Restart: %s", time.Since(begin))
	if srv.URL != oldURL {
		t.Errorf("URL changed on restart: %s -> %s", oldURL, srv.URL)
	}

	_, err = whoami(ctx, t, srv.URL, "as-token-one")
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) || httpErr.RespError == nil ||
		httpErr.Response.StatusCode != 401 || httpErr.RespError.ErrCode != mautrix.MUnknownToken.ErrCode {
		t.Errorf("whoami with old as_token after restart: err = %v, want 401 M_UNKNOWN_TOKEN", err)
	}
	resp, err = whoami(ctx, t, srv.URL, "as-token-two")
	if err != nil || resp.UserID != "@testbot:localhost" {
		t.Errorf("whoami with new as_token after restart = %v, %v", resp, err)
	}

	// State survives the restart.
	resp, err = whoami(ctx, t, srv.URL, token)
	if err != nil || resp.UserID.String() != userID {
		t.Errorf("whoami as alice after restart = %v, %v", resp, err)
	}

	begin = time.Now()
	srv.Stop()
	t.Logf("Stop: %s", time.Since(begin))
	srv.Stop() // idempotent
}
