package appservice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"matrixas/db"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

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
	res := s.Setup(t, testserver.SetupBody())
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
	hs := s.Setup(t, testserver.SetupBody()).HSToken
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
	hs := s.Setup(t, testserver.SetupBody()).HSToken
	if err := s.Web.Settings().Set(context.Background(), map[string]string{settings.Enabled.Key: "false"}); err != nil {
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
	hs := s.Setup(t, testserver.SetupBody()).HSToken
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
	hs := s.Setup(t, testserver.SetupBody()).HSToken
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
