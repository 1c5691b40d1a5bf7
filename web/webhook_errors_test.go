package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"matrixas/db"
	"matrixas/diagnostics"
	"matrixas/internal/testserver"
)

// TestWebhookErrorsDiagnostic: every 5xx the webhook answers the homeserver (here: a
// database that refuses writes) is counted where it answers, and the webhook_errors
// diagnostic reports exactly that many; the 200s and the 4xx (a wrong token) are not
// counted.
func TestWebhookErrorsDiagnostic(t *testing.T) {
	ts := testserver.New(t)
	enableAppservice(t, ts)
	ctx := context.Background()
	client := &http.Client{}
	report := func() *diagnostics.Check {
		t.Helper()
		var rep diagnostics.Report
		if code := ts.JSON(t, http.MethodGet, "/api/admin/matrix/diagnostics/", ts.StaffToken, nil, &rep); code != http.StatusOK {
			t.Fatalf("diagnostics: %d", code)
		}
		c := rep.Check(diagnostics.CheckWebhookErrors)
		if c == nil {
			t.Fatal("no webhook_errors check")
		}
		return c
	}

	if status, _ := pushTxn(t, ts, client, "fine-1"); status != http.StatusOK {
		t.Fatalf("healthy transaction: %d", status)
	}
	req := newReq(t, ts, http.MethodPut, "/_matrix/app/v1/transactions/wrong-token", strings.NewReader(`{"events":[]}`), nil)
	req.Header.Set("Authorization", "Bearer wrong")
	if resp, _ := do(t, client, req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	if c := report(); !c.OK || !strings.HasPrefix(c.Detail, "None ") {
		t.Fatalf("before any 5xx: %+v", c)
	}

	if err := ts.Store.SimulateWriteFault(ctx, db.FaultReadOnly); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := range 20 {
		if status, _ := pushTxn(t, ts, client, fmt.Sprintf("refused-%d", i)); status >= 500 {
			failed++
		}
	}
	if err := ts.Store.SimulateWriteFault(ctx, db.NoWriteFault); err != nil {
		t.Fatal(err)
	}
	if failed == 0 {
		t.Fatal("the read-only database made no transaction fail")
	}
	c := report()
	want := fmt.Sprintf("%d error answer", failed)
	if c.OK || !strings.HasPrefix(c.Detail, want) || c.Hint == "" {
		t.Errorf("after %d 5xx answers: %+v, want a failure starting %q", failed, c, want)
	}
}
