package views_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"matrixas/views"
)

// render renders c and parses it for goquery.
func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

func testid(id string) string { return `[data-testid="` + id + `"]` }

func text(doc *goquery.Document, id string) string {
	return strings.Join(strings.Fields(doc.Find(testid(id)).First().Text()), " ")
}

var staffPage = views.Page{Title: "T", Active: "overview", Username: "staff", IsStaff: true, Version: "1.2.3"}

func TestLayoutNavigationAndFlashes(t *testing.T) {
	p := staffPage
	p.Active = "rooms"
	p.Flashes = []views.Flash{{Kind: "success", Message: "Saved."}, {Kind: "error", Message: "Broken."}}
	doc := render(t, views.ErrorPage(views.ErrorPageData{Page: p, Status: 404, Heading: "Page not found", Message: "Nothing here."}))

	if got := doc.Find(`nav a[aria-current="page"]`).Text(); got != "Rooms" {
		t.Errorf("current nav item = %q, want Rooms", got)
	}
	if n := doc.Find("nav a").Length(); n != len(views.Nav) {
		t.Errorf("%d nav links, want %d", n, len(views.Nav))
	}
	flashes := doc.Find(testid("flash"))
	if flashes.Length() != 2 {
		t.Fatalf("%d flashes", flashes.Length())
	}
	if role, _ := flashes.Eq(1).Attr("role"); role != "alert" {
		t.Errorf("error flash role = %q, want alert", role)
	}
	if role, _ := flashes.Eq(0).Attr("role"); role != "status" {
		t.Errorf("success flash role = %q, want status", role)
	}
	if got := text(doc, "error-status"); got != "404" {
		t.Errorf("status = %q", got)
	}
	if !strings.Contains(text(doc, "footer"), "1.2.3") {
		t.Errorf("footer %q lacks the version", text(doc, "footer"))
	}
	// No inline script or style: the CSP forbids them.
	if doc.Find("script:not([src])").Length() > 0 || doc.Find("style").Length() > 0 || doc.Find("[style]").Length() > 0 {
		t.Error("inline script or style in the layout")
	}
	cfg, _ := doc.Find(`meta[name="htmx-config"]`).Attr("content")
	for _, want := range []string{`"allowEval":false`, `"historyCacheSize":0`, `"includeIndicatorStyles":false`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("htmx-config %s lacks %s", cfg, want)
		}
	}
}

func TestLayoutAnonymousHasNoNavigation(t *testing.T) {
	doc := render(t, views.LoginPage(views.LoginData{Page: views.Page{Title: "Sign in"}, Error: "Wrong."}))
	if doc.Find(testid("nav")).Length() != 0 || doc.Find(testid("footer")).Length() != 0 {
		t.Error("anonymous page shows the navigation or footer")
	}
	if text(doc, "login-error") != "Wrong." {
		t.Errorf("login error = %q", text(doc, "login-error"))
	}
	assertLabelled(t, doc)
}

// assertLabelled checks that every visible form control has a <label for> or an aria-label.
func assertLabelled(t *testing.T, doc *goquery.Document) {
	t.Helper()
	doc.Find("input, select, textarea").Each(func(_ int, s *goquery.Selection) {
		typ, _ := s.Attr("type")
		if _, hidden := s.Attr("hidden"); typ == "hidden" || hidden {
			return
		}
		if _, ok := s.Attr("aria-label"); ok {
			return
		}
		id, _ := s.Attr("id")
		if id == "" || doc.Find(`label[for="`+id+`"]`).Length() == 0 {
			name, _ := s.Attr("name")
			t.Errorf("control %q (id %q) has no label", name, id)
		}
	})
}

func TestTextField(t *testing.T) {
	tests := []struct {
		name      string
		f         views.Field
		invalid   bool
		readonly  bool
		submitted bool
		describe  string
	}{
		{"plain", views.Field{Name: "url", Label: "URL"}, false, false, true, ""},
		{"help", views.Field{Name: "url", Label: "URL", Help: "Where."}, false, false, true, "url-help"},
		{"error", views.Field{Name: "url", Label: "URL", Help: "Where.", Error: "Bad."}, true, false, true, "url-error url-help"},
		{"locked", views.Field{Name: "url", Label: "URL", Value: "https://x", Locked: "Set by MATRIX_HOMESERVER_URL."}, false, true, false, "url-help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := render(t, views.TextField(tt.f))
			in := doc.Find("input#url")
			if in.Length() != 1 {
				t.Fatal("no input#url")
			}
			_, invalid := in.Attr("aria-invalid")
			_, readonly := in.Attr("readonly")
			_, named := in.Attr("name")
			describe, _ := in.Attr("aria-describedby")
			if invalid != tt.invalid || readonly != tt.readonly || named != tt.submitted || describe != tt.describe {
				t.Errorf("invalid %v readonly %v named %v describedby %q", invalid, readonly, named, describe)
			}
			if tt.f.Error != "" && text(doc, "error-url") != tt.f.Error {
				t.Errorf("error text %q", text(doc, "error-url"))
			}
			if tt.f.Locked != "" && doc.Find(testid("locked-url")).Length() != 1 {
				t.Error("no lock badge")
			}
			assertLabelled(t, doc)
		})
	}
}

func TestPagination(t *testing.T) {
	link := func(n int) string { return "/rooms?page=" + strconv.Itoa(n) }
	tests := []struct {
		p        views.Pager
		info     string
		links    string // the page numbers and gaps, in order
		prevNext [2]bool
	}{
		{views.Pager{Page: 1, PageSize: 50, Total: 0, Link: link}, "Nothing to show", "", [2]bool{false, false}},
		{views.Pager{Page: 1, PageSize: 50, Total: 20, Link: link}, "Showing 1–20 of 20", "", [2]bool{false, false}},
		{views.Pager{Page: 1, PageSize: 10, Total: 25, Link: link}, "Showing 1–10 of 25", "1 2 3", [2]bool{false, true}},
		{views.Pager{Page: 3, PageSize: 10, Total: 25, Link: link}, "Showing 21–25 of 25", "1 2 3", [2]bool{true, false}},
		{views.Pager{Page: 10, PageSize: 1, Total: 20, Link: link}, "Showing 10–10 of 20", "1 … 8 9 10 11 12 … 20", [2]bool{true, true}},
	}
	for _, tt := range tests {
		doc := render(t, views.Pagination(tt.p))
		if got := text(doc, "pagination-info"); got != tt.info {
			t.Errorf("%+v: info %q, want %q", tt.p, got, tt.info)
		}
		var nums []string
		doc.Find("nav > a, nav > span.page").Each(func(_ int, s *goquery.Selection) {
			if l := s.Text(); l != "Previous" && l != "Next" {
				nums = append(nums, l)
			}
		})
		if got := strings.Join(nums, " "); got != tt.links {
			t.Errorf("%+v: links %q, want %q", tt.p, got, tt.links)
		}
		if got := [2]bool{doc.Find(testid("page-prev")).Length() == 1, doc.Find(testid("page-next")).Length() == 1}; got != tt.prevNext {
			t.Errorf("%+v: prev/next %v, want %v", tt.p, got, tt.prevNext)
		}
		if cur, _ := doc.Find(`a[aria-current="page"]`).Attr("href"); tt.p.Pages() > 1 && cur != link(tt.p.Page) {
			t.Errorf("current page link %q", cur)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 5, 9, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now.Add(-3 * time.Second), "just now"},
		{now.Add(time.Minute), "just now"},
		{now.Add(-45 * time.Second), "45 seconds ago"},
		{now.Add(-time.Minute), "1 minute ago"},
		{now.Add(-59 * time.Minute), "59 minutes ago"},
		{now.Add(-3 * time.Hour), "3 hours ago"},
		{now.Add(-72 * time.Hour), "3 days ago"},
	}
	for _, tt := range tests {
		if got := views.Ago(now, tt.t); got != tt.want {
			t.Errorf("Ago(%v) = %q, want %q", now.Sub(tt.t), got, tt.want)
		}
	}
	if got := views.FormatTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))); got != "2026-01-02 02:04:05 UTC" {
		t.Errorf("FormatTime = %q", got)
	}
}

func TestBotStatusBadge(t *testing.T) {
	tests := []struct{ status, kind, text string }{
		{"", "neutral", "Not provisioned"},
		{"pending", "info", "Pending"},
		{"ok", "ok", "Provisioned"},
		{"skipped", "warn", "Skipped: no homeserver configured"},
		{"failed: M_UNKNOWN_TOKEN", "fail", "Failed: M_UNKNOWN_TOKEN"},
	}
	for _, tt := range tests {
		kind, text := views.BotStatusBadge(tt.status)
		if kind != tt.kind || text != tt.text {
			t.Errorf("BotStatusBadge(%q) = %q %q", tt.status, kind, text)
		}
	}
}

func TestOverviewPage(t *testing.T) {
	steps := []views.SetupStep{{Title: "One", Done: true}, {Title: "Two", Href: "/setup", Action: "Run setup"}}
	d := views.OverviewData{
		Page: staffPage, Enabled: false, HomeserverURL: "http://hs:8008", HomeserverDomain: "example.org",
		BotUserID: "@bot:example.org", BotStatus: "failed: M_UNKNOWN_TOKEN", TransactionCount: 42, TransactionsLastHour: 3,
		LastTransactionAgo: "never", Rooms: map[string]int{"active": 3, "error": 1}, ProfilesTotal: 9, ProfilesReady: 7,
		Steps: steps, Pending: 2, Retrying: 1,
	}
	doc := render(t, views.OverviewPage(d))
	checks := map[string]string{
		"enabled": "Not set up", "homeserver": "http://hs:8008", "homeserver-domain": "example.org", "bot": "@bot:example.org",
		"bot-status": "Failed: M_UNKNOWN_TOKEN", "transaction-count": "42", "rooms-total": "4", "rooms-active": "3 active",
		"rooms-error": "1 error", "profiles": "7 of 9", "queue-pending": "2", "last-transaction": "never",
	}
	for id, want := range checks {
		if got := text(doc, id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if doc.Find(testid("next-steps")).Length() != 1 {
		t.Fatal("no next steps while not set up")
	}
	if href, _ := doc.Find(testid("step-2") + " a").Attr("href"); href != "/setup" {
		t.Errorf("step 2 links to %q", href)
	}
	if doc.Find(testid("step-1")+" a").Length() != 0 {
		t.Error("a done step still links to its action")
	}

	d.AllStepsDone = true
	if doc := render(t, views.OverviewPage(d)); doc.Find(testid("next-steps")).Length() != 0 {
		t.Error("next steps shown when everything is done")
	}
}

func TestAccountPageShowsNewTokenOnce(t *testing.T) {
	d := views.AccountData{
		Page: staffPage, UserID: 1,
		Tokens: []views.TokenRow{{ID: 7, Name: "sync", Prefix: "abc123", CreatedAt: time.Unix(1000, 0)}},
		Staff: []views.StaffRow{
			{ID: 1, Username: "staff", Active: true, IsYou: true},
			{ID: 2, Username: "bob", Active: true},
			{ID: 3, Username: "carol", Active: false},
		},
		PasswordErrors: map[string]string{"confirm_password": "The two new passwords differ."},
	}
	doc := render(t, views.AccountPage(d))
	if doc.Find(testid("new-token")).Length() != 0 {
		t.Error("a token is shown although none was just created")
	}
	if got := text(doc, "token-prefix"); got != "abc123…" {
		t.Errorf("prefix %q", got)
	}
	if text(doc, "error-confirm_password") != "The two new passwords differ." {
		t.Error("password error not shown inline")
	}
	// You cannot deactivate yourself; others can be (re)activated.
	if doc.Find(testid("staff-row-staff")+" form").Length() != 0 {
		t.Error("a deactivate button for yourself")
	}
	if a, _ := doc.Find(testid("staff-row-bob") + " form").Attr("action"); a != "/account/staff/2/deactivate" {
		t.Errorf("bob's form action %q", a)
	}
	if a, _ := doc.Find(testid("staff-row-carol") + " form").Attr("action"); a != "/account/staff/3/activate" {
		t.Errorf("carol's form action %q", a)
	}
	assertLabelled(t, doc)

	d.NewToken, d.NewTokenName = "0123456789abcdef0123456789abcdef01234567", "sync"
	doc = render(t, views.AccountPage(d))
	if got := text(doc, "new-token"); got != d.NewToken {
		t.Errorf("new token shown as %q", got)
	}
}

func TestTransactionsPage(t *testing.T) {
	d := views.TransactionsData{Page: staffPage, FirstPage: true, LastAgo: "never"}
	doc := render(t, views.TransactionsPage(d))
	if doc.Find(testid("transactions-empty")).Length() != 1 {
		t.Error("no empty state without transactions")
	}
	d.Total, d.Rows, d.NextLink = 3, []views.TransactionRow{{TxnID: "t1", EventCount: 2, ProcessedAt: time.Unix(5, 0)}}, "/transactions?after=5"
	doc = render(t, views.TransactionsPage(d))
	if text(doc, "txn-id") != "t1" || text(doc, "transaction-total") != "3" {
		t.Errorf("row %q total %q", text(doc, "txn-id"), text(doc, "transaction-total"))
	}
	if href, _ := doc.Find(testid("page-next")).Attr("href"); href != d.NextLink {
		t.Errorf("next link %q", href)
	}
	if doc.Find(testid("page-newest")).Length() != 0 {
		t.Error("a Newest link on the first page")
	}
}
