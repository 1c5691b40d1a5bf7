package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/exports"
	"matrixas/internal/testserver"
)

// The test server's appservice is not set up, so its export job leaves the exports
// these tests make alone: their states are the ones set here.

// exportRoom gives project's room a Matrix room id, as the worker does once it exists.
func exportRoom(t *testing.T, d *directory, project string) *db.Room {
	t.Helper()
	ctx := context.Background()
	pk := d.roomPK(t, project)
	if err := d.srv.Store.SetRoomHomeserverID(ctx, pk, id.RoomID("!"+strings.ToLower(project)+":example.org"), "", ""); err != nil {
		t.Fatal(err)
	}
	if err := d.srv.Store.FinishRoomSync(ctx, pk, project); err != nil {
		t.Fatal(err)
	}
	r, err := d.srv.Store.RoomByID(ctx, pk)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// export makes an export of room in the given state.
func export(t *testing.T, srv *testserver.Server, room *db.Room, typ db.ExportType, state db.ExportState) *db.HistoryExport {
	t.Helper()
	ctx := context.Background()
	e, created, err := srv.Store.CreateExport(ctx, room.ID, typ)
	if err != nil || !created {
		t.Fatalf("create export: created=%v %v", created, err)
	}
	switch state {
	case db.ExportPending:
		return e
	case db.ExportFailed:
		err = srv.Store.FailExport(ctx, e.UUID, "the homeserver did not give the room's history: M_FORBIDDEN")
	default:
		if _, err := srv.Store.StartExport(ctx, e.UUID); err != nil {
			t.Fatal(err)
		}
		switch state {
		case db.ExportExporting:
			err = srv.Store.ExportProgress(ctx, e.UUID, 1200, 0)
		case db.ExportCompleted:
			err = srv.Store.CompleteExport(ctx, e.UUID, db.ExportOutcome{MessageCount: 250, MediaCount: 2,
				ExportFile: e.UUID + ".json.enc", ExportSize: 53581, MediaFile: e.UUID + "-media.zip.enc", MediaSize: 3 << 20})
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func rowStates(doc *goquery.Document) []string {
	var out []string
	doc.Find(`#exports-table tr[data-state]`).Each(func(_ int, s *goquery.Selection) {
		st, _ := s.Attr("data-state")
		out = append(out, st)
	})
	return out
}

// TestExportsPage: every export newest first with its state, progress, error and
// downloads; filters by state, type and room, with and without htmx; polling while one
// runs; the nav entry.
func TestExportsPage(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	resp, doc := getPage(t, srv, c, "/exports")
	if resp.StatusCode != http.StatusOK || doc.Find(tid("exports-empty")).Length() != 1 {
		t.Fatalf("empty Exports page: %d, empty state %d", resp.StatusCode, doc.Find(tid("exports-empty")).Length())
	}
	if a := doc.Find(`.nav-links a[aria-current="page"]`); strings.TrimSpace(a.Text()) != "Exports" || a.AttrOr("href", "") != "/exports" {
		t.Errorf("current nav entry %q -> %q", a.Text(), a.AttrOr("href", ""))
	}

	d := newDirectory(t, srv)
	d.project(t, "Apollo", nil, true)
	d.project(t, "Gemini", nil, true)
	apollo, gemini := exportRoom(t, d, "Apollo"), exportRoom(t, d, "Gemini")
	done := export(t, srv, apollo, db.ExportManual, db.ExportCompleted)
	failed := export(t, srv, apollo, db.ExportPeriodic, db.ExportFailed)
	running := export(t, srv, gemini, db.ExportOnDeletion, db.ExportExporting)
	waiting := export(t, srv, apollo, db.ExportManual, db.ExportPending)

	_, doc = getPage(t, srv, c, "/exports")
	assertAccessible(t, doc)
	if got := rowStates(doc); !slices.Equal(got, []string{"pending", "exporting", "failed", "completed"}) {
		t.Errorf("rows %v, want newest first", got)
	}
	table := doc.Find(tid("exports-table"))
	if _, polls := table.Attr("hx-get"); !polls || table.AttrOr("hx-trigger", "") != "every 2s" {
		t.Error("the table does not poll while an export runs")
	}
	row := doc.Find(tid("export-row-" + done.UUID))
	if href := row.Find(tid("export-download")).AttrOr("href", ""); href != "/api/matrix-exports/"+done.UUID+"/download/export/" {
		t.Errorf("JSON download link %q", href)
	}
	if href := row.Find(tid("export-download-media")).AttrOr("href", ""); href != "/api/matrix-exports/"+done.UUID+"/download/media/" {
		t.Errorf("media download link %q", href)
	}
	if got := strings.Join(strings.Fields(row.Text()), " "); !strings.Contains(got, "Apollo") || !strings.Contains(got, "Manual") ||
		!strings.Contains(got, "250 2 attachments") || !strings.Contains(got, "52.3 KiB") || !strings.Contains(got, "3.0 MiB") {
		t.Errorf("completed row: %q", got)
	}
	if got := strings.TrimSpace(doc.Find(tid("export-row-" + running.UUID)).Find(tid("export-progress")).Text()); !strings.HasPrefix(got, "1200 messages") {
		t.Errorf("progress of the running export: %q", got)
	}
	if got := doc.Find(tid("export-row-" + failed.UUID)).Find(tid("export-error")).Text(); got != "the homeserver did not give the room's history: M_FORBIDDEN" {
		t.Errorf("failed row's error %q", got)
	}
	for _, u := range []string{failed.UUID, running.UUID, waiting.UUID} {
		if doc.Find(tid("export-row-"+u)).Find(tid("export-download")).Length() != 0 {
			t.Errorf("export %s has a download link before it completed", u)
		}
	}

	// Filters, as a browser without JavaScript sends them.
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"?state=completed", []string{"completed"}},
		{"?export_type=on_deletion", []string{"exporting"}},
		{"?room_uuid=" + apollo.UUID, []string{"pending", "failed", "completed"}},
		{"?room_uuid=" + gemini.UUID + "&state=failed", nil},
	} {
		_, doc := getPage(t, srv, c, "/exports"+tc.query)
		if got := rowStates(doc); !slices.Equal(got, tc.want) {
			t.Errorf("%s: rows %v, want %v", tc.query, got, tc.want)
		}
	}
	_, doc = getPage(t, srv, c, "/exports?room_uuid="+apollo.UUID)
	if got := textOf(doc, "exports-room-filter"); !strings.HasPrefix(got, "Apollo") {
		t.Errorf("room filter shows %q", got)
	}
	_, doc = getPage(t, srv, c, "/exports?state=done")
	if got := textOf(doc, "form-error"); !strings.Contains(got, "done is not one of the available choices") || len(rowStates(doc)) != 4 {
		t.Errorf("a bad filter: %q, %d rows; want it named and every export shown", got, len(rowStates(doc)))
	}

	// htmx aimed at the table gets the table alone; with nothing running it stops polling.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/exports?state=completed", nil)
	req.Header.Set("HX-Request", "true")
	req.Header.Set("HX-Target", "exports-table")
	req.Header.Set("HX-Trigger", "exports-filter")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if push := resp.Header.Get("HX-Push-Url"); push != "/exports?state=completed" {
		t.Errorf("HX-Push-Url %q", push)
	}
	frag := parse(t, resp)
	if frag.Find("nav").Length() != 1 || frag.Find(".nav-links").Length() != 0 || frag.Find(tid("exports-table")).Length() != 1 {
		t.Error("the htmx answer is not the table alone (its pagination nav only)")
	}
	if _, polls := frag.Find(tid("exports-table")).Attr("hx-trigger"); polls {
		t.Error("a table with nothing running still polls")
	}
}

// TestRoomExportHistory: a room's page lists its exports and has the "Export history"
// button, which works without JavaScript (post, redirect, flash) and with htmx (the
// section swapped, the flash out of band); the API's rules apply.
func TestRoomExportHistory(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	d := newDirectory(t, srv)
	d.project(t, "Apollo", nil, true)
	d.project(t, "Vostok", nil, true) // its room is not on the homeserver yet
	apollo := exportRoom(t, d, "Apollo")
	page := "/rooms/" + apollo.UUID

	_, doc := getPage(t, srv, c, page)
	assertAccessible(t, doc)
	section := doc.Find(tid("room-exports"))
	if section.Find(tid("export-history")).Length() != 1 || section.Find(tid("room-exports-empty")).Length() != 1 {
		t.Fatal("the room's page has no Export history button or no empty state")
	}
	form := section.Find("form")
	if form.AttrOr("method", "") != "post" || form.AttrOr("action", "") != page+"/export_history" {
		t.Errorf("button form %s %s", form.AttrOr("method", ""), form.AttrOr("action", ""))
	}

	// Without JavaScript.
	got := postRedirectFlash(t, srv, c, page+"/export_history", url.Values{"next": {page}}, page)
	if len(got) != 1 || !strings.HasPrefix(got[0], "success: History export of Apollo queued") {
		t.Errorf("flashes %v", got)
	}
	_, doc = getPage(t, srv, c, page)
	if states := doc.Find(tid("room-exports")).Find("tr[data-state]"); states.Length() != 1 || states.AttrOr("data-state", "") != "pending" {
		t.Errorf("the room's exports after the button: %d rows", states.Length())
	}
	if _, polls := doc.Find(tid("room-exports")).Attr("hx-get"); !polls {
		t.Error("the section does not poll while its export waits")
	}
	got = postRedirectFlash(t, srv, c, page+"/export_history", url.Values{"next": {page}}, page)
	if len(got) != 1 || !strings.HasPrefix(got[0], "info: An export of Apollo is already waiting") {
		t.Errorf("second press: flashes %v", got)
	}
	vostok := "/rooms/" + d.rooms["Vostok"]
	_, doc = getPage(t, srv, c, vostok)
	if doc.Find(tid("export-history")).Length() != 0 || !strings.Contains(textOf(doc, "export-unavailable"), "does not exist on the homeserver yet") {
		t.Error("a room not on the homeserver offers the button")
	}
	got = postRedirectFlash(t, srv, c, vostok+"/export_history", url.Values{"next": {vostok}}, vostok)
	if len(got) != 1 || !strings.HasPrefix(got[0], "error: The room of Vostok does not exist on the homeserver yet") {
		t.Errorf("export of a room not on the homeserver: flashes %v", got)
	}

	// With htmx: the section comes back with the flash out of band.
	pending, err := srv.Store.PendingExport(context.Background(), apollo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.FailExport(context.Background(), pending.UUID, "test"); err != nil {
		t.Fatal(err)
	}
	resp, frag := postForm(t, srv, c, page+"/export_history", url.Values{"next": {page}}, "HX-Request", "true", "HX-Target", "room-exports")
	if resp.StatusCode != http.StatusOK || frag.Find(tid("room-exports")).Length() != 1 || frag.Find(`#flashes[hx-swap-oob]`).Length() != 1 {
		t.Fatalf("htmx press: %d, section %d, oob flash %d", resp.StatusCode, frag.Find(tid("room-exports")).Length(), frag.Find(`#flashes[hx-swap-oob]`).Length())
	}
	if n := frag.Find(tid("room-exports")).Find("tr[data-state]").Length(); n != 2 {
		t.Errorf("the swapped section lists %d exports, want 2", n)
	}

	// The limit: ten manual exports in a day, then a refusal (htmx: a 429 in the flash area).
	for range exports.ManualLimit - 2 {
		p, err := srv.Store.PendingExport(context.Background(), apollo.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Store.FailExport(context.Background(), p.UUID, "test"); err != nil {
			t.Fatal(err)
		}
		postRedirectFlash(t, srv, c, page+"/export_history", url.Values{"next": {page}}, page)
	}
	p, _ := srv.Store.PendingExport(context.Background(), apollo.ID)
	if err := srv.Store.FailExport(context.Background(), p.UUID, "test"); err != nil {
		t.Fatal(err)
	}
	resp, frag = postForm(t, srv, c, page+"/export_history", url.Values{"next": {page}}, "HX-Request", "true", "HX-Target", "room-exports")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("HX-Retarget") != "#flashes" ||
		!strings.Contains(frag.Text(), "had 10 manual exports in the last 24 hours") {
		t.Errorf("the 11th: %d, retarget %q, %q", resp.StatusCode, resp.Header.Get("HX-Retarget"), strings.Join(strings.Fields(frag.Text()), " "))
	}
	got = postRedirectFlash(t, srv, c, page+"/export_history", url.Values{"next": {page}}, page)
	if len(got) != 1 || !strings.HasPrefix(got[0], "error: The room of Apollo had 10 manual exports") {
		t.Errorf("the 11th without JavaScript: flashes %v", got)
	}
	_, doc = getPage(t, srv, c, page)
	if got := textOf(doc, "room-exports-all"); got != "All exports (10)" {
		t.Errorf("link to all the room's exports: %q", got)
	}

	// The section's own address: htmx polls it; a browser is sent to the filtered list.
	resp, _ = getPage(t, srv, c, page+"/exports")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/exports?room_uuid="+apollo.UUID {
		t.Errorf("GET %s/exports without htmx: %d to %q", page, resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+page+"/exports", nil)
	req.Header.Set("HX-Request", "true")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if frag := parse(t, resp); resp.StatusCode != http.StatusOK || frag.Find(tid("room-exports")).Length() != 1 {
		t.Errorf("GET %s/exports with htmx: %d", page, resp.StatusCode)
	}
}
