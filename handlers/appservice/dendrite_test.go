package appservice_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
)

// freeAddr reserves a loopback address so a restarted server can keep its URL (the
// homeserver's registration points at it).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settledCount waits until the transaction count has not moved for a few polls (the
// homeserver may still be pushing) and returns it.
func settledCount(t *testing.T, s *testserver.Server) int64 {
	t.Helper()
	last, stable := txnCount(t, s), 0
	waitFor(t, "the transaction count to settle", 10*time.Second, func() bool {
		n := txnCount(t, s)
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		return stable >= 5
	})
	return last
}

func botClient(t *testing.T, hsURL, asToken string) *mautrix.Client {
	t.Helper()
	c, err := mautrix.NewClient(hsURL, "@waldur-bot:localhost", asToken)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAppserviceOnDendrite walks the appservice's life on a real homeserver: setup, the
// homeserver loading the registration, the bot, transactions pushed by the homeserver,
// idempotent replays across a restart, and token rotation.
func TestAppserviceOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	ctx := context.Background()
	hs := dendritetest.Start(t, dendritetest.Options{})
	addr := freeAddr(t)
	dbPath := filepath.Join(t.TempDir(), "as.db")
	s := testserver.New(t, testserver.Options{DatabasePath: dbPath, Addr: addr})

	// 1. Setup, install the YAML, restart the homeserver: provision-bot is ok, whoami works.
	res := s.Setup(t, map[string]string{
		"url": s.URL, "homeserver_url": hs.URL, "homeserver_domain": hs.ServerName,
		"user_registration_secret": hs.SharedSecret, "sender_localpart": "waldur-bot",
	})
	if res.BotProvisionStatus != "failed: M_UNKNOWN_TOKEN" {
		t.Errorf("bot status before the homeserver knows the tokens = %q, want failed: M_UNKNOWN_TOKEN", res.BotProvisionStatus)
	}
	regFile := filepath.Join(t.TempDir(), "registration.yaml")
	if err := os.WriteFile(regFile, []byte(res.RegistrationYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	hs.SetRegistrationFiles(regFile)
	if err := hs.Restart(); err != nil {
		t.Fatal(err)
	}
	var pb map[string]string
	if code := s.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/provision-bot/", s.StaffToken, "{}", &pb); code != 200 || pb["bot_provision_status"] != "ok" {
		t.Fatalf("provision-bot: %d %v", code, pb)
	}
	bot := botClient(t, hs.URL, res.ASToken)
	who, err := bot.Whoami(ctx)
	if err != nil || who.UserID != "@waldur-bot:localhost" {
		t.Fatalf("whoami as the bot: %v %v", who, err)
	}
	prof, err := bot.GetProfile(ctx, who.UserID)
	if err != nil || prof.DisplayName != "Waldur Bot" { // "SITE_NAME Bot", SITE_NAME unset
		t.Errorf("bot profile: %+v %v", prof, err)
	}

	// 2. The bot creates a room: the homeserver pushes transactions and the count grows.
	before := txnCount(t, s)
	if _, err := bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "pushed"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "transactions from the homeserver", 15*time.Second, func() bool { return txnCount(t, s) > before })

	// 3. Replay a seen txnId: 200 and unchanged, also after a restart of our server.
	if code, _ := hsRequest(t, s, http.MethodPut, "/_matrix/app/v1/transactions/replay-1", res.HSToken, `{"events":[]}`); code != 200 {
		t.Fatal(code)
	}
	seen := settledCount(t, s) // late pushes from the homeserver land first
	if code, _ := hsRequest(t, s, http.MethodPut, "/_matrix/app/v1/transactions/replay-1", res.HSToken, `{"events":[]}`); code != 200 || txnCount(t, s) != seen {
		t.Fatalf("replay: %d, count %d → %d", code, seen, txnCount(t, s))
	}
	s.Close()
	s = testserver.New(t, testserver.Options{DatabasePath: dbPath, Addr: addr})
	if code, _ := hsRequest(t, s, http.MethodPut, "/_matrix/app/v1/transactions/replay-1", res.HSToken, `{"events":[]}`); code != 200 || txnCount(t, s) != seen {
		t.Fatalf("replay after restart: %d, count %d → %d", code, seen, txnCount(t, s))
	}

	// 4. Rotation: the old hs_token is refused at once; the old as_token stops working
	// once the homeserver restarts with the new YAML; the new pair works.
	rotated := s.Setup(t, map[string]string{})
	if code, out := hsRequest(t, s, http.MethodPut, "/_matrix/app/v1/transactions/old-token", res.HSToken, `{"events":[]}`); code != 403 || out["errcode"] != "M_FORBIDDEN" {
		t.Errorf("old hs_token: %d %v", code, out)
	}
	if err := os.WriteFile(regFile, []byte(rotated.RegistrationYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := hs.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := bot.Whoami(ctx); !errors.Is(err, mautrix.MUnknownToken) {
		t.Errorf("old as_token after the restart: %v, want M_UNKNOWN_TOKEN", err)
	}
	newBot := botClient(t, hs.URL, rotated.ASToken)
	if who, err := newBot.Whoami(ctx); err != nil || who.UserID != id.UserID("@waldur-bot:localhost") {
		t.Fatalf("new as_token: %v %v", who, err)
	}
	before = txnCount(t, s)
	if _, err := newBot.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "after rotation"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "transactions with the new hs_token", 15*time.Second, func() bool { return txnCount(t, s) > before })
}
