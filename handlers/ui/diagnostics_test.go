package ui_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"matrixas/diagnostics"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

func TestDiagnosticsPage(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	token := strings.Repeat("c", 64)
	if err := srv.Web.Settings().Set(context.Background(), map[string]string{settings.ASToken.Key: token, settings.RegistrationSecret.Key: "diag-secret"}); err != nil {
		t.Fatal(err)
	}

	_, doc := getPage(t, srv, c, "/diagnostics")
	if doc.Find(tid("diagnostics-results")).Length() != 0 || doc.Find(tid("run-diagnostics")).Length() != 1 {
		t.Fatal("the checks ran without being asked, or there is no run button")
	}
	if hx, _ := doc.Find("form[hx-get]").Attr("hx-get"); hx != "/diagnostics/results" {
		t.Errorf("run form hx-get %q", hx)
	}

	// JavaScript off: ?run=1 runs the checks in the page.
	resp, doc := getPage(t, srv, c, "/diagnostics?run=1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	assertAccessible(t, doc)
	if n := doc.Find(`[data-testid^="check-"][data-ok]`).Length(); n != len(diagnostics.AlwaysListed()) {
		t.Errorf("%d checks shown, want %d", n, len(diagnostics.AlwaysListed()))
	}
	hs := doc.Find(tid("check-" + diagnostics.CheckHomeserverConfigured))
	if got := strings.TrimSpace(hs.Find(tid("check-badge")).Text()); got != "Failed" {
		t.Errorf("homeserver_configured badge %q on an unconfigured server", got)
	}
	if hs.Find(tid("check-hint")).Length() != 1 {
		t.Error("a failing check without a hint")
	}
	as := doc.Find(tid("check-" + diagnostics.CheckASTokenConfigured))
	if got := strings.TrimSpace(as.Find(tid("check-badge")).Text()); got != "OK" || as.Find(tid("check-hint")).Length() != 0 {
		t.Errorf("as_token_configured: badge %q, hint shown %v", got, as.Find(tid("check-hint")).Length() != 0)
	}
	if !strings.Contains(textOf(doc, "diagnostics-results"), "not passing") {
		t.Errorf("summary %q", textOf(doc, "diagnostics-results"))
	}
	if strings.Contains(doc.Text(), token) || strings.Contains(doc.Text(), "diag-secret") {
		t.Error("the diagnostics page shows a secret")
	}

	// htmx: fragments only; a plain browser asking for a fragment gets the page.
	for _, path := range []string{"/diagnostics/results", "/diagnostics/summary"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("HX-Request", "true")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		doc := parse(t, resp)
		if resp.StatusCode != http.StatusOK || doc.Find("header, nav, title").Length() != 0 {
			t.Errorf("%s (htmx): status %d, whole page %v", path, resp.StatusCode, doc.Find("header, nav").Length() != 0)
		}
		id := strings.TrimPrefix(path, "/diagnostics/")
		if doc.Find("#diagnostics-"+id).Length() != 1 {
			t.Errorf("%s: no #diagnostics-%s to swap in", path, id)
		}
		resp, _ = getPage(t, srv, c, path)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/diagnostics?run=1" {
			t.Errorf("%s without htmx: status %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
