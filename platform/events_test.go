package platform_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/fakewaldur"
	"matrixas/waldur"
)

// activeRoom gives a project an active room (as the worker would leave it) and returns it.
func (e *env) activeRoom(projectUUID string) *db.Room {
	e.t.Helper()
	p, err := e.store.ProjectByUUID(e.ctx, projectUUID)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.store.CreateRoom(e.ctx, p.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.SetRoomHomeserverID(e.ctx, r.ID, id.RoomID("!"+p.UUID[:8]+":example.org"), "", ""); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.FinishRoomSync(e.ctx, r.ID, p.Name); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// notices returns a room's queued notifications, oldest first.
func (e *env) notices(roomPK int64) []string {
	e.t.Helper()
	msgs, err := e.store.RoomOutbox(e.ctx, roomPK, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := len(msgs) - 1; i >= 0; i-- {
		out = append(out, msgs[i].Body)
	}
	return out
}

// deliver hands the fake's events since mark to the receiver, as the platform posts
// them (enc), and applies them; it returns the new mark.
func (e *env) deliver(mark int, enc fakewaldur.Encoding) int {
	e.t.Helper()
	evs := e.fake.Events()
	for _, ev := range evs[mark:] {
		ct, body := ev.Body(enc)
		if err := e.sync.Receive(e.ctx, ct, body); err != nil {
			e.t.Fatalf("receive %s: %v", ev.Type, err)
		}
	}
	e.sync.ApplyEvents(e.ctx)
	return len(evs)
}

// TestRoleEventsReReadTheScope: role_granted and role_revoked events make the project's
// roles the platform's, announced in the room; delivering them again, or in the wrong
// order, changes nothing more.
func TestRoleEventsReReadTheScope(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	room := e.activeRoom(w.p1.UUID)
	mark := len(e.fake.Events())
	e.fake.Revoke(w.u[3].UUID, "PROJECT.MEMBER", w.p1.UUID)
	e.fake.Grant(fakewaldur.Permission{UserUUID: w.u[4].UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: w.p1.UUID})
	evs := e.fake.Events()[mark:]
	// Delivered newest first: re-reading makes the order harmless.
	for _, ev := range []fakewaldur.Event{evs[1], evs[0], evs[1]} {
		ct, body := ev.Body(fakewaldur.JSON)
		if err := e.sync.Receive(e.ctx, ct, body); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.sync.ApplyEvents(e.ctx); n != 3 {
		t.Errorf("%d events finished, want 3", n)
	}
	if got := e.roles(w.p1.UUID); fmt.Sprint(got) != "[adam:PROJECT.ADMIN mia:PROJECT.MANAGER nils:PROJECT.ADMIN]" {
		t.Errorf("Apollo's roles %v", got)
	}
	want := []string{"max Tester has lost the Project Member role.", "nils Tester has been granted the Project Admin role."}
	if got := e.notices(room.ID); !slices.Equal(got, want) {
		t.Errorf("notices %q, want %q", got, want)
	}
	st, err := e.store.PlatformEventStats(e.ctx)
	if err != nil || st.Received != 3 || st.Pending != 0 {
		t.Errorf("stats %+v, %v", st, err)
	}
}

// TestOwnerEvents: a customer role event re-reads the customer's owners.
func TestOwnerEvents(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	mark := len(e.fake.Events())
	e.fake.Grant(fakewaldur.Permission{UserUUID: w.u[2].UUID, Role: "CUSTOMER.OWNER", ScopeType: "customer", ScopeUUID: w.c1.UUID})
	e.fake.Revoke(w.u[0].UUID, "CUSTOMER.OWNER", w.c1.UUID)
	e.deliver(mark, fakewaldur.JSON)
	if got := e.owners(w.c1.UUID); fmt.Sprint(got) != "[mia]" {
		t.Errorf("Acme's owners %v", got)
	}
}

// TestDirectoryEvents: project, customer and user events re-read what they name: a new
// project (with its new customer), a renamed one, a deactivated user, a deleted project.
func TestDirectoryEvents(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	mark := len(e.fake.Events())
	c3 := e.fake.AddCustomer(fakewaldur.Customer{Name: "Initech", Abbreviation: "INI"})
	p4 := e.fake.AddProject(fakewaldur.Project{Name: "Draco", CustomerUUID: c3.UUID})
	e.fake.UpdateProject(w.p2.UUID, func(p *fakewaldur.Project) { p.Name = "Borealis II" })
	e.fake.UpdateUser(w.u[4].UUID, func(u *fakewaldur.User) { u.Active = false })
	e.fake.RemoveProject(w.p3.UUID)
	newbie := e.fake.AddUser(fakewaldur.User{Username: "newbie", Active: true})
	e.fake.Grant(fakewaldur.Permission{UserUUID: newbie.UUID, Role: "PROJECT.MEMBER", ScopeType: "project", ScopeUUID: p4.UUID})
	e.deliver(mark, fakewaldur.JSON)
	p, err := e.store.ProjectByUUID(e.ctx, p4.UUID)
	if err != nil || p.CustomerName != "Initech" || p.Source != db.SourceWaldur {
		t.Errorf("Draco: %+v, %v", p, err)
	}
	if p, _ := e.store.ProjectByUUID(e.ctx, w.p2.UUID); p.Name != "Borealis II" {
		t.Errorf("Borealis is %q", p.Name)
	}
	if u, _ := e.store.UserByUUID(e.ctx, w.u[4].UUID); u.IsActive {
		t.Error("nils is still active")
	}
	if _, err := e.store.ProjectByUUID(e.ctx, w.p3.UUID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("Cygnus: %v", err)
	}
	if got := e.roles(p4.UUID); fmt.Sprint(got) != "[newbie:PROJECT.MEMBER]" {
		t.Errorf("Draco's roles %v", got)
	}
}

// TestFormEventsWithoutValues: the platform's own form encoding drops the context's
// values; such an event names nothing, so it asks for an incremental run instead.
func TestFormEventsWithoutValues(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	mark := len(e.fake.Events())
	e.fake.Revoke(w.u[1].UUID, "PROJECT.ADMIN", w.p1.UUID)
	e.deliver(mark, fakewaldur.Form)
	evs, err := e.store.RecentPlatformEvents(e.ctx, 1)
	if err != nil || len(evs) != 1 {
		t.Fatal(evs, err)
	}
	if evs[0].State != db.EventApplied || evs[0].Error != "no context in the event: incremental run requested" {
		t.Errorf("event %s: %q", evs[0].State, evs[0].Error)
	}
	// A form whose context is JSON (a relay) is read like JSON.
	mark = len(e.fake.Events())
	e.fake.Revoke(w.u[2].UUID, "PROJECT.MANAGER", w.p1.UUID)
	e.deliver(mark, fakewaldur.FormJSONContext)
	if got := e.roles(w.p1.UUID); fmt.Sprint(got) != "[max:PROJECT.MEMBER]" {
		t.Errorf("Apollo's roles %v", got)
	}
}

// TestReceiveRefusesWhatIsNotAnEvent: a body that is not an event is refused and stored
// nowhere; an event type the sync does not handle is counted and ignored.
func TestReceiveRefusesWhatIsNotAnEvent(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{`[1, 2]`, `{"message": "no type"}`, `not json`} {
		if err := e.sync.Receive(e.ctx, "application/json", []byte(body)); !errors.Is(err, waldur.ErrBadEvent) {
			t.Errorf("%s: %v, want ErrBadEvent", body, err)
		}
	}
	if err := e.sync.Receive(e.ctx, "application/json", []byte(`{"event_type": "resource_creation_succeeded", "context": {}}`)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.store.PlatformEventStats(e.ctx)
	if st.Received != 1 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
	evs, _ := e.store.RecentPlatformEvents(e.ctx, 5)
	if len(evs) != 1 || evs[0].State != db.EventIgnored {
		t.Errorf("events %+v", evs)
	}
}

// TestEventsWaitForThePlatform: an event that cannot be applied because the platform
// does not answer stays pending, to be retried.
func TestEventsWaitForThePlatform(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	mark := len(e.fake.Events())
	e.fake.Revoke(w.u[1].UUID, "PROJECT.ADMIN", w.p1.UUID)
	e.fake.ExpireToken()
	e.deliver(mark, fakewaldur.JSON)
	evs, _ := e.store.RecentPlatformEvents(e.ctx, 1)
	if evs[0].State != db.EventPending || evs[0].Attempts != 1 || evs[0].NextAttemptAt.IsZero() {
		t.Errorf("event %+v", evs[0])
	}
	if got := e.roles(w.p1.UUID); len(got) != 3 {
		t.Errorf("roles changed without the platform: %v", got)
	}
}

// TestOrderEventsAnnounceStateChangesOnce: an order's approval and completion are
// announced in its project's room, once each however often the events come; creation
// is not announced.
func TestOrderEventsAnnounceStateChangesOnce(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	room := e.activeRoom(w.p1.UUID)
	mark := len(e.fake.Events())
	o := e.fake.AddOrder(fakewaldur.Order{State: "pending-consumer", Type: "Create", ResourceName: "vm-1", OfferingName: "Cloud VM",
		ProjectUUID: w.p1.UUID, CreatedByUsername: "adam", CreatedByFullName: "Adam Tester"})
	e.fake.SetOrderState(o.UUID, "executing")
	mark2 := e.deliver(mark, fakewaldur.JSON)
	e.deliver(mark, fakewaldur.JSON) // again
	e.fake.SetOrderState(o.UUID, "done")
	e.deliver(mark2, fakewaldur.JSON)
	want := []string{"Order approved: Create of Cloud VM (requested by Adam Tester).", "Order completed: Create of Cloud VM (requested by Adam Tester)."}
	if got := e.notices(room.ID); !slices.Equal(got, want) {
		t.Errorf("notices %q, want %q", got, want)
	}
}
