package provision_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/dendritetest"
)

// TestRoomsOnDendrite drives the whole flow against a real Dendrite, in steps that build
// on each other: 20 projects get rooms whose members and power levels follow the roles;
// role changes, removals, deactivations and a member leaving on their own propagate; and
// a reprovision moves everything onto a second, fresh Dendrite.
func TestRoomsOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	a := newAppservice(t, fastEnv)
	ctx := context.Background()
	t.Cleanup(func() {
		if os.Getenv("DUMPLOGS") != "" {
			for _, l := range strings.Split(a.ts.Logs.String(), "\n") {
				if strings.Contains(l, "component=provision") {
					t.Log(l)
				}
			}
		}
	})

	const nProjects, nUsers = 20, 30
	users := make([]apiUser, nUsers)
	for i := range users {
		users[i] = a.createUser(t, fmt.Sprintf("user%02d", i))
	}
	roles := []string{"admin", "manager", "member", "member", "member"}
	type project struct {
		uuid    string
		members map[string]string // username -> role
		room    string            // room uuid
	}
	projects := make([]*project, nProjects)
	for i := range projects {
		var p struct {
			UUID string `json:"uuid"`
		}
		a.call(t, http.MethodPost, "/api/projects/", map[string]string{"name": fmt.Sprintf("Project %02d", i)}, &p, http.StatusCreated)
		pr := &project{uuid: p.UUID, members: map[string]string{}}
		var body []map[string]string
		for j := range 3 + i%3 { // 3 to 5 members
			u := users[(i*7+j*3)%nUsers]
			role := roles[j]
			pr.members[u.Username] = role
			body = append(body, map[string]string{"user": u.UUID, "role": role})
		}
		a.call(t, http.MethodPut, "/api/projects/"+p.UUID+"/members/", body, nil, http.StatusOK)
		var r apiRoom
		a.call(t, http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": p.UUID}, &r, http.StatusCreated)
		pr.room = r.UUID
		projects[i] = pr
	}
	bot := a.bot(t, a.hs)
	botID := a.ms.BotUserID().String()

	// checkRoom verifies a room on the homeserver against the project's roles.
	checkRoom := func(t *testing.T, c interface{}, p *project) (bool, string) {
		r := a.room(t, p.room)
		if r.State != "active" {
			return false, "state " + r.State + " " + r.ErrorMessage
		}
		want := []string{botID}
		wantPL := map[string]int{botID: 100}
		for name, role := range p.members {
			want = append(want, mxid(name))
			if db.RolePowerLevel(role) > 0 { // the one rule: admins 50, managers and members 0
				wantPL[mxid(name)] = db.RolePowerLevel(role)
			}
		}
		slices.Sort(want)
		got := joined(t, bot, r.RoomID)
		if !sameStrings(got, want) {
			return false, fmt.Sprintf("room %s joined %v, want %v", r.RoomID, got, want)
		}
		pl := powerUsers(t, bot, r.RoomID)
		if fmt.Sprint(pl) != fmt.Sprint(wantPL) {
			return false, fmt.Sprintf("room %s power levels %v, want %v", r.RoomID, pl, wantPL)
		}
		const rules = "invite=100 kick=100 ban=100 redact=100 state_default=100 events_default=0 name=100 power_levels=100"
		if got := powerRules(t, bot, r.RoomID); got != rules {
			return false, fmt.Sprintf("room %s power rules %s, want %s", r.RoomID, got, rules)
		}
		return true, ""
	}

	t.Run("rooms follow roles", func(t *testing.T) {
		waitFor(t, "every room active", 60*time.Second, allActive(t, a.ts, nProjects))
		seen := map[string]bool{}
		for _, p := range projects {
			ok, why := checkRoom(t, nil, p)
			if !ok {
				t.Fatal(why)
			}
			r := a.room(t, p.room)
			if seen[r.RoomID] {
				t.Fatalf("room id %s used twice", r.RoomID)
			}
			seen[r.RoomID] = true
			if r.RoomAlias != "#waldur-"+p.uuid+":localhost" {
				t.Errorf("alias %q", r.RoomAlias)
			}
			// Private, invite-only, shared history, not federated.
			var jr event.JoinRulesEventContent
			if err := bot.StateEvent(ctx, id.RoomID(r.RoomID), event.StateJoinRules, "", &jr); err != nil || jr.JoinRule != event.JoinRuleInvite {
				t.Errorf("join rule %q, %v", jr.JoinRule, err)
			}
			var hv event.HistoryVisibilityEventContent
			if err := bot.StateEvent(ctx, id.RoomID(r.RoomID), event.StateHistoryVisibility, "", &hv); err != nil || hv.HistoryVisibility != event.HistoryVisibilityShared {
				t.Errorf("history visibility %q, %v", hv.HistoryVisibility, err)
			}
			var create map[string]any
			if err := bot.StateEvent(ctx, id.RoomID(r.RoomID), event.StateCreate, "", &create); err != nil || create["m.federate"] != false {
				t.Errorf("create event %v, %v", create, err)
			}
			var name event.RoomNameEventContent
			bot.StateEvent(ctx, id.RoomID(r.RoomID), event.StateRoomName, "", &name)
			if name.Name == "" {
				t.Errorf("room %s has no name", r.RoomID)
			}
		}
		var profiles []apiProfile
		a.call(t, http.MethodGet, "/api/matrix-user-profiles/?page_size=500", nil, &profiles, http.StatusOK)
		for _, p := range profiles {
			if p.Username == "user00" && p.MatrixUserID != "@user00:localhost" {
				t.Errorf("profile %+v", p)
			}
		}
	})

	t.Run("changes propagate", func(t *testing.T) {
		p := projects[2] // five members: admin, manager and three members
		var promote, remove string
		for name, role := range p.members {
			switch {
			case role == "member" && promote == "":
				promote = name
			case role == "member" && remove == "":
				remove = name
			}
		}
		uuidOf := func(name string) string {
			for _, u := range users {
				if u.Username == name {
					return u.UUID
				}
			}
			t.Fatalf("no user %s", name)
			return ""
		}
		newcomer := a.createUser(t, "newcomer")
		a.call(t, http.MethodPost, "/api/projects/"+p.uuid+"/members/", map[string]string{"user": uuidOf(promote), "role": "admin"}, nil, http.StatusOK)
		a.call(t, http.MethodPost, "/api/projects/"+p.uuid+"/members/", map[string]string{"user": newcomer.UUID, "role": "member"}, nil, http.StatusCreated)
		if resp, _ := a.ts.Request(t, http.MethodDelete, "/api/projects/"+p.uuid+"/members/"+uuidOf(remove)+"/", a.ts.StaffToken, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("remove member: %d", resp.StatusCode)
		}
		p.members[promote] = "admin"
		p.members["newcomer"] = "member"
		delete(p.members, remove)
		waitFor(t, "role changes on the homeserver", 30*time.Second, func() (bool, string) { return checkRoom(t, nil, p) })

		// The room's name follows the project's.
		a.call(t, http.MethodPatch, "/api/projects/"+p.uuid+"/", map[string]string{"name": "Renamed project"}, nil, http.StatusOK)
		waitFor(t, "room renamed", 30*time.Second, func() (bool, string) {
			var name event.RoomNameEventContent
			err := bot.StateEvent(ctx, id.RoomID(a.room(t, p.room).RoomID), event.StateRoomName, "", &name)
			return err == nil && name.Name == "Renamed project", fmt.Sprintf("name %q, %v", name.Name, err)
		})

		// The removed member was kicked with the reason.
		var m event.MemberEventContent
		roomID := a.room(t, p.room).RoomID
		if err := bot.StateEvent(ctx, id.RoomID(roomID), event.StateMember, mxid(remove), &m); err != nil {
			t.Fatal(err)
		}
		if m.Membership != event.MembershipLeave || m.Reason != "Role removed" {
			t.Errorf("removed member: %s %q", m.Membership, m.Reason)
		}

		// Deactivating a user removes them from every room they were in.
		var victim string
		var theirs []*project
		for name := range projects[1].members {
			victim = name
			break
		}
		for _, q := range projects {
			if _, ok := q.members[victim]; ok {
				theirs = append(theirs, q)
			}
		}
		a.call(t, http.MethodPost, "/api/users/"+uuidOf(victim)+"/deactivate/", nil, nil, http.StatusOK)
		for _, q := range theirs {
			delete(q.members, victim)
		}
		for _, q := range theirs {
			waitFor(t, "deactivated user removed", 30*time.Second, func() (bool, string) { return checkRoom(t, nil, q) })
		}

		// A member leaving on their own (outside the system) is brought back: the webhook
		// marks the room, the worker re-invites and re-joins them.
		q := projects[5]
		var leaver string
		for name := range q.members {
			if name != victim {
				leaver = name
				break
			}
		}
		qRoom := a.room(t, q.room).RoomID
		if _, err := a.as(t, a.hs, id.UserID(mxid(leaver))).LeaveRoom(ctx, id.RoomID(qRoom)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "member who left is back", 30*time.Second, func() (bool, string) { return checkRoom(t, nil, q) })
	})

	t.Run("reprovision onto a new homeserver", func(t *testing.T) {
		before := map[string]string{} // room uuid -> old room id
		for _, r := range rooms(t, a.ts) {
			before[r.UUID] = r.RoomID
		}
		waitFor(t, "every active user provisioned", 30*time.Second, pendingProfiles(t, a))
		var profiles []apiProfile
		a.call(t, http.MethodGet, "/api/matrix-user-profiles/?page_size=500&provisioned=true", nil, &profiles, http.StatusOK)
		wantUsers := len(profiles)
		if wantUsers < nUsers {
			t.Fatalf("%d provisioned profiles before reprovision, want at least %d", wantUsers, nUsers)
		}

		hs2 := dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{a.regFile}, DataDir: memDir(t)})
		a.switchTo(t, hs2)
		var dry, c struct {
			Rooms int `json:"rooms_reprovisioned"`
			Users int `json:"users_reset"`
		}
		a.call(t, http.MethodPost, "/api/admin/matrix/reprovision/?dry_run=true", nil, &dry, http.StatusOK)
		a.call(t, http.MethodPost, "/api/admin/matrix/reprovision/", nil, &c, http.StatusAccepted)
		if c.Rooms != nProjects || c.Users != wantUsers || dry != c {
			t.Fatalf("reprovision counts %+v (dry run %+v), want %d rooms, %d users", c, dry, nProjects, wantUsers)
		}
		waitFor(t, "every room active on the new homeserver", 60*time.Second, allActive(t, a.ts, nProjects))
		waitFor(t, "every active user provisioned again", 30*time.Second, pendingProfiles(t, a))
		bot2 := a.bot(t, hs2)
		for _, p := range projects {
			r := a.room(t, p.room)
			if r.RoomID == before[p.room] {
				t.Errorf("room %s kept its old id %s", p.room, r.RoomID)
			}
			want := []string{botID}
			for name := range p.members {
				want = append(want, mxid(name))
			}
			slices.Sort(want)
			if got := joined(t, bot2, r.RoomID); !sameStrings(got, want) {
				t.Errorf("new room %s joined %v, want %v", r.RoomID, got, want)
			}
		}
		// The old homeserver is untouched: its rooms are still there with the bot in them.
		old, err := bot.JoinedRooms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for uuid, roomID := range before {
			if !slices.Contains(old.JoinedRooms, id.RoomID(roomID)) {
				t.Errorf("old room %s of %s gone from the old homeserver", roomID, uuid)
			}
		}
		var progress map[string]any
		a.call(t, http.MethodGet, "/api/admin/matrix/reprovision/", nil, &progress, http.StatusOK)
		if rs, _ := progress["rooms"].(map[string]any); rs["done"] != float64(nProjects) || rs["remaining"] != 0.0 {
			t.Errorf("progress %v", progress)
		}
	})
}
