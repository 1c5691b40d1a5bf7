package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"matrixas/db"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// hsTestToken is the hs_token the fault tests configure.
var hsTestToken = strings.Repeat("c", 64)

// enableAppservice configures an enabled appservice with a known hs_token, so the
// webhook records what it is sent.
func enableAppservice(t *testing.T, ts *testserver.Server) {
	t.Helper()
	err := ts.Web.Settings().Set(context.Background(), map[string]string{
		settings.HomeserverDomain.Key: "localhost", settings.SenderLocalpart.Key: "waldur-bot",
		settings.ASToken.Key: strings.Repeat("d", 64), settings.HSToken.Key: hsTestToken, settings.Enabled.Key: "true",
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pushTxn sends one homeserver transaction with the configured hs_token and returns the
// status and the Matrix errcode of an error answer.
func pushTxn(t *testing.T, ts *testserver.Server, client *http.Client, txnID string) (int, string) {
	t.Helper()
	body := `{"events":[{"type":"m.room.message","event_id":"$` + txnID + `","room_id":"!r:localhost","sender":"@u:localhost","content":{"body":"hi"}}]}`
	req := newReq(t, ts, http.MethodPut, "/_matrix/app/v1/transactions/"+txnID, strings.NewReader(body), nil)
	req.Header.Set("Authorization", "Bearer "+hsTestToken)
	req.Header.Set("Content-Type", "application/json")
	resp, b := do(t, client, req)
	var e struct {
		ErrCode string `json:"errcode"`
	}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(b, &e); err != nil || e.ErrCode == "" {
			t.Errorf("txn %s: %d with a body that is not a Matrix error: %s", txnID, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, e.ErrCode
}

// storedTxns returns which of ids are recorded, and the transactions counter.
func storedTxns(t *testing.T, ts *testserver.Server, ids []string) (map[string]bool, int64) {
	t.Helper()
	ctx := context.Background()
	got := map[string]bool{}
	rows, _, err := ts.Store.ListTransactions(ctx, db.TxnCursor{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range rows {
		got[tx.TxnID] = true
	}
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = got[id]
	}
	stats, err := ts.Store.DiagnosticStats(ctx, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return out, stats.TransactionsTotal
}

func readyz(t *testing.T, ts *testserver.Server) (int, map[string]string) {
	t.Helper()
	var body map[string]string
	status := ts.JSON(t, http.MethodGet, "/readyz", "", nil, &body)
	return status, body
}

// writeHealthBlock returns the overview's write-health notice: its data-state and text
// ("" and "" when absent).
func writeHealthBlock(t *testing.T, ts *testserver.Server, browser *http.Client) (string, string) {
	t.Helper()
	resp, body := do(t, browser, newReq(t, ts, http.MethodGet, "/", nil, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("overview: %d: %.300s", resp.StatusCode, body)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	sel := doc.Find(`[data-testid="write-health"]`)
	if sel.Length() == 0 {
		return "", ""
	}
	state, _ := sel.Attr("data-state")
	return state, strings.Join(strings.Fields(sel.Text()), " ")
}

// TestWebhookUnderWriteFaults makes the database refuse writes (read-only, then full)
// while the homeserver pushes transactions: every transaction answered 200 is stored,
// every one that was not stored got a Matrix-shaped 5xx (so the homeserver retries it),
// /readyz and the overview page name the problem, and once the cause is gone the same
// process records the retried transactions exactly once.
func TestWebhookUnderWriteFaults(t *testing.T) {
	tests := []struct {
		fault  db.WriteFault
		reason string
	}{
		{db.FaultReadOnly, "the database is read-only"},
		{db.FaultDiskFull, "the database or disk is full"},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			ts := testserver.New(t)
			enableAppservice(t, ts)
			ctx := context.Background()
			browser := ts.Browser(t) // signed in before the fault: login writes a session
			client := &http.Client{}

			var ids []string
			next := func() string {
				// Long ids fill pages fast, so a full disk bites within a few hundred.
				id := fmt.Sprintf("%s-%04d-%s", strings.ReplaceAll(tt.reason, " ", "-"), len(ids), strings.Repeat("x", 200))
				ids = append(ids, id)
				return id
			}
			for range 5 {
				if status, _ := pushTxn(t, ts, client, next()); status != http.StatusOK {
					t.Fatalf("transaction before the fault: %d", status)
				}
			}
			if state, _ := writeHealthBlock(t, ts, browser); state != "" {
				t.Fatalf("write-health notice shown before any fault: %q", state)
			}

			if err := ts.Store.SimulateWriteFault(ctx, tt.fault); err != nil {
				t.Fatal(err)
			}
			acked := map[string]bool{}
			for _, id := range ids {
				acked[id] = true
			}
			var refused []string
			for i := 0; i < 3000 && len(refused) < 10; i++ {
				id := next()
				status, code := pushTxn(t, ts, client, id)
				switch {
				case status == http.StatusOK:
					acked[id] = true
				case status >= 500 && code == "M_UNKNOWN":
					refused = append(refused, id)
				default:
					t.Fatalf("transaction %s under the fault: %d %s, want 200 or a 5xx M_UNKNOWN", id, status, code)
				}
			}
			if len(refused) == 0 {
				t.Fatalf("the fault never made the webhook refuse a transaction")
			}
			stored, counter := storedTxns(t, ts, ids)
			for _, id := range ids {
				if acked[id] != stored[id] {
					t.Errorf("transaction %.20s…: acknowledged %v, stored %v", id, acked[id], stored[id])
				}
			}
			if counter != int64(len(acked)) {
				t.Errorf("transactions counter %d, acknowledged %d", counter, len(acked))
			}

			// Staff can see it: /readyz (still 200: reads work) and the overview page.
			status, body := readyz(t, ts)
			if status != http.StatusOK || body["status"] != "degraded" || body["writes"] != "failing" || body["write_error"] != tt.reason || body["write_error_at"] == "" {
				t.Errorf("/readyz under the fault: %d %v", status, body)
			}
			state, text := writeHealthBlock(t, ts, browser)
			if state != "failing" || !strings.Contains(text, tt.reason) {
				t.Errorf("overview under the fault: state %q, text %q", state, text)
			}
			if strings.Contains(strings.ToLower(text), "sqlite") {
				t.Errorf("the overview shows the driver's error text: %q", text)
			}
			// The access log has the real error for the operator.
			if !strings.Contains(ts.Logs.String(), "/_matrix/app/v1/transactions/") || !strings.Contains(ts.Logs.String(), "level=ERROR") {
				t.Errorf("the refused transactions are not in the log as errors")
			}

			// The cause goes away: the same process takes the homeserver's retries.
			if err := ts.Store.SimulateWriteFault(ctx, db.NoWriteFault); err != nil {
				t.Fatal(err)
			}
			for _, id := range append(refused, ids[0], ids[len(ids)-1]) { // retries, and two repeats
				if status, code := pushTxn(t, ts, client, id); status != http.StatusOK {
					t.Errorf("retried transaction after recovery: %d %s", status, code)
				}
				acked[id] = true
			}
			stored, counter = storedTxns(t, ts, ids)
			for _, id := range ids {
				if acked[id] != stored[id] {
					t.Errorf("after recovery, transaction %.20s…: acknowledged %v, stored %v", id, acked[id], stored[id])
				}
			}
			if counter != int64(len(acked)) {
				t.Errorf("after recovery: counter %d, want %d (each transaction once)", counter, len(acked))
			}
			status, body = readyz(t, ts)
			if status != http.StatusOK || body["status"] != "ok" || body["last_write_error"] != tt.reason || body["recovered_at"] == "" {
				t.Errorf("/readyz after recovery: %d %v", status, body)
			}
			if state, _ := writeHealthBlock(t, ts, browser); state != "recovered" {
				t.Errorf("overview after recovery: state %q, want recovered", state)
			}
		})
	}
}
