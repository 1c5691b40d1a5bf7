package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"matrixas/db"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// dashboardPages lists every dashboard page (GET) with its navigation key.
var dashboardPages = []struct {
	path, nav, testid string
}{
	{"/", "Overview", "overview-cards"},
	{"/account", "", "password-form"},
	{"/transactions", "Transactions", "transaction-cards"},
	{"/setup", "Setup", "setup-form"},
	{"/settings", "Settings", "settings-form"},
	{"/diagnostics", "Diagnostics", "run-diagnostics"},
	{"/rooms", "Rooms", "rooms-table"},
	{"/projects", "Projects", "projects-table"},
	{"/users", "Users", "users-table"},
	{"/reprovision", "Reprovision", "reprovision-danger"},
}

func TestDashboardPagesNeedStaff(t *testing.T) {
	srv := testserver.New(t)
	staff := srv.Browser(t)
	anon := srv.AnonymousBrowser(t)
	for _, p := range dashboardPages {
		t.Run(p.path, func(t *testing.T) {
			resp, doc := getPage(t, srv, staff, p.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("staff: status %d", resp.StatusCode)
			}
			if doc.Find(tid(p.testid)).Length() == 0 {
				t.Errorf("staff: no %s on the page", p.testid)
			}
			if got := strings.TrimSpace(doc.Find(`nav a[aria-current="page"]`).Text()); got != p.nav {
				t.Errorf("current nav item %q, want %q", got, p.nav)
			}
			assertAccessible(t, doc)
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}

			resp, _ = getPage(t, srv, anon, p.path)
			want := "/login"
			if p.path != "/" {
				want += "?next=" + url.QueryEscape(p.path)
			}
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
				t.Errorf("anonymous: status %d to %q, want 303 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
			}
		})
	}
}

func TestErrorPagesUseTheLayout(t *testing.T) {
	srv := testserver.New(t)
	staff := srv.Browser(t)
	resp, doc := getPage(t, srv, staff, "/no/such/page")
	if resp.StatusCode != http.StatusNotFound || textOf(doc, "error-status") != "404" || doc.Find(tid("nav")).Length() != 1 {
		t.Errorf("404: status %d, code %q, nav %d", resp.StatusCode, textOf(doc, "error-status"), doc.Find(tid("nav")).Length())
	}
	alice := srv.BrowserAs(t, srv.User)
	resp, doc = getPage(t, srv, alice, "/account")
	if resp.StatusCode != http.StatusForbidden || textOf(doc, "error-status") != "403" {
		t.Errorf("non-staff: status %d, code %q", resp.StatusCode, textOf(doc, "error-status"))
	}
}

// recordTransactions records n transactions through the store's real recorder.
func recordTransactions(t *testing.T, srv *testserver.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rec := srv.Store.NewRecorder(16)
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := 0; i < n; i++ {
		if _, err := rec.Record(ctx, db.TxnRecord{TxnID: fmt.Sprintf("txn-%03d", i), EventCount: i % 4}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTransactionsPage(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)

	_, doc := getPage(t, srv, c, "/transactions")
	if doc.Find(tid("transactions-empty")).Length() != 1 || textOf(doc, "transaction-last") != "never" {
		t.Fatalf("empty list: empty state %d, last %q", doc.Find(tid("transactions-empty")).Length(), textOf(doc, "transaction-last"))
	}

	recordTransactions(t, srv, 60)
	_, doc = getPage(t, srv, c, "/transactions")
	if got := textOf(doc, "transaction-total"); got != "60" {
		t.Errorf("total %q", got)
	}
	if got := textOf(doc, "transaction-last"); got != "just now" && !strings.HasSuffix(got, "seconds ago") {
		t.Errorf("last transaction %q", got)
	}
	rows := doc.Find(tid("txn-id"))
	if rows.Length() != 50 {
		t.Fatalf("%d rows on page 1, want 50", rows.Length())
	}
	seen := map[string]bool{}
	rows.Each(func(_ int, s *goquery.Selection) { seen[s.Text()] = true })
	next, ok := doc.Find(tid("page-next")).Attr("href")
	if !ok {
		t.Fatal("no link to older transactions")
	}
	_, doc = getPage(t, srv, c, next)
	rows = doc.Find(tid("txn-id"))
	if rows.Length() != 10 {
		t.Fatalf("%d rows on page 2, want 10", rows.Length())
	}
	rows.Each(func(_ int, s *goquery.Selection) {
		if seen[s.Text()] {
			t.Errorf("%s on both pages", s.Text())
		}
		seen[s.Text()] = true
	})
	if len(seen) != 60 {
		t.Errorf("%d distinct transactions over both pages, want 60", len(seen))
	}
	if _, ok := doc.Find(tid("page-next")).Attr("href"); ok {
		t.Error("a next link on the last page")
	}
	if href, _ := doc.Find(tid("page-newest")).Attr("href"); href != "/transactions" {
		t.Errorf("newest link %q", href)
	}

	resp, _ := getPage(t, srv, c, "/transactions?after=garbage")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad cursor: status %d, want 400", resp.StatusCode)
	}
}

func TestOverviewNextSteps(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	st := srv.Web.Settings()
	ctx := context.Background()

	steps := func() []string {
		_, doc := getPage(t, srv, c, "/")
		var out []string
		for i := 1; i <= 4; i++ {
			s := doc.Find(tid(fmt.Sprintf("step-%d", i)))
			state := "todo"
			if strings.Contains(s.Text(), "Done") {
				state = "done"
			}
			out = append(out, state)
		}
		if doc.Find(tid("next-steps")).Length() == 0 {
			return nil
		}
		return out
	}
	if got := fmt.Sprint(steps()); got != "[todo todo todo todo]" {
		t.Errorf("fresh install: %s", got)
	}
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: "http://127.0.0.1:1", settings.HomeserverDomain.Key: "example.org", settings.RegistrationSecret.Key: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(steps()); got != "[done todo todo todo]" {
		t.Errorf("configured: %s", got)
	}
	if err := st.Set(ctx, map[string]string{settings.ASToken.Key: strings.Repeat("a", 64), settings.HSToken.Key: strings.Repeat("b", 64), settings.Enabled.Key: "true", settings.BotProvisionStatus.Key: "failed: M_UNKNOWN_TOKEN"}); err != nil {
		t.Fatal(err)
	}
	_, doc := getPage(t, srv, c, "/")
	if got := fmt.Sprint(steps()); got != "[done done todo todo]" {
		t.Errorf("set up, bot failed: %s", got)
	}
	if got := textOf(doc, "bot-status"); got != "Failed: M_UNKNOWN_TOKEN" {
		t.Errorf("bot status %q", got)
	}
	if got := textOf(doc, "enabled"); got != "Enabled" {
		t.Errorf("enabled %q", got)
	}
	if err := st.Set(ctx, map[string]string{settings.BotProvisionStatus.Key: "ok"}); err != nil {
		t.Fatal(err)
	}
	if got := steps(); got != nil {
		t.Errorf("everything done, still steps: %v", got)
	}
	_, doc = getPage(t, srv, c, "/")
	if got := textOf(doc, "bot"); got != "@waldur-bot:example.org" {
		t.Errorf("bot %q", got)
	}
	// Nothing secret on the page.
	for _, secret := range []string{"s3cret", strings.Repeat("a", 64), strings.Repeat("b", 64)} {
		if strings.Contains(doc.Text(), secret) {
			t.Errorf("the overview shows a secret")
		}
	}
}
