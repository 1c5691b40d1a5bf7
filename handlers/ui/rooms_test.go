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
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// directory fills the platform directory through the JSON API, as the platform would:
// users, projects with members, and one room per project.
type directory struct {
	srv      *testserver.Server
	users    map[string]string // username -> uuid
	projects map[string]string // project name -> uuid
	rooms    map[string]string // project name -> room uuid
}

func newDirectory(t *testing.T, srv *testserver.Server) *directory {
	t.Helper()
	if err := srv.Web.Settings().Set(context.Background(), map[string]string{settings.HomeserverDomain.Key: "example.org"}); err != nil {
		t.Fatal(err)
	}
	return &directory{srv: srv, users: map[string]string{}, projects: map[string]string{}, rooms: map[string]string{}}
}

func (d *directory) user(t *testing.T, name string, active bool) string {
	t.Helper()
	var out struct{ UUID string }
	code := d.srv.JSON(t, http.MethodPost, "/api/users/", d.srv.StaffToken,
		map[string]any{"username": name, "email": name + "@example.org", "full_name": strings.ToUpper(name), "is_active": active}, &out)
	if code != http.StatusCreated {
		t.Fatalf("create user %s: %d", name, code)
	}
	d.users[name] = out.UUID
	return out.UUID
}

// project creates a project with members (username -> role) and, when room, its room.
func (d *directory) project(t *testing.T, name string, members map[string]string, room bool) string {
	t.Helper()
	var out struct{ UUID string }
	if code := d.srv.JSON(t, http.MethodPost, "/api/projects/", d.srv.StaffToken, map[string]any{"name": name, "description": "About " + name}, &out); code != http.StatusCreated {
		t.Fatalf("create project %s: %d", name, code)
	}
	d.projects[name] = out.UUID
	var list []map[string]string
	for u, role := range members {
		list = append(list, map[string]string{"user": d.users[u], "role": role})
	}
	if len(list) > 0 {
		if code := d.srv.JSON(t, http.MethodPut, "/api/projects/"+out.UUID+"/members/", d.srv.StaffToken, list, nil); code != http.StatusOK {
			t.Fatalf("members of %s: %d", name, code)
		}
	}
	if room {
		var r struct{ UUID string }
		if code := d.srv.JSON(t, http.MethodPost, "/api/matrix-rooms/", d.srv.StaffToken, map[string]string{"project": out.UUID}, &r); code != http.StatusCreated {
			t.Fatalf("room of %s: %d", name, code)
		}
		d.rooms[name] = r.UUID
	}
	return out.UUID
}

// roomPK is the room's row id, for driving its state the way the worker would.
func (d *directory) roomPK(t *testing.T, project string) int64 {
	t.Helper()
	r, err := d.srv.Store.RoomByUUID(context.Background(), d.rooms[project])
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// activate does what the worker does when it created a room.
func (d *directory) activate(t *testing.T, project string) {
	t.Helper()
	ctx := context.Background()
	pk := d.roomPK(t, project)
	if err := d.srv.Store.SetRoomHomeserverID(ctx, pk, id.RoomID("!"+project+":example.org"), id.RoomAlias("#waldur-"+d.projects[project]+":example.org"), ""); err != nil {
		t.Fatal(err)
	}
	if err := d.srv.Store.FinishRoomSync(ctx, pk, project); err != nil {
		t.Fatal(err)
	}
}

// fail does what the worker does when it gives up on a room.
func (d *directory) fail(t *testing.T, project, msg string) {
	t.Helper()
	gaveUp, err := d.srv.Store.FailRoom(context.Background(), d.roomPK(t, project), msg, 1, func(int) time.Duration { return time.Minute })
	if err != nil || !gaveUp {
		t.Fatalf("fail room of %s: %v %v", project, gaveUp, err)
	}
}

func roomStates(doc *goquery.Document) map[string]string {
	out := map[string]string{}
	doc.Find(`tr[data-testid^="room-row-"]`).Each(func(_ int, s *goquery.Selection) {
		out[strings.TrimSpace(s.Find(tid("room-link")).Text())] = strings.TrimSpace(s.Find(tid("room-state")).Text())
	})
	return out
}

func TestRoomsPage(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	dir := newDirectory(t, srv)
	dir.user(t, "ann", true)
	dir.user(t, "ben", true)
	dir.project(t, "Apollo", map[string]string{"ann": "admin", "ben": "member"}, true)
	dir.project(t, "Gemini", map[string]string{"ben": "manager"}, true)
	dir.project(t, "Mercury", nil, true)
	dir.project(t, "Skylab", nil, false)
	dir.activate(t, "Apollo")
	dir.fail(t, "Gemini", "M_FORBIDDEN: You are not invited to this room.")

	_, doc := getPage(t, srv, c, "/rooms")
	assertAccessible(t, doc)
	if got := fmt.Sprint(roomStates(doc)); got != "map[Apollo:Active Gemini:Error Mercury:Creating]" {
		t.Errorf("rooms %s", got)
	}
	if got := textOf(doc, "room-row-"+dir.rooms["Gemini"]); !strings.Contains(got, "M_FORBIDDEN: You are not invited") {
		t.Errorf("error row %q lacks the error message", got)
	}
	if got := strings.TrimSpace(doc.Find(`#rooms-state option[value="error"]`).Text()); got != "Error (1)" {
		t.Errorf("state option %q", got)
	}
	// A creating room makes the table poll itself; without one it stops.
	if poll, _ := doc.Find("#rooms-table").Attr("hx-trigger"); poll != "every 3s" {
		t.Errorf("table with a creating room: hx-trigger %q", poll)
	}

	tests := []struct {
		query string
		want  string
	}{
		{"?state=active", "map[Apollo:Active]"},
		{"?state=error", "map[Gemini:Error]"},
		{"?search=merc", "map[Mercury:Creating]"},
		{"?search=" + url.QueryEscape("#waldur-"+dir.projects["Apollo"]), "map[Apollo:Active]"},
		{"?state=archived", "map[]"},
	}
	for _, tt := range tests {
		_, doc := getPage(t, srv, c, "/rooms"+tt.query)
		if got := fmt.Sprint(roomStates(doc)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.query, got, tt.want)
		}
	}
	_, doc = getPage(t, srv, c, "/rooms?state=active")
	if _, polls := doc.Find("#rooms-table").Attr("hx-trigger"); polls {
		t.Error("a table without pending rooms polls")
	}
	_, doc = getPage(t, srv, c, "/rooms?state=bogus")
	if !strings.Contains(textOf(doc, "form-error"), "bogus") || len(roomStates(doc)) != 3 {
		t.Errorf("a bad state filter: error %q, %d rooms", textOf(doc, "form-error"), len(roomStates(doc)))
	}

	// htmx asking for the table gets only the table.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/rooms?state=error", nil)
	req.Header.Set("HX-Request", "true")
	req.Header.Set("HX-Target", "rooms-table")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	doc = parse(t, resp)
	if doc.Find("header, nav.pagination ~ nav, title").Length() != 0 || doc.Find("#rooms-table").Length() != 1 || fmt.Sprint(roomStates(doc)) != "map[Gemini:Error]" {
		t.Errorf("htmx table: whole page %v, rooms %v", doc.Find("header").Length() != 0, roomStates(doc))
	}
}

func TestRoomsPagination(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	dir := newDirectory(t, srv)
	for i := 0; i < 30; i++ {
		dir.project(t, fmt.Sprintf("P%02d", i), nil, true)
	}
	_, doc := getPage(t, srv, c, "/rooms")
	if n := len(roomStates(doc)); n != 25 {
		t.Errorf("page 1: %d rooms", n)
	}
	if got := textOf(doc, "pagination-info"); got != "Showing 1–25 of 30" {
		t.Errorf("info %q", got)
	}
	next, _ := doc.Find(tid("page-next")).Attr("href")
	if next != "/rooms?page=2" {
		t.Fatalf("next link %q", next)
	}
	_, doc = getPage(t, srv, c, next)
	if n := len(roomStates(doc)); n != 5 {
		t.Errorf("page 2: %d rooms", n)
	}
	// The filters stay in the page links.
	_, doc = getPage(t, srv, c, "/rooms?state=creating&search=P")
	if next, _ := doc.Find(tid("page-next")).Attr("href"); next != "/rooms?page=2&search=P&state=creating" {
		t.Errorf("filtered next link %q", next)
	}
}

func TestRoomActions(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	dir := newDirectory(t, srv)
	dir.user(t, "ann", true)
	dir.project(t, "Apollo", map[string]string{"ann": "admin"}, true)
	dir.fail(t, "Apollo", "M_UNKNOWN: boom")
	room := dir.rooms["Apollo"]

	// JavaScript off: retry from the room page, back to the room page with a flash.
	_, doc := getPage(t, srv, c, "/rooms/"+room)
	if doc.Find(tid("room-retry")).Length() != 1 || textOf(doc, "room-error-message") != "M_UNKNOWN: boom" {
		t.Fatalf("room page: retry button %d, error %q", doc.Find(tid("room-retry")).Length(), textOf(doc, "room-error-message"))
	}
	got := postRedirectFlash(t, srv, c, "/rooms/"+room+"/retry", url.Values{"next": {"/rooms/" + room}}, "/rooms/"+room)
	if len(got) != 1 || got[0] != "success: Room of Apollo queued again." {
		t.Errorf("retry: %q", got)
	}
	if r, _ := srv.Store.RoomByUUID(context.Background(), room); r.State != db.RoomCreating || r.ErrorMessage != "" {
		t.Errorf("after retry: %s %q", r.State, r.ErrorMessage)
	}
	// Reactivating a room being created is an illegal transition: an error flash,
	// nothing changes.
	got = postRedirectFlash(t, srv, c, "/rooms/"+room+"/reactivate", url.Values{"next": {"/rooms?state=creating"}}, "/rooms?state=creating")
	if len(got) != 1 || !strings.HasPrefix(got[0], "error: Cannot reactivate a room in state creating") {
		t.Errorf("illegal reactivate: %q", got)
	}
	// next cannot send the browser elsewhere.
	resp, _ := postForm(t, srv, c, "/rooms/"+room+"/retry", url.Values{"next": {"//evil.example/x"}})
	if loc := resp.Header.Get("Location"); loc != "/rooms/"+room {
		t.Errorf("next=//evil.example: redirect to %q", loc)
	}

	// htmx: disable from the list swaps the row and the flashes.
	dir.activate(t, "Apollo")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rooms/"+room+"/disable", strings.NewReader("next=%2Frooms"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("htmx disable: status %d", resp.StatusCode)
	}
	// A <tr> parses only in a table, as htmx parses it (in a <template>).
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err = goquery.NewDocumentFromReader(strings.NewReader("<table><tbody>" + string(body) + "</tbody></table>"))
	if err != nil {
		t.Fatal(err)
	}
	row := doc.Find(tid("room-row-" + room))
	if s, _ := row.Attr("data-state"); s != "disabling" || row.Find(tid("room-state")).Text() != "Disabling" {
		t.Errorf("swapped row state %q %q", s, row.Find(tid("room-state")).Text())
	}
	if f := flashes(doc); len(f) != 1 || !strings.HasPrefix(f[0], "success: Room of Apollo is being disabled") {
		t.Errorf("htmx flashes %q", f)
	}
	// htmx, illegal: a 409 retargeted to the flash area.
	resp, doc = postForm(t, srv, c, "/rooms/"+room+"/reactivate", nil, "HX-Request", "true", "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("HX-Retarget") != "#flashes" || len(flashes(doc)) != 1 {
		t.Errorf("htmx illegal: status %d, retarget %q, flashes %q", resp.StatusCode, resp.Header.Get("HX-Retarget"), flashes(doc))
	}
	if resp, _ := postForm(t, srv, c, "/rooms/"+db.NewUUID()+"/retry", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown room: status %d", resp.StatusCode)
	}
}

func TestRoomDetailMembers(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	dir := newDirectory(t, srv)
	dir.user(t, "ann", true)
	dir.user(t, "ben", true)
	dir.user(t, "cat", true)
	dir.project(t, "Apollo", map[string]string{"ann": "admin", "ben": "manager", "cat": "member"}, true)

	resp, doc := getPage(t, srv, c, "/rooms/"+dir.rooms["Apollo"])
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	assertAccessible(t, doc)
	// The reference's rule: managers talk (0) like members (managers had 50 before).
	want := map[string]string{"ann": "50 (moderator)", "ben": "0", "cat": "0"}
	for user, pl := range want {
		row := doc.Find(tid("member-" + user))
		if got := strings.TrimSpace(row.Find(tid("member-power")).Text()); got != pl {
			t.Errorf("%s power level %q, want %q", user, got, pl)
		}
		if got := strings.TrimSpace(row.Find(tid("member-membership")).Text()); got != "Pending" {
			t.Errorf("%s membership %q before any sync", user, got)
		}
		if !strings.Contains(row.Text(), "@"+user+":example.org") {
			t.Errorf("%s row lacks the Matrix id: %q", user, row.Text())
		}
	}
	if got, want := textOf(doc, "power-rule"), "Project admins and the owners of the project's customer get power level 50, managers 0, members 0, staff who join through Join 50; the bot has 100."; got != want {
		t.Errorf("power rule %q, want %q", got, want)
	}
	if resp, _ := getPage(t, srv, c, "/rooms/not-a-uuid"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("bad uuid: %d", resp.StatusCode)
	}
}

func TestProjectsAndUsersPages(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	dir := newDirectory(t, srv)
	dir.user(t, "ann", true)
	dir.user(t, "zed", false)
	dir.project(t, "Apollo", map[string]string{"ann": "admin"}, true)
	skylab := dir.project(t, "Skylab", map[string]string{"ann": "member"}, false)

	_, doc := getPage(t, srv, c, "/projects")
	if got := textOf(doc, "project-row-"+skylab); !strings.Contains(got, "no room") || !strings.Contains(got, "1") {
		t.Errorf("Skylab row %q", got)
	}
	_, doc = getPage(t, srv, c, "/projects?search=apol")
	if n := doc.Find(`[data-testid^="project-row-"]`).Length(); n != 1 {
		t.Errorf("search: %d projects", n)
	}

	// Create the missing room from the project page (JavaScript off).
	_, doc = getPage(t, srv, c, "/projects/"+skylab)
	if doc.Find(tid("create-room")).Length() != 1 || textOf(doc, "project-member-ann") == "" {
		t.Fatal("project page: no create button or no member")
	}
	resp, _ := postForm(t, srv, c, "/projects/"+skylab+"/room", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/rooms/") {
		t.Fatalf("create room: %d to %q", resp.StatusCode, loc)
	}
	_, doc = getPage(t, srv, c, loc)
	if f := flashes(doc); len(f) != 1 || !strings.HasPrefix(f[0], "success: Room queued") || textOf(doc, "room-state") != "Creating" {
		t.Errorf("room page after creation: %q, %q", f, textOf(doc, "room-state"))
	}
	got := postRedirectFlash(t, srv, c, "/projects/"+skylab+"/room", nil, "/projects/"+skylab)
	if len(got) != 1 || got[0] != "error: This project already has a Matrix room." {
		t.Errorf("second room: %q", got)
	}

	// Users: Matrix ids, status filter, user page with the profile.
	_, doc = getPage(t, srv, c, "/users")
	if got := textOf(doc, "user-row-ann"); !strings.Contains(got, "@ann:example.org") || !strings.Contains(got, "Pending") {
		t.Errorf("ann row %q", got)
	}
	if got := textOf(doc, "user-row-staff"); !strings.Contains(got, "Staff") {
		t.Errorf("staff row %q", got)
	}
	_, doc = getPage(t, srv, c, "/users?status=inactive")
	if n := doc.Find(`[data-testid^="user-row-"]`).Length(); n != 1 || doc.Find(tid("user-row-zed")).Length() != 1 {
		t.Errorf("inactive filter: %d rows", n)
	}
	_, doc = getPage(t, srv, c, "/users?search="+url.QueryEscape("@ann:"))
	if n := doc.Find(`[data-testid^="user-row-"]`).Length(); n != 1 {
		t.Errorf("search by Matrix id: %d rows", n)
	}
	_, doc = getPage(t, srv, c, "/users/"+dir.users["ann"])
	if textOf(doc, "profile-mxid") != "@ann:example.org" || textOf(doc, "profile-provisioned") != "Not yet" {
		t.Errorf("ann's profile: %q %q", textOf(doc, "profile-mxid"), textOf(doc, "profile-provisioned"))
	}
	_, doc = getPage(t, srv, c, "/users/"+dir.users["zed"])
	if doc.Find(tid("no-profile")).Length() != 1 {
		t.Error("zed (no role) shows a profile")
	}
	if strings.Contains(doc.Text(), "$2a$") {
		t.Error("a password hash on the user page")
	}
	if resp, _ := getPage(t, srv, c, "/users/"+db.NewUUID()); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown user: %d", resp.StatusCode)
	}
}

func TestReprovisionPage(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	ctx := context.Background()
	dir := newDirectory(t, srv)
	dir.user(t, "ann", true)
	dir.project(t, "Apollo", map[string]string{"ann": "admin"}, true)
	dir.project(t, "Gemini", nil, true)
	dir.activate(t, "Apollo")

	_, doc := getPage(t, srv, c, "/reprovision")
	if doc.Find(tid("reprovision-disabled")).Length() != 1 || doc.Find(tid("reprovision-form")).Length() != 0 {
		t.Fatal("reprovision offered while Matrix chat is disabled")
	}
	got := postRedirectFlash(t, srv, c, "/reprovision", url.Values{"confirm_domain": {"example.org"}}, "/reprovision")
	if len(got) != 1 || !strings.HasPrefix(got[0], "error: Matrix chat is disabled") {
		t.Errorf("disabled: %q", got)
	}

	if err := srv.Web.Settings().Set(ctx, map[string]string{settings.Enabled.Key: "true", settings.HomeserverURL.Key: "http://new-hs:8008"}); err != nil {
		t.Fatal(err)
	}
	_, doc = getPage(t, srv, c, "/reprovision")
	if textOf(doc, "dry-run-rooms") != "1" || textOf(doc, "dry-run-users") != "0" {
		t.Errorf("dry run: rooms %q users %q", textOf(doc, "dry-run-rooms"), textOf(doc, "dry-run-users"))
	}
	assertAccessible(t, doc)
	in := doc.Find(tid("confirm-domain"))
	if exp, _ := in.Attr("data-expected"); exp != "example.org" {
		t.Errorf("data-expected %q", exp)
	}
	if f, _ := doc.Find(tid("reprovision-form")).Attr("data-confirm-input"); f != "confirm_domain" {
		t.Errorf("data-confirm-input %q", f)
	}
	if doc.Find(tid("reprovision-progress")).Length() != 0 {
		t.Error("progress shown before any reprovision")
	}

	// The server checks the typed domain itself (JavaScript may be off).
	for _, typed := range []string{"", "example.com", "EXAMPLE.ORG"} {
		resp, doc := postForm(t, srv, c, "/reprovision", url.Values{"confirm_domain": {typed}})
		if resp.StatusCode != http.StatusOK || textOf(doc, "error-confirm_domain") == "" {
			t.Errorf("typed %q: status %d, error %q", typed, resp.StatusCode, textOf(doc, "error-confirm_domain"))
		}
	}
	if r, _ := srv.Store.RoomByUUID(ctx, dir.rooms["Apollo"]); r.State != db.RoomActive {
		t.Fatalf("a refused confirmation reprovisioned: %s", r.State)
	}

	got = postRedirectFlash(t, srv, c, "/reprovision", url.Values{"confirm_domain": {" example.org "}}, "/reprovision")
	if len(got) != 1 || got[0] != "success: Reprovision started: 1 rooms and 0 accounts are being re-created on http://new-hs:8008." {
		t.Errorf("reprovision: %q", got)
	}
	r, _ := srv.Store.RoomByUUID(ctx, dir.rooms["Apollo"])
	if r.State != db.RoomCreating || r.RoomID != "" {
		t.Errorf("after reprovision: %s %q", r.State, r.RoomID)
	}
	_, doc = getPage(t, srv, c, "/reprovision")
	prog := doc.Find(tid("reprovision-progress"))
	if trig, _ := prog.Attr("hx-trigger"); trig != "every 2s" || textOf(doc, "progress-rooms") != "0 of 1 rooms re-created" {
		t.Errorf("progress: trigger %q, rooms %q", trig, textOf(doc, "progress-rooms"))
	}

	// The worker finishes: the polled fragment says so and stops polling.
	dir.activate(t, "Apollo")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/reprovision/progress", nil)
	req.Header.Set("HX-Request", "true")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	doc = parse(t, resp)
	prog = doc.Find(tid("reprovision-progress"))
	if _, polls := prog.Attr("hx-trigger"); polls || textOf(doc, "progress-rooms") != "1 of 1 rooms re-created" || !strings.Contains(prog.Text(), "Finished") {
		t.Errorf("finished progress: polls %v, rooms %q, text %q", polls, textOf(doc, "progress-rooms"), prog.Text())
	}
	if doc.Find("header").Length() != 0 {
		t.Error("the progress fragment is a whole page")
	}
}

// actionButtons lists the room page's action buttons (their data-testid, in order).
func actionButtons(doc *goquery.Document) []string {
	var out []string
	doc.Find(tid("room-actions") + ` button`).Each(func(_ int, s *goquery.Selection) {
		v, _ := s.Attr("data-testid")
		out = append(out, v)
	})
	return out
}

// TestRoomPageActions: the room page offers every action its state allows, as forms that
// work without JavaScript: sync members, join and leave (announced in the room), disable
// with the choice to delete the history exports, reactivate and delete the record.
func TestRoomPageActions(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	ctx := context.Background()
	dir := newDirectory(t, srv)
	dir.user(t, "ann", true)
	dir.project(t, "Apollo", map[string]string{"ann": "admin"}, true)
	room, pk := dir.rooms["Apollo"], dir.roomPK(t, "Apollo")
	page := "/rooms/" + room

	_, doc := getPage(t, srv, c, page)
	if got := actionButtons(doc); strings.Join(got, " ") != "room-sync-members room-retry room-delete" {
		t.Errorf("creating: buttons %v", got)
	}
	dir.activate(t, "Apollo")
	_, doc = getPage(t, srv, c, page)
	if got := actionButtons(doc); strings.Join(got, " ") != "room-sync-members room-join room-disable" {
		t.Errorf("active: buttons %v", got)
	}
	assertAccessible(t, doc)

	if got := postRedirectFlash(t, srv, c, page+"/sync-members", url.Values{"next": {page}}, page); len(got) != 1 || !strings.HasPrefix(got[0], "success: Members of the room of Apollo") {
		t.Errorf("sync members: %q", got)
	}
	// With htmx, the page's body is swapped: the Join button becomes Leave, the staff
	// member is listed, and the flash comes along.
	resp, doc := postForm(t, srv, c, page+"/join", url.Values{"next": {page}}, "HX-Request", "true", "HX-Target", "room-detail")
	if resp.StatusCode != http.StatusOK || doc.Find("#room-detail").Length() != 1 || doc.Find(tid("room-leave")).Length() != 1 ||
		doc.Find(tid("member-staff")).Length() != 1 {
		t.Errorf("htmx join: %d %s", resp.StatusCode, strings.Join(strings.Fields(doc.Text()), " "))
	}
	if f := flashes(doc); len(f) != 1 || !strings.HasPrefix(f[0], "success: You are joining the room of Apollo") {
		t.Errorf("htmx join flash: %q", f)
	}
	if hx, _ := doc.Find(tid("room-action-leave")).Attr("hx-target"); hx != "#room-detail" {
		t.Errorf("the page's forms swap %q", hx)
	}
	_, doc = getPage(t, srv, c, page)
	if got := actionButtons(doc); strings.Join(got, " ") != "room-sync-members room-leave room-disable" {
		t.Errorf("active, joined: buttons %v", got)
	}
	staffRow := doc.Find(tid("member-staff"))
	if strings.TrimSpace(staffRow.Find(tid("member-power")).Text()) != "50 (moderator)" || !strings.Contains(staffRow.Text(), "Staff") {
		t.Errorf("the staff member's row: %q", strings.Join(strings.Fields(staffRow.Text()), " "))
	}
	got := postRedirectFlash(t, srv, c, page+"/leave", url.Values{"next": {page}}, page)
	if len(got) != 1 || !strings.HasPrefix(got[0], "success: You are leaving the room of Apollo") {
		t.Errorf("leave: %q", got)
	}
	got = postRedirectFlash(t, srv, c, page+"/leave", url.Values{"next": {page}}, page)
	if len(got) != 1 || !strings.HasPrefix(got[0], "error: You have not joined this room") {
		t.Errorf("leave again: %q", got)
	}
	ms, _ := srv.Store.RoomOutbox(ctx, pk, 10)
	if len(ms) != 2 || ms[1].Body != "Staff joined the room." || ms[0].Body != "Staff left the room." {
		t.Errorf("notices: %+v", ms)
	}

	// Disable, deleting the history exports.
	if doc.Find(tid("room-delete-history")).Length() != 1 {
		t.Errorf("the disable form has no delete-history choice")
	}
	postRedirectFlash(t, srv, c, page+"/disable", url.Values{"next": {page}, "delete_history": {"true"}}, page)
	if r, _ := srv.Store.RoomByUUID(ctx, room); r.State != db.RoomDisabling || !r.DeleteHistory {
		t.Errorf("after disable: %s, delete history %v", r.State, r.DeleteHistory)
	}
	_, doc = getPage(t, srv, c, page)
	if got := actionButtons(doc); strings.Join(got, " ") != "room-retry" {
		t.Errorf("disabling: buttons %v", got)
	}
	if _, err := srv.Store.FinishRoomDisable(ctx, pk); err != nil {
		t.Fatal(err)
	}
	_, doc = getPage(t, srv, c, page)
	if got := actionButtons(doc); strings.Join(got, " ") != "room-reactivate room-delete" {
		t.Errorf("archived: buttons %v", got)
	}
	// The record goes; its page with it, so back to the list (htmx is sent there).
	_, other := dir.project(t, "Gemini", nil, true), dir.rooms["Gemini"]
	resp, _ = postForm(t, srv, c, "/rooms/"+other+"/delete", url.Values{"next": {"/rooms/" + other}}, "HX-Request", "true", "HX-Target", "room-detail")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("HX-Redirect") != "/rooms" {
		t.Errorf("htmx delete: %d, HX-Redirect %q", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
	if _, doc := getPage(t, srv, c, "/rooms"); len(flashes(doc)) != 1 || !strings.Contains(flashes(doc)[0], "record of Gemini was deleted") {
		t.Errorf("the list after the htmx delete: flashes %q", flashes(doc))
	}
	got = postRedirectFlash(t, srv, c, page+"/delete", url.Values{"next": {page}}, "/rooms")
	if len(got) != 1 || !strings.HasPrefix(got[0], "success: The room record of Apollo was deleted") {
		t.Errorf("delete: %q", got)
	}
	if resp, _ := getPage(t, srv, c, page); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleted room's page: %d", resp.StatusCode)
	}
	if resp, _ := postForm(t, srv, c, page+"/delete", url.Values{"next": {page}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("delete again: %d", resp.StatusCode)
	}
}
