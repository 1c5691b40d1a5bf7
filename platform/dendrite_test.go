package platform_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/internal/fakewaldur"
	"matrixas/internal/testserver"
	"matrixas/matrix"
)

// waitUntil polls cond every 100 ms until it holds or d passes, then fails with what it
// last reported.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, d, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPlatformSyncOnDendrite: a platform of 2 customers, 3 projects and 6 users is
// mirrored into rooms on a real Dendrite with the right members and power levels (role
// holders and the customer's owners; admins and owners 50, managers and members 0); the
// platform's events, posted by its web hook to the receiver, then drive the rooms: a
// role_revoked event kicks the member, a deactivated user is kicked, a project removed
// on the platform has its room archived; and a listing that fails half-way removes
// nobody.
func TestPlatformSyncOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	ctx := context.Background()
	f := fakewaldur.New(t)
	// The world is older than the incremental runs' safety margin, so that they list
	// only what the test changes (the failing-listing step relies on it).
	f.Advance(-time.Hour)
	e := &env{t: t, ctx: ctx, fake: f}
	w := e.seedWorld()
	// Enough grants for a second page of role assignments: other roles (not mirrored)
	// of inactive users, who get no Matrix account.
	for i := range 320 {
		u := f.AddUser(fakewaldur.User{Username: fmt.Sprintf("support%03d", i), Active: false})
		f.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: "CUSTOMER.SUPPORT", ScopeType: "customer", ScopeUUID: w.c2.UUID})
	}
	f.Advance(time.Hour)

	const secret = "dendrite-test-events-secret-42"
	env := testserver.PlatformEnv(f, secret)
	for k, v := range map[string]string{"AUTO_CREATE_ROOMS": "true", "PROVISION_BACKOFF": "1s", "PROVISION_MAX_BACKOFF": "2s", "PROVISION_INTERVAL": "1s"} {
		env[k] = v
	}
	ts := testserver.New(t, testserver.Options{Env: env})
	first := ts.WaitSynced(t, 0)
	if !first.OK || first.Counts.Projects.Created != 3 || first.Counts.Customers.Created != 2 {
		t.Fatalf("first run: %+v", first)
	}

	// The appservice, set up the way setup does it, on a Dendrite that loaded its registration.
	ts.ConnectDendrite(t)
	ms, err := ts.Web.Settings().Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bot, err := matrix.Client(ms, matrix.HTTPClient(3*time.Second, 10*time.Second), "")
	if err != nil {
		t.Fatal(err)
	}
	ts.Web.Platform() // the sync is the server's; the worker follows what it wrote

	roomOf := func(projectUUID string) *db.Room {
		p, err := ts.Store.ProjectByUUID(ctx, projectUUID)
		if err != nil {
			t.Fatalf("project %s: %v", projectUUID, err)
		}
		if p.RoomUUID == "" {
			t.Fatalf("project %s has no room (AUTO_CREATE_ROOMS)", p.Name)
		}
		r, err := ts.Store.RoomByUUID(ctx, p.RoomUUID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	botID := ms.BotUserID().String()
	mx := func(name string) string { return "@" + name + ":localhost" }
	// expect waits until the project's room is active with exactly these members
	// (besides the bot) and these power levels above 0.
	expect := func(what, projectUUID string, members []string, levels map[string]int) {
		t.Helper()
		want := []string{botID}
		for _, m := range members {
			want = append(want, mx(m))
		}
		slices.Sort(want)
		wantPL := map[string]int{botID: db.BotPowerLevel}
		for m, l := range levels {
			wantPL[mx(m)] = l
		}
		waitUntil(t, what, 90*time.Second, func() (bool, string) {
			r := roomOf(projectUUID)
			if r.State != db.RoomActive {
				return false, fmt.Sprintf("room %s is %s %s", r.RoomName, r.State, r.ErrorMessage)
			}
			resp, err := bot.JoinedMembers(ctx, r.RoomID)
			if err != nil {
				return false, err.Error()
			}
			var got []string
			for u := range resp.Joined {
				got = append(got, u.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return false, fmt.Sprintf("room %s joined %v, want %v", r.RoomName, got, want)
			}
			var pl event.PowerLevelsEventContent
			if err := bot.StateEvent(ctx, r.RoomID, event.StatePowerLevels, "", &pl); err != nil {
				return false, err.Error()
			}
			gotPL := map[string]int{}
			for u, v := range pl.Users {
				gotPL[u.String()] = v
			}
			if fmt.Sprint(gotPL) != fmt.Sprint(wantPL) {
				return false, fmt.Sprintf("room %s power levels %v, want %v", r.RoomName, gotPL, wantPL)
			}
			return true, ""
		})
	}

	// 1. Rooms with the right members and power levels: olga owns Acme (Apollo and
	// Borealis); ivy is inactive; adam's expired grant on Cygnus does not count.
	expect("Apollo's room", w.p1.UUID, []string{"adam", "max", "mia", "olga"}, map[string]int{"adam": 50, "olga": 50})
	expect("Borealis's room", w.p2.UUID, []string{"max", "nils", "olga"}, map[string]int{"max": 50, "olga": 50})
	expect("Cygnus's room", w.p3.UUID, []string{"nils"}, nil)

	// The platform posts its events to the receiver from now on.
	sync := ts.Web.Platform()
	hook, existing, err := sync.RegisterHook(ctx, ts.URL+"/api/waldur/events/"+secret+"/")
	if err != nil || existing || hook.ContentType != "json" {
		t.Fatalf("register the hook: %+v %v %v", hook, existing, err)
	}

	// 2. A role_revoked event: max loses Apollo and is kicked; the room is told.
	f.Revoke(w.u[3].UUID, "PROJECT.MEMBER", w.p1.UUID)
	expect("max kicked from Apollo", w.p1.UUID, []string{"adam", "mia", "olga"}, map[string]int{"adam": 50, "olga": 50})
	if d := f.Deliveries(); len(d) == 0 || d[len(d)-1].Status != http.StatusAccepted {
		t.Errorf("deliveries %+v", d)
	}
	msgs, err := ts.Store.RoomOutbox(ctx, roomOf(w.p1.UUID).ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(msgs, func(m *db.OutboxMessage) bool { return m.Body == "max Tester has lost the Project Member role." }) {
		t.Errorf("no notification of the revocation in Apollo's outbox: %+v", msgs)
	}

	// 3. A user deactivated on the platform is kicked from every room.
	f.UpdateUser(w.u[4].UUID, func(u *fakewaldur.User) { u.Active = false })
	expect("nils kicked from Borealis", w.p2.UUID, []string{"max", "olga"}, map[string]int{"max": 50, "olga": 50})
	expect("nils kicked from Cygnus", w.p3.UUID, nil, nil)

	// 4. A listing that fails half-way removes nobody: adam's role is revoked on the
	// platform without an event, and the roles' second page fails after the retries.
	f.SetDelivery(false)
	f.Revoke(w.u[1].UUID, "PROJECT.ADMIN", w.p1.UUID)
	f.Inject(fakewaldur.Fault{Path: "/api/user-permissions/", Page: 2, Status: http.StatusBadGateway, Times: 4})
	last, err := ts.Store.LastFinishedSyncRun(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if err := sync.Start(true); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // an incremental run is under way
	}
	failed := ts.WaitSynced(t, last.ID)
	for failed.Kind != db.SyncFull { // an incremental run finished first
		failed = ts.WaitSynced(t, failed.ID)
	}
	if failed.OK || !strings.Contains(failed.Error, "platform unavailable") {
		t.Fatalf("the run with a failing listing: %+v", failed)
	}
	time.Sleep(2 * time.Second) // a member sync would have run by now (PROVISION_INTERVAL 1s)
	expect("adam still in Apollo", w.p1.UUID, []string{"adam", "mia", "olga"}, map[string]int{"adam": 50, "olga": 50})
	f.SetDelivery(true)

	// 5. A project removed on the platform: its room is disabled with the project
	// termination notice and archived (the Matrix room stays), and then the project and
	// the room's record go.
	p2room := roomOf(w.p2.UUID)
	t.Run("project removed: room archived", func(t *testing.T) {
		f.RemoveProject(w.p2.UUID)
		deadline := time.Now().Add(90 * time.Second)
		for {
			r, err := ts.Store.RoomByUUID(ctx, p2room.UUID)
			_, perr := ts.Store.ProjectByUUID(ctx, w.p2.UUID)
			if errors.Is(err, db.ErrNotFound) && errors.Is(perr, db.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Borealis's room was not archived and its project deleted: %+v %v %v", r, err, perr)
			}
			time.Sleep(200 * time.Millisecond)
		}
		joined, err := bot.JoinedMembers(ctx, p2room.RoomID)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := joined.Joined[id.UserID(mx("max"))]; ok {
			t.Error("max is still in the archived room")
		}
		var history *mautrix.RespMessages
		if history, err = bot.Messages(ctx, p2room.RoomID, "", "", mautrix.DirectionBackward, nil, 50); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range history.Chunk {
			_ = ev.Content.ParseRaw(ev.Type)
			if m := ev.Content.AsMessage(); m != nil && m.Body == "Chat room was deactivated due to project termination" {
				found = true
			}
		}
		if !found {
			t.Error("the archived room lacks the project termination notice")
		}
	})
}
