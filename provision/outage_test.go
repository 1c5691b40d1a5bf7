package provision_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/internal/dendritetest"
)

// newProjectRoom creates a project with the given members (all "member") and its room.
func (a *appservice) newProjectRoom(t *testing.T, name string, members ...apiUser) apiRoom {
	t.Helper()
	var p struct {
		UUID string `json:"uuid"`
	}
	a.call(t, http.MethodPost, "/api/projects/", map[string]string{"name": name}, &p, http.StatusCreated)
	var body []map[string]string
	for _, u := range members {
		body = append(body, map[string]string{"user": u.UUID, "role": "member"})
	}
	if len(body) > 0 {
		a.call(t, http.MethodPut, "/api/projects/"+p.UUID+"/members/", body, nil, http.StatusOK)
	}
	var r apiRoom
	a.call(t, http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": p.UUID}, &r, http.StatusCreated)
	return r
}

// inState is a waitFor condition on one room's state.
func (a *appservice) inState(t *testing.T, uuid, state string) func() (bool, string) {
	return func() (bool, string) {
		r := a.room(t, uuid)
		return r.State == state, fmt.Sprintf("%s, attempts %d, error %q", r.State, r.Attempts, r.ErrorMessage)
	}
}

// TestHomeserverOutage: while the homeserver is down rooms back off and recover when it
// returns; a room that keeps failing ends in error with the reason, stays there, and
// retry/ brings it back.
func TestHomeserverOutage(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	env := maps.Clone(fastEnv)
	env["PROVISION_MAX_ATTEMPTS"] = "4"
	a := newAppservice(t, env)
	u := a.createUser(t, "outage")
	waitFor(t, "user provisioned", 30*time.Second, pendingProfiles(t, a))

	a.hs.Stop()
	ra := a.newProjectRoom(t, "Outage A", u)
	waitFor(t, "room A failing and backing off", 30*time.Second, func() (bool, string) {
		r := a.room(t, ra.UUID)
		return r.State == "creating" && r.Attempts >= 2 && r.ErrorMessage != "", fmt.Sprintf("%+v", r)
	})
	if err := a.hs.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "room A active once the homeserver is back", 30*time.Second, a.inState(t, ra.UUID, "active"))
	if r := a.room(t, ra.UUID); r.ErrorMessage != "" || r.Attempts != 0 {
		t.Errorf("recovered room keeps its failure: %+v", r)
	}

	a.hs.Stop()
	rb := a.newProjectRoom(t, "Outage B", u)
	waitFor(t, "room B gives up", 30*time.Second, a.inState(t, rb.UUID, "error"))
	r := a.room(t, rb.UUID)
	if r.Attempts != 4 || !strings.Contains(r.ErrorMessage, "connection refused") {
		t.Errorf("errored room: attempts %d, message %q", r.Attempts, r.ErrorMessage)
	}
	if err := a.hs.Restart(); err != nil {
		t.Fatal(err)
	}
	// The worker does not retry an errored room by itself: staff do.
	a.call(t, http.MethodGet, "/api/matrix-rooms/"+rb.UUID+"/", nil, &r, http.StatusOK)
	if r.State != "error" {
		t.Fatalf("errored room moved on its own to %s", r.State)
	}
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+rb.UUID+"/retry/", nil, &r, http.StatusOK)
	if r.State != "creating" || r.ErrorMessage != "" {
		t.Errorf("after retry: %+v", r)
	}
	waitFor(t, "room B active after retry", 30*time.Second, a.inState(t, rb.UUID, "active"))
	r = a.room(t, rb.UUID)
	if got := joined(t, a.bot(t, a.hs), r.RoomID); !sameStrings(got, []string{mxid("outage"), a.ms.BotUserID().String()}) {
		t.Errorf("room B members %v", got)
	}
}

// TestDisableAndReactivate: disabling kicks everyone with a reason and the bot leaves;
// reactivating gets the members back into a working room (a new one: nobody is left in
// the old invite-only room to let the bot in).
func TestDisableAndReactivate(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	ctx := context.Background()
	a := newAppservice(t, fastEnv)
	u1, u2 := a.createUser(t, "dis1"), a.createUser(t, "dis2")
	r := a.newProjectRoom(t, "Disable me", u1, u2)
	waitFor(t, "room active", 30*time.Second, a.inState(t, r.UUID, "active"))
	r = a.room(t, r.UUID)
	old := id.RoomID(r.RoomID)
	bot := a.bot(t, a.hs)

	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", nil, &r, http.StatusOK)
	if r.State != "disabling" {
		t.Fatalf("after disable: %s", r.State)
	}
	waitFor(t, "room archived", 30*time.Second, a.inState(t, r.UUID, "archived"))
	for _, u := range []string{"dis1", "dis2"} {
		var m event.MemberEventContent
		// The bot left, so read the member state as the user, who can see their own.
		if err := a.as(t, a.hs, id.UserID(mxid(u))).StateEvent(ctx, old, event.StateMember, mxid(u), &m); err != nil {
			t.Fatalf("member state of %s: %v", u, err)
		}
		if m.Membership != event.MembershipLeave || m.Reason == "" {
			t.Errorf("%s after disable: %s %q", u, m.Membership, m.Reason)
		}
	}
	rooms, err := bot.JoinedRooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(rooms.JoinedRooms, old) {
		t.Error("the bot is still in the disabled room")
	}

	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/reactivate/", nil, &r, http.StatusOK)
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/reactivate/", nil, nil, http.StatusConflict)
	want := []string{a.ms.BotUserID().String(), mxid("dis1"), mxid("dis2")}
	slices.Sort(want)
	waitFor(t, "members back in a working room", 30*time.Second, func() (bool, string) {
		r = a.room(t, r.UUID)
		if r.State != "active" || r.RoomID == "" {
			return false, fmt.Sprintf("%+v", r)
		}
		resp, err := bot.JoinedMembers(ctx, id.RoomID(r.RoomID))
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for u := range resp.Joined {
			got = append(got, u.String())
		}
		slices.Sort(got)
		return sameStrings(got, want), fmt.Sprintf("room %s joined %v", r.RoomID, got)
	})
	if r.RoomID == old.String() || !strings.Contains(r.Notice, old.String()) {
		t.Errorf("reactivated room: id %s (old %s), notice %q", r.RoomID, old, r.Notice)
	}
	if r.RoomAlias == "" {
		t.Errorf("reactivated room lost its alias: %+v", r)
	}
	resolved, err := bot.ResolveAlias(ctx, id.RoomAlias(r.RoomAlias))
	if err != nil || resolved.RoomID.String() != r.RoomID {
		t.Errorf("alias %s resolves to %v (%v), want %s", r.RoomAlias, resolved, err, r.RoomID)
	}
}
