package ui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"matrixas/db"
	"matrixas/internal/testserver"
)

// outboxFixture queues messages in the rooms of two active projects, as the bot's
// sources do, and settles some of them as the sender would. The test server's sender
// does not post (no homeserver is set up), so what is pending stays pending.
type outboxFixture struct {
	dir                    *directory
	pending, sent, failed  *db.OutboxMessage
	apolloRoom, geminiRoom string
	apolloPK, geminiRoomPK int64
}

func newOutboxFixture(t *testing.T, srv *testserver.Server) *outboxFixture {
	t.Helper()
	ctx := context.Background()
	dir := newDirectory(t, srv)
	dir.user(t, "ann", true)
	dir.project(t, "Apollo", map[string]string{"ann": "admin"}, true)
	dir.project(t, "Gemini", nil, true)
	dir.activate(t, "Apollo")
	dir.activate(t, "Gemini")
	f := &outboxFixture{dir: dir, apolloRoom: dir.rooms["Apollo"], geminiRoom: dir.rooms["Gemini"],
		apolloPK: dir.roomPK(t, "Apollo"), geminiRoomPK: dir.roomPK(t, "Gemini")}
	queue := func(pk int64, body string) *db.OutboxMessage {
		m, err := srv.Store.QueueNotification(ctx, pk, body)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	f.sent = queue(f.apolloPK, "Ann has been granted the **Project Admin** role.")
	f.failed = queue(f.apolloPK, "Chat room was <reactivated>")
	f.pending = queue(f.geminiRoomPK, "Line one\nline two")
	if err := srv.Store.ClaimOutbox(ctx, []int64{f.sent.ID, f.failed.ID}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.MarkOutboxSent(ctx, f.sent.ID, "$posted", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.FailOutbox(ctx, f.failed.ID, "M_FORBIDDEN: the bot is not in the room", time.Now()); err != nil {
		t.Fatal(err)
	}
	return f
}

func outboxStates(doc *goquery.Document) map[string]string {
	out := map[string]string{}
	doc.Find(`tr[data-testid^="outbox-row-"]`).Each(func(_ int, s *goquery.Selection) {
		st, _ := s.Attr("data-state")
		out[strings.Join(strings.Fields(s.Find(tid("outbox-body")).Text()), " ")] = st
	})
	return out
}

// TestOutboxPage: the Outbox page lists every message with its state, error and room,
// filters by state (the counts in the filter), pages, and is reachable from the nav.
func TestOutboxPage(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	f := newOutboxFixture(t, srv)

	resp, doc := getPage(t, srv, c, "/outbox")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	assertAccessible(t, doc)
	if doc.Find(`.nav a[aria-current="page"]`).Text() != "Outbox" {
		t.Errorf("nav: current %q", doc.Find(`.nav a[aria-current="page"]`).Text())
	}
	want := map[string]string{
		"Ann has been granted the **Project Admin** role.": "sent",
		"Chat room was <reactivated>":                      "failed",
		"Line one line two":                                "pending",
	}
	if got := outboxStates(doc); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	row := doc.Find(tid("outbox-row-" + f.failed.UUID))
	if got := strings.TrimSpace(row.Find(tid("outbox-error")).Text()); got != "M_FORBIDDEN: the bot is not in the room" {
		t.Errorf("failed row error %q", got)
	}
	if row.Find(tid("outbox-retry")).Length() != 1 || doc.Find(tid("outbox-retry")).Length() != 1 {
		t.Errorf("retry buttons: %d on the failed row, %d in all; want only the failed one", row.Find(tid("outbox-retry")).Length(), doc.Find(tid("outbox-retry")).Length())
	}
	if href, _ := row.Find(tid("outbox-room")).Attr("href"); href != "/rooms/"+f.apolloRoom {
		t.Errorf("room link %q", href)
	}
	// The pending row keeps the page polling; the options count each state.
	if _, ok := doc.Find(tid("outbox-table")).Attr("hx-trigger"); !ok {
		t.Error("the table does not refresh itself while a message is pending")
	}
	var options []string
	doc.Find(tid("outbox-state") + " option").Each(func(_ int, s *goquery.Selection) { options = append(options, s.Text()) })
	if fmt.Sprint(options) != "[All states Pending (1) Sent (1) Failed (1)]" {
		t.Errorf("state options %q", options)
	}

	// Filtered by state, and by room; a bad filter is said and ignored.
	_, doc = getPage(t, srv, c, "/outbox?state=failed")
	if got := outboxStates(doc); len(got) != 1 || got["Chat room was <reactivated>"] != "failed" {
		t.Errorf("failed only: %v", got)
	}
	if _, ok := doc.Find(tid("outbox-table")).Attr("hx-trigger"); ok {
		t.Error("a table without pending messages polls")
	}
	_, doc = getPage(t, srv, c, "/outbox?room="+f.geminiRoom)
	if got := outboxStates(doc); len(got) != 1 || got["Line one line two"] != "pending" || !strings.Contains(textOf(doc, "outbox-room-filter"), "Gemini") {
		t.Errorf("Gemini only: %v, filter %q", got, textOf(doc, "outbox-room-filter"))
	}
	_, doc = getPage(t, srv, c, "/outbox?state=lost")
	if len(outboxStates(doc)) != 3 || !strings.Contains(textOf(doc, "form-error"), `"lost"`) {
		t.Errorf("bad filter: %d rows, error %q", len(outboxStates(doc)), textOf(doc, "form-error"))
	}
	_, doc = getPage(t, srv, c, "/outbox?state=sent&room="+f.geminiRoom)
	if doc.Find(tid("outbox-empty")).Length() != 1 {
		t.Error("no empty state for a filter that matches nothing")
	}

	// htmx aimed at the table gets the table alone.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/outbox?state=sent", nil)
	req.Header.Set("HX-Request", "true")
	req.Header.Set("HX-Target", "outbox-table")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "<html") || !strings.Contains(string(body), `id="outbox-table"`) {
		t.Errorf("htmx table fragment: %.200s", body)
	}

	// Pages of 25, newest first.
	for i := range 30 {
		if _, err := srv.Store.QueueNotification(context.Background(), f.geminiRoomPK, fmt.Sprintf("bulk %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, doc = getPage(t, srv, c, "/outbox?page=2")
	if n := doc.Find(`tr[data-testid^="outbox-row-"]`).Length(); n != 8 || !strings.Contains(textOf(doc, "pagination-info"), "26–33 of 33") {
		t.Errorf("page 2: %d rows, %q", n, textOf(doc, "pagination-info"))
	}
	_, doc = getPage(t, srv, c, "/outbox")
	if first := strings.TrimSpace(doc.Find(tid("outbox-body")).First().Text()); first != "bulk 29" {
		t.Errorf("first row %q, want the newest", first)
	}
}

// TestOutboxRetry: a failed message goes back in the queue from the page, with a plain
// form (redirect and flash) or htmx (the row swapped, a flash out of band); anything
// else is refused and changes nothing.
func TestOutboxRetry(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	f := newOutboxFixture(t, srv)
	ctx := context.Background()

	// JavaScript off.
	got := postRedirectFlash(t, srv, c, "/outbox/"+f.failed.UUID+"/retry", url.Values{"next": {"/outbox?state=failed"}}, "/outbox?state=failed")
	if len(got) != 1 || got[0] != "success: The message to Apollo is queued again; the bot sends it now." {
		t.Errorf("flash %q", got)
	}
	if m, _ := srv.Store.OutboxByUUID(ctx, f.failed.UUID); m.State != db.OutboxPending || m.Attempts != 0 || m.LastError == "" {
		t.Errorf("after retry %+v: want pending, a new round, the last error kept", m)
	}
	// Again: it is not failed any more.
	got = postRedirectFlash(t, srv, c, "/outbox/"+f.failed.UUID+"/retry", url.Values{"next": {"/outbox"}}, "/outbox")
	if len(got) != 1 || !strings.HasPrefix(got[0], "error: This message is not failed any more") {
		t.Errorf("second retry %q", got)
	}
	resp, _ := postForm(t, srv, c, "/outbox/"+f.sent.UUID+"/retry", url.Values{"next": {"//evil.example/x"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/outbox" {
		t.Errorf("next=//evil.example: %d to %q", resp.StatusCode, loc)
	}
	if resp, _ := postForm(t, srv, c, "/outbox/"+db.NewUUID()+"/retry", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown message: %d", resp.StatusCode)
	}

	// htmx: the row is swapped in place, the flash comes out of band.
	if err := srv.Store.ClaimOutbox(ctx, []int64{f.failed.ID}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.FailOutbox(ctx, f.failed.ID, "HTTP 502 Bad Gateway", time.Now()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/outbox/"+f.failed.UUID+"/retry", strings.NewReader("next=%2Foutbox"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("htmx retry: %d %s", resp.StatusCode, body)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader("<table><tbody>" + string(body) + "</tbody></table>"))
	if err != nil {
		t.Fatal(err)
	}
	row := doc.Find(tid("outbox-row-" + f.failed.UUID))
	if st, _ := row.Attr("data-state"); st != "pending" || row.Find(tid("outbox-retry")).Length() != 0 {
		t.Errorf("swapped row: state %q, retry buttons %d", st, row.Find(tid("outbox-retry")).Length())
	}
	if fl := flashes(doc); len(fl) != 1 || !strings.HasPrefix(fl[0], "success: The message to Apollo is queued again") {
		t.Errorf("htmx flashes %q", fl)
	}
	// htmx, refused: a 409 retargeted to the flash area.
	resp, doc = postForm(t, srv, c, "/outbox/"+f.sent.UUID+"/retry", nil, "HX-Request", "true")
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("HX-Retarget") != "#flashes" || len(flashes(doc)) != 1 {
		t.Errorf("htmx refused: %d, retarget %q, flashes %q", resp.StatusCode, resp.Header.Get("HX-Retarget"), flashes(doc))
	}
	if m, _ := srv.Store.OutboxByUUID(ctx, f.sent.UUID); m.State != db.OutboxSent || m.EventID != "$posted" {
		t.Errorf("a refused retry changed the sent message: %+v", m)
	}
}

// TestRoomPageBotMessages: a room's page shows the bot's recent messages there (only
// that room's), newest first, and links to the rest in the Outbox.
func TestRoomPageBotMessages(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	f := newOutboxFixture(t, srv)
	_, doc := getPage(t, srv, c, "/rooms/"+f.apolloRoom)
	assertAccessible(t, doc)
	var bodies []string
	doc.Find(tid("bot-messages") + ` tr[data-testid^="bot-message-"]`).Each(func(_ int, s *goquery.Selection) {
		st, _ := s.Attr("data-state")
		bodies = append(bodies, st+": "+strings.TrimSpace(s.Find(tid("outbox-body")).Text()))
	})
	want := []string{"failed: Chat room was <reactivated>", "sent: Ann has been granted the **Project Admin** role."}
	if fmt.Sprint(bodies) != fmt.Sprint(want) {
		t.Errorf("bot messages %q, want %q", bodies, want)
	}
	if href, _ := doc.Find(tid("bot-messages-all")).Attr("href"); href != "/outbox?room="+f.apolloRoom {
		t.Errorf("link to the outbox %q", href)
	}
	_, doc = getPage(t, srv, c, "/rooms/"+f.geminiRoom)
	if n := doc.Find(tid("bot-messages") + ` tr[data-testid^="bot-message-"]`).Length(); n != 1 {
		t.Errorf("Gemini's page shows %d bot messages, want its one", n)
	}
	f.dir.project(t, "Mercury", nil, true)
	_, doc = getPage(t, srv, c, "/rooms/"+f.dir.rooms["Mercury"])
	if doc.Find(tid("bot-messages-empty")).Length() != 1 {
		t.Error("a room without bot messages does not say so")
	}
}
