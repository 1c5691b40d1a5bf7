package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/browsertest"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
	"matrixas/matrix"
)

// TestExportsEndToEnd exports a real Dendrite room from the dashboard in Chromium: the
// room's "Export history" button (htmx swaps the section), progress until the export
// completes (the section polls), the download link, then the Exports page and its
// filter.
func TestExportsEndToEnd(t *testing.T) {
	browsertest.Require(t)
	dendritetest.Require(t)
	ctx := context.Background()
	srv := testserver.New(t, testserver.Options{Env: map[string]string{"PROVISION_INTERVAL": "1s"}})
	srv.ConnectDendrite(t)
	_, roomUUID := createProject(t, srv, "Apollo", map[string]string{"ann": "admin"})
	var room *db.Room
	deadline := time.Now().Add(90 * time.Second)
	for {
		var err error
		if room, err = srv.Store.RoomByUUID(ctx, roomUUID); err != nil {
			t.Fatal(err)
		}
		members, _ := srv.Store.RoomMembers(ctx, room.ID)
		if room.State == db.RoomActive && len(members) == 1 && members[0].Membership == "join" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s, members %v", room.State, members)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ms, err := srv.Web.Settings().Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ann, err := matrix.Client(ms, matrix.HTTPClient(3*time.Second, 30*time.Second), id.NewUserID("ann", ms.HomeserverDomain))
	if err != nil {
		t.Fatal(err)
	}
	var last id.EventID
	for i := range 120 {
		resp, err := ann.SendMessageEvent(ctx, room.RoomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: fmt.Sprintf("launch note %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		last = resp.EventID
	}
	dendritetest.WaitVisible(t, ann, room.RoomID, last)

	b := browsertest.New(t, srv.URL)
	sh := &shots{b: b, dir: browsertest.ScreenshotDir(t)}
	b.Login("staff", testserver.StaffPassword)
	b.Navigate("/rooms/" + roomUUID)
	b.WaitTestID("room-exports")
	if !b.Exists("room-exports-empty") {
		t.Error("no empty state before the first export")
	}
	b.Click("export-history")
	b.WaitFor(10*time.Second, "the queued flash", func() bool {
		return strings.Contains(flashes(b), "History export of Apollo queued")
	})
	if p := b.Path(); p != "/rooms/"+roomUUID {
		t.Errorf("htmx moved the page to %s", p)
	}
	b.WaitFor(60*time.Second, "the export to complete on the room's page", func() bool {
		return b.Count(`[data-testid="room-exports"] tr[data-state="completed"]`) == 1
	})
	if got := b.Text("export-messages"); got != "120" {
		t.Errorf("messages shown %q, want 120", got)
	}
	if polling := attr(b, "room-exports", "data-polling"); polling != "" {
		t.Errorf("the section still polls after the export completed (data-polling=%q)", polling)
	}
	sh.take(t, "room-exports", false)

	href := attr(b, "export-download", "href")
	code, body := fetch(t, b, href)
	var doc struct {
		RoomID   string `json:"room_id"`
		Messages []struct {
			Body string `json:"body"`
		} `json:"messages"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil || doc.RoomID != string(room.RoomID) ||
		len(doc.Messages) == 0 || doc.Messages[0].Body != "launch note 119" {
		t.Fatalf("download %s with the page's session: %d, %d messages", href, code, len(doc.Messages))
	}

	// The Exports page: the export is listed; the state filter swaps the table (htmx) and
	// pushes its URL.
	b.Click("room-exports-all")
	b.WaitFor(10*time.Second, "the Exports page filtered to the room", func() bool {
		return b.Path() == "/exports?room_uuid="+roomUUID && b.Count(`#exports-table tr[data-state="completed"]`) == 1
	})
	b.Navigate("/exports")
	b.WaitTestID("exports-table")
	sh.take(t, "exports", true)
	b.Do(chromedp.SetValue(browsertest.TestID("exports-state"), "failed"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid="exports-state"]').dispatchEvent(new Event("change", {bubbles: true}))`))
	b.WaitFor(10*time.Second, "the table to show no failed export", func() bool {
		return b.Exists("exports-empty")
	})
	if p := b.Path(); p != "/exports?state=failed" {
		t.Errorf("filtered URL %s", p)
	}
	b.AssertCleanConsole()
}
