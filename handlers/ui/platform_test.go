package ui_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"matrixas/internal/fakewaldur"
	"matrixas/internal/testserver"
	"matrixas/waldur"
)

const uiEventsSecret = "ui-events-secret-0123456789abcdef"

func platformUIServer(t *testing.T, publicURL string) (*testserver.Server, *fakewaldur.Server) {
	t.Helper()
	f := fakewaldur.New(t)
	c := f.AddCustomer(fakewaldur.Customer{Name: "Acme", Abbreviation: "ACME"})
	f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: c.UUID})
	env := testserver.PlatformEnv(f, uiEventsSecret)
	if publicURL != "" {
		env["PUBLIC_URL"] = publicURL
	}
	s := testserver.New(t, testserver.Options{Env: env})
	s.WaitSynced(t, 0)
	return s, f
}

// TestPlatformPageWithoutAPlatform says how to connect one.
func TestPlatformPageWithoutAPlatform(t *testing.T) {
	s := testserver.New(t)
	resp, doc := getPage(t, s, s.Browser(t), "/platform")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	assertAccessible(t, doc)
	if got := textOf(doc, "platform-not-configured"); !strings.Contains(got, "WALDUR_URL") {
		t.Errorf("not-configured text %q", got)
	}
	if doc.Find(`nav a[href="/platform"]`).Length() != 1 {
		t.Error("no Platform entry in the navigation")
	}
}

// TestPlatformPage shows the connection (the token's fingerprint, never the token; the
// receiver's URL with its secret hidden), the last run and its counts.
func TestPlatformPage(t *testing.T) {
	s, f := platformUIServer(t, "https://chat-bridge.example.org")
	resp, doc := getPage(t, s, s.Browser(t), "/platform")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	assertAccessible(t, doc)
	html, _ := doc.Html()
	if strings.Contains(html, f.Token) || strings.Contains(html, uiEventsSecret) {
		t.Fatal("the page shows a secret")
	}
	if got := textOf(doc, "platform-url"); got != f.URL {
		t.Errorf("URL %q, want %q", got, f.URL)
	}
	if got := textOf(doc, "platform-token"); got != waldur.Fingerprint(f.Token) {
		t.Errorf("token %q", got)
	}
	if got := textOf(doc, "platform-receiver"); got != "https://chat-bridge.example.org/api/waldur/events/<secret>/" {
		t.Errorf("receiver %q", got)
	}
	if got := textOf(doc, "platform-running"); got != "Idle" {
		t.Errorf("running %q", got)
	}
	if got := textOf(doc, "platform-last"); !strings.Contains(got, "full run ok") {
		t.Errorf("last run %q", got)
	}
	if got := textOf(doc, "platform-last-counts"); !strings.Contains(got, "customers 1 / 0 / 0") || !strings.Contains(got, "projects 1 / 0 / 0") {
		t.Errorf("counts %q", got)
	}
	if n := doc.Find(tid("platform-run")).Length(); n != 1 {
		t.Errorf("%d runs listed", n)
	}
	if doc.Find(tid("platform-sync-now")).Length() != 1 || doc.Find(tid("platform-register-hook")).Length() != 1 {
		t.Error("the buttons are missing")
	}
}

// TestPlatformSyncNow starts a run (post/redirect/get with a flash, or the polling
// status panel for htmx), and refuses a second one while it runs, saying so.
func TestPlatformSyncNow(t *testing.T) {
	s, f := platformUIServer(t, "")
	c := s.Browser(t)
	first := s.WaitSynced(t, 0)
	release := make(chan struct{})
	f.Inject(fakewaldur.Fault{Path: "/api/customers/", Before: func() { <-release }})
	got := postRedirectFlash(t, s, c, "/platform/sync", url.Values{}, "/platform")
	if !slices.ContainsFunc(got, func(f string) bool { return strings.Contains(f, "Full sync started") }) {
		t.Errorf("flashes %q", got)
	}
	resp, doc := postForm(t, s, c, "/platform/sync", url.Values{})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(doc.Text(), "already running") {
		t.Errorf("second start: %d %q", resp.StatusCode, strings.Join(strings.Fields(doc.Text()), " "))
	}
	// While it runs, the status panel polls and shows the progress.
	if resp, doc = getPage(t, s, c, "/platform"); resp.StatusCode != http.StatusOK {
		t.Fatalf("page while running: %d", resp.StatusCode)
	}
	panel := doc.Find(tid("platform-status"))
	if panel.AttrOr("data-running", "") != "true" || panel.AttrOr("hx-get", "") != "/platform/status" {
		t.Errorf("status panel while running: running=%q hx-get=%q", panel.AttrOr("data-running", ""), panel.AttrOr("hx-get", ""))
	}
	if got := textOf(doc, "platform-progress"); !strings.HasPrefix(got, "full run, listing customers") {
		t.Errorf("progress %q", got)
	}
	close(release)
	s.WaitSynced(t, first.ID)
	// The polled fragment, once idle, stops polling.
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/platform/status", nil)
	req.Header.Set("HX-Request", "true")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	doc = parse(t, resp)
	if panel := doc.Find(tid("platform-status")); panel.Length() != 1 || panel.AttrOr("hx-get", "") != "" {
		t.Errorf("idle fragment: %d panels, hx-get %q", panel.Length(), panel.AttrOr("hx-get", ""))
	}
	// With htmx, Sync now answers the polling panel and a flash.
	resp, doc = postForm(t, s, c, "/platform/sync", url.Values{}, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || doc.Find(tid("platform-status")).AttrOr("data-polling", "") != "true" {
		t.Errorf("htmx sync now: %d", resp.StatusCode)
	}
}

// TestPlatformRegisterHook registers the receiver's hook on the platform and shows it
// (the secret hidden); pressing again finds it instead of registering a second.
func TestPlatformRegisterHook(t *testing.T) {
	s, f := platformUIServer(t, "https://chat-bridge.example.org")
	c := s.Browser(t)
	resp, doc := postForm(t, s, c, "/platform/hook", url.Values{})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, doc.Text())
	}
	hooks := f.Hooks()
	if len(hooks) != 1 {
		t.Fatalf("%d hooks on the platform", len(hooks))
	}
	h := hooks[0]
	if h.DestinationURL != "https://chat-bridge.example.org/api/waldur/events/"+uiEventsSecret+"/" || h.ContentType != "json" || !h.IsActive {
		t.Errorf("hook %+v", h)
	}
	for _, typ := range []string{"role_granted", "role_revoked", "project_deletion_succeeded", "user_deactivated", "customer_update_succeeded", "marketplace_order_completed"} {
		if !slices.Contains(h.EventTypes, typ) {
			t.Errorf("the hook lacks %s", typ)
		}
	}
	if got := textOf(doc, "platform-hook-url"); got != "https://chat-bridge.example.org/api/waldur/events/<secret>/" {
		t.Errorf("shown destination %q", got)
	}
	if got := textOf(doc, "platform-hook-uuid"); got != h.UUID {
		t.Errorf("shown hook %q, want %q", got, h.UUID)
	}
	if html, _ := doc.Html(); strings.Contains(html, uiEventsSecret) {
		t.Fatal("the page shows the secret")
	}
	resp, doc = postForm(t, s, c, "/platform/hook", url.Values{}, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(textOf(doc, "platform-hook"), "already registered") {
		t.Errorf("again: %d %q", resp.StatusCode, textOf(doc, "platform-hook"))
	}
	if n := len(f.Hooks()); n != 1 {
		t.Errorf("%d hooks after pressing twice", n)
	}
}

// TestPlatformRegisterHookNeedsAURL: without a public URL the action says what to set.
func TestPlatformRegisterHookNeedsAURL(t *testing.T) {
	s, f := platformUIServer(t, "")
	_, doc := postForm(t, s, s.Browser(t), "/platform/hook", url.Values{})
	if got := textOf(doc, "platform-hook-error"); !strings.Contains(got, "PUBLIC_URL") {
		t.Errorf("error %q", got)
	}
	if len(f.Hooks()) != 0 {
		t.Error("a hook was registered")
	}
}
