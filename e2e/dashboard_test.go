package e2e

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"matrixas/db"
	"matrixas/internal/browsertest"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// TestDashboardEndToEnd walks the whole dashboard in headless Chromium against a real
// Dendrite: sign in, set up the appservice, install the registration, provision the bot,
// run diagnostics, watch rooms appear, reprovision onto a second homeserver, sign out.
// Every step saves a screenshot and checks the console for CSP violations and errors.
func TestDashboardEndToEnd(t *testing.T) {
	browsertest.Require(t)
	dendritetest.Require(t)
	hs := dendritetest.Start(t, dendritetest.Options{})
	srv := testserver.New(t)
	b := browsertest.New(t, srv.URL)
	sh := &shots{b: b, dir: browsertest.ScreenshotDir(t)}

	// Sign in: the dashboard sends an anonymous visitor to the login page.
	b.Navigate("/rooms")
	if p := b.Path(); p != "/login?next=%2Frooms" {
		t.Fatalf("anonymous /rooms landed on %s", p)
	}
	sh.take(t, "login", true)
	// Keyboard users see where they are: Tab from the (autofocused) username to the
	// password shows a focus ring.
	b.Do(chromedp.KeyEvent("\t"))
	focus := browsertest.Run(b, chromedp.EvaluateAsDevTools[string](`(() => {
		const e = document.activeElement, s = getComputedStyle(e);
		return e.id + " " + s.outlineStyle + " " + s.outlineWidth;
	})()`))
	if focus != "password solid 2px" {
		t.Errorf("focus after Tab: %q, want the password field with a 2px outline", focus)
	}
	b.Login("staff", testserver.StaffPassword)
	if p := b.Path(); p != "/rooms" {
		t.Errorf("after login: %s, want /rooms (next)", p)
	}
	b.Navigate("/")
	b.WaitTestID("next-steps")
	sh.take(t, "overview-not-set-up", true)

	// Setup through the form; the YAML is shown once.
	b.Navigate("/setup")
	b.Fill("#setup-url", srv.URL)
	b.Fill("#setup-homeserver_url", hs.URL)
	b.Fill("#setup-homeserver_domain", hs.ServerName)
	b.Fill("#setup-user_registration_secret", hs.SharedSecret)
	if status := b.ClickAndWaitLoad("setup-submit"); status != http.StatusOK {
		t.Fatalf("setup: status %d", status)
	}
	b.WaitTestID("registration-yaml")
	yaml := b.TextContent("registration-yaml")
	if !strings.Contains(yaml, "id: waldur") || !strings.Contains(yaml, "url: "+srv.URL) {
		t.Fatalf("registration YAML:\n%s", yaml)
	}
	if got := b.Text("bot-status"); !strings.HasPrefix(got, "Failed") && !strings.HasPrefix(got, "Skipped") {
		t.Errorf("bot status before the homeserver knows the appservice: %q", got)
	}
	if f := flashes(b); !strings.Contains(f, "Setup complete") {
		t.Errorf("flashes %q", f)
	}
	sh.take(t, "setup-result", true)

	// Copy puts the YAML on the clipboard (or says it could not).
	b.Click("copy-registration")
	b.WaitFor(5*time.Second, "the copy button to react", func() bool { return attr(b, "copy-registration", "data-copied") != "" })
	if got := attr(b, "copy-registration", "data-copied"); got != "true" {
		t.Errorf("copy: data-copied=%q", got)
	}

	// The Download link, fetched with the page's session, is the page's YAML and the API's.
	href := attr(b, "download-registration", "href")
	code, downloaded := fetch(t, b, href)
	resp, fromAPI := srv.Request(t, http.MethodGet, "/api/admin/matrix-appservice/registration.yaml", srv.StaffToken, nil)
	// (The page's text is read trimmed; the file ends with a newline.)
	if code != http.StatusOK || strings.TrimSpace(downloaded) != yaml || resp.StatusCode != http.StatusOK || string(fromAPI) != downloaded {
		t.Fatalf("download %s: status %d, same as page %v, same as API %v", href, code, strings.TrimSpace(downloaded) == yaml, string(fromAPI) == downloaded)
	}

	// Install it on the homeserver, restart, retry the bot (htmx swaps the panel).
	regFile := filepath.Join(t.TempDir(), "waldur.yaml")
	if err := os.WriteFile(regFile, []byte(downloaded), 0o600); err != nil {
		t.Fatal(err)
	}
	hs.SetRegistrationFiles(regFile)
	if err := hs.Restart(); err != nil {
		t.Fatal(err)
	}
	b.Click("retry-bot")
	waitText(t, b, "bot-status", "Provisioned", 30*time.Second)
	if f := flashes(b); !strings.Contains(f, "The bot is provisioned") {
		t.Errorf("flashes after the retry: %q", f)
	}
	sh.take(t, "setup-bot-provisioned", false)

	// Diagnostics: run on demand, results swapped in.
	b.Navigate("/diagnostics")
	b.Click("run-diagnostics")
	b.WaitTestID("diagnostics-results")
	whoami := browsertest.Run(b, chromedp.Text(chromedp.CSS(`[data-testid="check-bot_whoami"] [data-testid="check-badge"]`)))
	if whoami != "OK" {
		t.Errorf("bot_whoami badge %q", whoami)
	}
	sh.take(t, "diagnostics", true)

	// Projects pushed through the API: their rooms appear on the Rooms page, which
	// refreshes itself while they are being created.
	_, apollo := createProject(t, srv, "Apollo", map[string]string{"ann": "admin", "ben": "member"})
	_, geminiRoom := createProject(t, srv, "Gemini", map[string]string{"cat": "manager"})
	b.Navigate("/rooms")
	b.WaitFor(60*time.Second, "both rooms to become active on the Rooms page", func() bool {
		return b.Count(`#rooms-table tr[data-state="active"]`) == 2
	})
	sh.take(t, "rooms", true)

	// On a phone the navigation scrolls sideways; the current page's link is shown.
	b.SetViewport(390, 844)
	b.Navigate("/reprovision")
	visible := browsertest.Run(b, chromedp.EvaluateAsDevTools[bool](`(() => {
		const link = document.querySelector('.nav [aria-current="page"]').getBoundingClientRect();
		const row = document.querySelector('.nav > nav').getBoundingClientRect();
		return link.left >= row.left && link.right <= row.right;
	})()`))
	if !visible {
		t.Error("on a 390 px screen the current navigation link is scrolled out of sight")
	}
	b.SetViewport(1280, 900)

	// A room the worker gave up on: filter the list to errors (htmx swaps the table and
	// pushes the URL), retry it from its row (htmx swaps the row and shows a flash).
	gemini, err := srv.Store.RoomByUUID(context.Background(), geminiRoom)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.FailRoom(context.Background(), gemini.ID, "M_FORBIDDEN: simulated failure", 1, func(int) time.Duration { return time.Hour }); err != nil {
		t.Fatal(err)
	}
	b.Navigate("/rooms")
	b.Do(chromedp.SetValue(browsertest.TestID("rooms-state"), "error"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid="rooms-state"]').dispatchEvent(new Event("change", {bubbles: true}))`))
	b.WaitFor(10*time.Second, "the table to show only the errored room", func() bool {
		return b.Count(`#rooms-table tr[data-state]`) == 1 && b.Count(`#rooms-table tr[data-state="error"]`) == 1
	})
	if p := b.Path(); p != "/rooms?state=error" {
		t.Errorf("filtered URL %s", p)
	}
	if got := b.Text("room-error"); got != "M_FORBIDDEN: simulated failure" {
		t.Errorf("error shown %q", got)
	}
	sh.take(t, "rooms-error", false)

	// Someone else retries it first, and the worker makes it active: this page's button
	// is stale, and says so.
	api(t, srv, http.MethodPost, "/api/matrix-rooms/"+geminiRoom+"/retry/", nil, http.StatusAccepted, nil)
	b.WaitFor(60*time.Second, "Gemini to be active after that retry", func() bool {
		r, err := srv.Store.RoomByUUID(context.Background(), geminiRoom)
		return err == nil && r.State == db.RoomActive
	})
	b.Click("room-retry")
	b.WaitFor(10*time.Second, "an error flash for the stale button", func() bool {
		return strings.Contains(flashes(b), "Cannot retry a room in state")
	})
	if b.Count(`#rooms-table tr[data-state="error"]`) != 1 || !b.Exists("rooms-state") {
		t.Error("a refused action changed the table or the page")
	}
	// The browser and htmx log the 409; nothing else may be in the console.
	for _, p := range b.TakeProblems() {
		if !strings.Contains(p, "409") {
			t.Errorf("console: %s", p)
		}
	}
	if _, err := srv.Store.FailRoom(context.Background(), gemini.ID, "M_FORBIDDEN: simulated failure", 1, func(int) time.Duration { return time.Hour }); err != nil {
		t.Fatal(err)
	}
	b.Navigate("/rooms?state=error")
	b.Click("room-retry")
	b.WaitFor(10*time.Second, "the row to be swapped", func() bool {
		return b.Count(`#rooms-table tr[data-state="error"]`) == 0 && b.Count(`#rooms-table tr[data-state]`) == 1
	})
	if f := flashes(b); !strings.Contains(f, "Room of Gemini queued again.") {
		t.Errorf("flashes after the htmx retry: %q", f)
	}
	b.Navigate("/rooms")
	b.WaitFor(60*time.Second, "Gemini to be active again", func() bool {
		return b.Count(`#rooms-table tr[data-state="active"]`) == 2
	})

	b.Navigate("/rooms/" + apollo)
	b.WaitFor(60*time.Second, "ann and ben to have joined", func() bool {
		b.Navigate("/rooms/" + apollo)
		return memberCell(b, "ann", "member-membership") == "Joined" && memberCell(b, "ben", "member-membership") == "Joined"
	})
	if got := memberCell(b, "ann", "member-power"); got != "50 (moderator)" {
		t.Errorf("ann's power level %q", got)
	}
	if got := memberCell(b, "ben", "member-power"); got != "0" {
		t.Errorf("ben's power level %q", got)
	}
	oldRoomID := b.TextContent("room-id")
	if !strings.HasPrefix(oldRoomID, "!") {
		t.Fatalf("room id %q", oldRoomID)
	}
	sh.take(t, "room", true)

	// The Outbox: a message that failed (the room refused it, say) is retried from its
	// row (htmx swaps the row and shows a flash), and the bot then posts it.
	ctx := context.Background()
	apolloRoom, err := srv.Store.RoomByUUID(ctx, apollo)
	if err != nil {
		t.Fatal(err)
	}
	var failed string
	if err := srv.Store.Tx(ctx, func(tx *sql.Tx) error {
		if failed, err = srv.Store.QueueNotificationTx(ctx, tx, apolloRoom.ID, "Hello from the **end-to-end** test"); err != nil {
			return err
		}
		// Failed in the transaction that queues it, so the running sender never sees it pending.
		_, err := tx.ExecContext(ctx, `UPDATE bot_outbox SET state = 'failed', attempts = 6, last_error = 'M_FORBIDDEN: simulated failure', failed_at = ? WHERE uuid = ?`,
			time.Now().Unix(), failed)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	row := `[data-testid="outbox-row-` + failed + `"]`
	b.Navigate("/outbox?state=failed")
	if b.Count(row+`[data-state="failed"]`) != 1 || !strings.Contains(b.Text("outbox-error"), "M_FORBIDDEN: simulated failure") {
		t.Fatalf("the failed message is not on the Outbox page as failed")
	}
	sh.take(t, "outbox", true)
	b.Click("outbox-retry")
	b.WaitFor(10*time.Second, "the row to be swapped", func() bool { return b.Count(row+`[data-state="pending"]`) == 1 })
	if f := flashes(b); !strings.Contains(f, "The message to Apollo is queued again") {
		t.Errorf("flashes after the retry: %q", f)
	}
	b.WaitFor(30*time.Second, "the bot to post it", func() bool {
		m, err := srv.Store.OutboxByUUID(ctx, failed)
		return err == nil && m.State == db.OutboxSent
	})
	b.Navigate("/rooms/" + apollo)
	if b.Count(`[data-testid="bot-message-`+failed+`"][data-state="sent"]`) != 1 {
		t.Error("the room page does not show the message as sent")
	}
	b.Navigate("/outbox")
	if b.Count(row+`[data-state="sent"]`) != 1 {
		t.Error("the Outbox page does not show the message as sent")
	}

	b.Navigate("/")
	if b.Exists("next-steps") {
		t.Error("the overview still lists setup steps")
	}
	if got := b.Text("rooms-total"); got != "2" {
		t.Errorf("overview rooms %q", got)
	}
	b.Click("overview-run-diagnostics")
	b.WaitTestID("diagnostics-summary")
	if got := b.Text("diagnostics-summary"); !strings.Contains(got, "checks") {
		t.Errorf("diagnostics summary %q", got)
	}
	if p := b.Path(); p != "/" {
		t.Errorf("the summary navigated to %s", p)
	}
	sh.take(t, "overview", true)
	for _, p := range []string{"transactions", "projects", "users", "account", "settings"} {
		b.Navigate("/" + p)
		sh.take(t, p, false)
	}

	// Reprovision onto a second, fresh homeserver with the same server_name.
	hs2 := dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{regFile}})
	b.Navigate("/settings")
	b.Fill("#settings-homeserver_url", hs2.URL)
	b.ClickAndWaitLoad("settings-submit")
	if f := flashes(b); !strings.Contains(f, "Settings saved.") {
		t.Fatalf("settings flashes %q", f)
	}
	b.Navigate("/reprovision")
	if got := b.Text("dry-run-rooms"); got != "2" {
		t.Errorf("dry run rooms %q", got)
	}
	if !submitDisabled(b) {
		t.Error("the reprovision button is enabled before the domain is typed")
	}
	b.Fill(`[data-testid="confirm-domain"]`, "localhost")
	if submitDisabled(b) {
		t.Error("the reprovision button stays disabled after typing the domain")
	}
	sh.take(t, "reprovision-confirm", true)
	b.ClickAndWaitLoad("reprovision-submit")
	if f := flashes(b); !strings.Contains(f, "Reprovision started: 2 rooms") {
		t.Fatalf("reprovision flashes %q", f)
	}
	b.WaitTestID("reprovision-progress")
	b.WaitFor(90*time.Second, "the reprovision to finish (the panel polls itself)", func() bool {
		return strings.Contains(b.TextContent("reprovision-progress"), "Finished")
	})
	if got := b.TextContent("progress-rooms"); got != "2 of 2 rooms re-created" {
		t.Errorf("progress %q", got)
	}
	if attr(b, "reprovision-progress", "hx-trigger") != "" {
		t.Error("the finished progress panel still polls")
	}
	sh.take(t, "reprovision-finished", true)

	b.Navigate("/rooms/" + apollo)
	if got := b.TextContent("room-id"); got == oldRoomID || !strings.HasPrefix(got, "!") {
		t.Errorf("room id after reprovision %q (before %q)", got, oldRoomID)
	}

	// Sign out: the session is gone server-side.
	b.ClickAndWaitLoad("logout")
	if p := b.Path(); p != "/login" {
		t.Errorf("after logout: %s", p)
	}
	b.Navigate("/rooms")
	if p := b.Path(); !strings.HasPrefix(p, "/login") {
		t.Errorf("after logout /rooms shows %s", p)
	}
	sh.take(t, "logged-out", false)
}

// memberCell reads a cell of a member's row on a room page.
func memberCell(b *browsertest.Browser, user, testid string) string {
	return strings.TrimSpace(browsertest.Run(b, chromedp.EvaluateAsDevTools[string](
		`(document.querySelector('[data-testid="member-`+user+`"] [data-testid="`+testid+`"]') || {textContent: ""}).textContent`)))
}

func submitDisabled(b *browsertest.Browser) bool {
	return browsertest.Run(b, chromedp.EvaluateAsDevTools[bool](`document.querySelector('[data-testid="reprovision-submit"]').disabled`))
}

// TestDashboardWithoutJavaScript proves the forms work with JavaScript off: sign in,
// setup, the bot retry, diagnostics, and reprovision with its typed confirmation checked
// by the server, each a plain POST (or GET) answered with a page.
func TestDashboardWithoutJavaScript(t *testing.T) {
	browsertest.Require(t)
	srv := testserver.New(t)
	ctx := context.Background()

	// A project whose room is active, as the worker would have left it; the domain is
	// configured already, so setup shows it locked.
	if err := srv.Web.Settings().Set(ctx, map[string]string{settings.HomeserverDomain.Key: "example.org"}); err != nil {
		t.Fatal(err)
	}
	_, roomUUID := createProject(t, srv, "Apollo", map[string]string{"ann": "admin"})
	room, err := srv.Store.RoomByUUID(ctx, roomUUID)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.SetRoomHomeserverID(ctx, room.ID, "!apollo:example.org", "", ""); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.FinishRoomSync(ctx, room.ID, "Apollo"); err != nil {
		t.Fatal(err)
	}

	b := browsertest.New(t, srv.URL, browsertest.Options{JavaScriptDisabled: true})
	sh := &shots{b: b, dir: t.TempDir()}
	b.Login("staff", testserver.StaffPassword)
	sh.take(t, "nojs-overview", false)

	b.Navigate("/setup")
	if !b.Exists("locked-homeserver_domain") {
		t.Error("the configured domain is not locked on the setup form")
	}
	b.Fill("#setup-url", srv.URL)
	b.Fill("#setup-homeserver_url", "http://127.0.0.1:1")
	b.Fill("#setup-user_registration_secret", "a-shared-secret")
	if status := b.ClickAndWaitLoad("setup-submit"); status != http.StatusOK {
		t.Fatalf("setup: status %d", status)
	}
	if !strings.Contains(b.TextContent("registration-yaml"), "as_token:") {
		t.Fatal("no registration YAML after setup")
	}
	sh.take(t, "nojs-setup-result", false)

	// The retry button is a plain form: POST, redirect, flash.
	b.ClickAndWaitLoad("retry-bot")
	if p := b.Path(); p != "/setup" {
		t.Errorf("after the retry: %s", p)
	}
	if f := flashes(b); !strings.Contains(f, "Bot provisioning failed: ") || !strings.Contains(f, "connection refused") {
		t.Errorf("retry flashes %q", f)
	}

	// Diagnostics: the run button GETs the page with ?run=1.
	b.Navigate("/diagnostics")
	b.ClickAndWaitLoad("run-diagnostics")
	if p := b.Path(); p != "/diagnostics?run=1" {
		t.Errorf("diagnostics without JavaScript: %s", p)
	}
	b.WaitTestID("diagnostics-results")
	sh.take(t, "nojs-diagnostics", false)

	// Reprovision: without JavaScript the button is enabled; the server checks the domain.
	b.Navigate("/reprovision")
	if submitDisabled(b) {
		t.Error("without JavaScript the reprovision button must stay usable")
	}
	b.Fill(`[data-testid="confirm-domain"]`, "example.com")
	if status := b.ClickAndWaitLoad("reprovision-submit"); status != http.StatusOK {
		t.Fatalf("wrong domain: status %d", status)
	}
	if got := b.Text("error-confirm_domain"); !strings.Contains(got, "Type the homeserver domain exactly") {
		t.Errorf("wrong domain: error %q", got)
	}
	if r, _ := srv.Store.RoomByUUID(ctx, roomUUID); r.State != db.RoomActive {
		t.Fatalf("a wrong confirmation reprovisioned the room: %s", r.State)
	}
	b.Fill(`[data-testid="confirm-domain"]`, "example.org")
	b.ClickAndWaitLoad("reprovision-submit")
	if f := flashes(b); !strings.Contains(f, "Reprovision started: 1 rooms") {
		t.Errorf("reprovision flashes %q", f)
	}
	if got := b.TextContent("progress-rooms"); got != "0 of 1 rooms re-created" {
		t.Errorf("progress %q", got)
	}
	if r, _ := srv.Store.RoomByUUID(ctx, roomUUID); r.State != db.RoomCreating || r.RoomID != "" {
		t.Errorf("after reprovision: %s %q", r.State, r.RoomID)
	}
	sh.take(t, "nojs-reprovision", false)

	b.ClickAndWaitLoad("logout")
	if p := b.Path(); p != "/login" {
		t.Errorf("after logout: %s", p)
	}
}
