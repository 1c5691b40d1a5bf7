package provision_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/settings"
)

// tlEvent is one event of a room's timeline, as the tests compare them.
type tlEvent struct {
	Type       string
	Sender     string
	StateKey   string
	Body       string // m.room.message
	Membership string // m.room.member
	Reason     string
}

func (e tlEvent) String() string {
	if e.Type == "m.room.member" {
		return fmt.Sprintf("%s %s %s by %s (%s)", e.Type, e.StateKey, e.Membership, e.Sender, e.Reason)
	}
	return fmt.Sprintf("%s %q by %s", e.Type, e.Body, e.Sender)
}

// timeline reads the room's whole timeline, oldest first, as c sees it.
func timeline(t *testing.T, c *mautrix.Client, roomID id.RoomID) []tlEvent {
	t.Helper()
	var out []tlEvent
	from := ""
	for range 100 {
		resp, err := c.Messages(context.Background(), roomID, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			t.Fatalf("messages of %s: %v", roomID, err)
		}
		for _, evt := range resp.Chunk {
			e := tlEvent{Type: evt.Type.Type, Sender: evt.Sender.String()}
			if evt.StateKey != nil {
				e.StateKey = *evt.StateKey
			}
			e.Body, _ = evt.Content.Raw["body"].(string)
			e.Membership, _ = evt.Content.Raw["membership"].(string)
			e.Reason, _ = evt.Content.Raw["reason"].(string)
			out = append(out, e)
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	slices.Reverse(out)
	return out
}

// indexOf is the position of the last event that matches, -1 when none does.
func indexOf(tl []tlEvent, match func(tlEvent) bool) int {
	for i := len(tl) - 1; i >= 0; i-- {
		if match(tl[i]) {
			return i
		}
	}
	return -1
}

// botSays matches the bot's message with the given text.
func botSays(bot id.UserID, text string) func(tlEvent) bool {
	return func(e tlEvent) bool { return e.Type == "m.room.message" && e.Sender == bot.String() && e.Body == text }
}

// memberships are the room's members as the bot sees them in its current state:
// user -> membership (not /members, which Dendrite serves a moment behind).
func memberships(t *testing.T, c *mautrix.Client, roomID id.RoomID) map[string]memberInfo {
	t.Helper()
	state, err := c.State(context.Background(), roomID)
	if err != nil {
		t.Fatalf("state of %s: %v", roomID, err)
	}
	out := map[string]memberInfo{}
	for key, evt := range state[event.StateMember] {
		m := evt.Content.AsMember()
		out[key] = memberInfo{Membership: string(m.Membership), Displayname: m.Displayname, Reason: m.Reason, Sender: evt.Sender.String()}
	}
	return out
}

type memberInfo struct {
	Membership, Displayname, Reason, Sender string
}

// TestRoomLifecycleOnDendrite walks one project's room through every action on a real
// homeserver, through the real router, and reads the outcome back with a Matrix client:
// display names follow the platform on a member sync; a staff member joins (power level
// 50, announced) and leaves (announced, leaving as themselves); a member opens the room,
// accepting a pending invite; disable posts its notice, then removes everyone, and
// archives the room with the bot still in it; reactivate brings back the same room
// with its members and power levels, and its notice.
func TestRoomLifecycleOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	ctx := context.Background()
	a := newAppservice(t, fastEnv)
	u1, u2 := a.createUser(t, "life1"), a.createUser(t, "life2")
	var p struct {
		UUID string `json:"uuid"`
	}
	a.call(t, http.MethodPost, "/api/projects/", map[string]string{"name": "Lifecycle"}, &p, http.StatusCreated)
	a.call(t, http.MethodPut, "/api/projects/"+p.UUID+"/members/", []map[string]string{
		{"user": u1.UUID, "role": "admin"}, {"user": u2.UUID, "role": "member"}}, nil, http.StatusOK)
	var r apiRoom
	a.call(t, http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": p.UUID}, &r, http.StatusCreated)
	waitFor(t, "room active", 60*time.Second, a.inState(t, r.UUID, "active"))
	r = a.room(t, r.UUID)
	roomID := id.RoomID(r.RoomID)
	botID := a.ms.BotUserID()
	bc := a.bot(t, a.hs)
	staffID := mxid("staff")
	waitFor(t, "members joined", 30*time.Second, func() (bool, string) {
		got := joined(t, bc, r.RoomID)
		return slices.Contains(got, mxid("life1")) && slices.Contains(got, mxid("life2")), fmt.Sprint(got)
	})

	// Display names follow the platform's full name on every member sync.
	if m := memberships(t, bc, roomID)[mxid("life1")]; m.Displayname != "User life1" {
		t.Errorf("display name after creation: %q", m.Displayname)
	}
	if err := a.as(t, a.hs, id.UserID(mxid("life1"))).SetDisplayName(ctx, "Somebody Else"); err != nil {
		t.Fatal(err)
	}
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/sync_members/", nil, nil, http.StatusAccepted)
	waitFor(t, "display name restored by the sync", 30*time.Second, func() (bool, string) {
		m := memberships(t, bc, roomID)[mxid("life1")]
		return m.Displayname == "User life1", m.Displayname
	})

	// Staff join: invited and joined as themselves, power level 50, announced.
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/join/", nil, nil, http.StatusAccepted)
	waitFor(t, "staff joined with power level 50", 30*time.Second, func() (bool, string) {
		m := memberships(t, bc, roomID)[staffID]
		return m.Membership == "join" && powerUsers(t, bc, r.RoomID)[staffID] == 50, fmt.Sprintf("%+v, power %v", m, powerUsers(t, bc, r.RoomID))
	})
	waitFor(t, "join announced", 30*time.Second, func() (bool, string) {
		return indexOf(timeline(t, bc, roomID), botSays(botID, "Staff joined the room.")) >= 0, ""
	})
	// Staff leave: announced, and they leave on their own (not kicked); their level goes.
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/leave/", nil, nil, http.StatusAccepted)
	waitFor(t, "staff left", 30*time.Second, func() (bool, string) {
		m := memberships(t, bc, roomID)[staffID]
		_, hasLevel := powerUsers(t, bc, r.RoomID)[staffID]
		return m.Membership == "leave" && m.Sender == staffID && !hasLevel, fmt.Sprintf("%+v, level kept %v", m, hasLevel)
	})
	var tl []tlEvent
	waitFor(t, "leave announced", 30*time.Second, func() (bool, string) {
		tl = timeline(t, bc, roomID)
		left := indexOf(tl, botSays(botID, "Staff left the room."))
		return left >= 0 && indexOf(tl, botSays(botID, "Staff joined the room.")) < left, fmt.Sprint(tl)
	})

	// A member opens the room: their pending invite is accepted as them. The worker is
	// switched off meanwhile (appservice disabled), so the open does the join, not it.
	st := a.ts.Web.Settings()
	st.Set(ctx, map[string]string{settings.Enabled.Key: "false"})
	waitFor(t, "the worker idle (a sync under way finished)", 30*time.Second, func() (bool, string) {
		dr, err := a.ts.Store.RoomByUUID(ctx, r.UUID)
		return err == nil && !dr.MembersSyncing, fmt.Sprintf("%+v %v", dr, err)
	})
	u2c := a.as(t, a.hs, id.UserID(mxid("life2")))
	if _, err := u2c.LeaveRoom(ctx, roomID); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.InviteUser(ctx, roomID, &mautrix.ReqInviteUser{UserID: id.UserID(mxid("life2"))}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the invite in the room's state", 10*time.Second, func() (bool, string) {
		m := memberships(t, bc, roomID)[mxid("life2")]
		return m.Membership == "invite", fmt.Sprintf("%+v", m)
	})
	dbRoom, _ := a.ts.Store.RoomByUUID(ctx, r.UUID)
	u1row, _ := a.ts.Store.UserByUsername(ctx, "life1")
	u2row, _ := a.ts.Store.UserByUsername(ctx, "life2")
	if err := a.ts.Store.SaveMembers(ctx, dbRoom.ID, []db.MemberSync{{UserID: u1row.ID, Membership: "join", PowerLevel: 50},
		{UserID: u2row.ID, Membership: "invite"}}, nil); err != nil {
		t.Fatal(err)
	}
	var opened map[string]string
	if code := a.ts.JSON(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/open/", a.ts.NewToken(t, u2row), nil, &opened); code != http.StatusOK || opened["room_id"] != r.RoomID {
		t.Fatalf("open: %d %v", code, opened)
	}
	// The open joined them (its record says so, and the homeserver agrees).
	if rm := a.room(t, r.UUID).Members; len(rm) != 2 || rm[1].MatrixUserID != mxid("life2") || rm[1].Membership != "join" {
		t.Errorf("members after open: %+v; server log: %s", rm, grepLines(a.ts.Logs.String(), "open"))
	}
	waitFor(t, "life2 joined after open", 10*time.Second, func() (bool, string) {
		got := joined(t, bc, r.RoomID)
		return slices.Contains(got, mxid("life2")), fmt.Sprintf("%v; %+v", got, memberships(t, bc, roomID)[mxid("life2")])
	})
	if code := a.ts.JSON(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/open/", a.ts.StaffToken, nil, nil); code != http.StatusForbidden {
		t.Errorf("open as a non-member: %d", code)
	}
	st.Set(ctx, map[string]string{settings.Enabled.Key: "true"})

	// Disable: the notice first, then everyone removed, then archived; the bot stays.
	var out apiRoom
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", nil, &out, http.StatusAccepted)
	if out.State != "disabling" {
		t.Fatalf("after disable: %+v", out)
	}
	waitFor(t, "room archived", 60*time.Second, a.inState(t, r.UUID, "archived"))
	r = a.room(t, r.UUID)
	if r.RoomID != roomID.String() {
		t.Fatalf("archived room's id %s, was %s", r.RoomID, roomID)
	}
	rooms, err := bc.JoinedRooms(ctx)
	if err != nil || !slices.Contains(rooms.JoinedRooms, roomID) {
		t.Fatalf("the bot is not in the archived room: %v %v", rooms, err)
	}
	ms := memberships(t, bc, roomID)
	for _, u := range []string{mxid("life1"), mxid("life2")} {
		if m := ms[u]; m.Membership != "leave" || m.Reason != "Chat room was deactivated" || m.Sender != botID.String() {
			t.Errorf("%s after disable: %+v", u, m)
		}
	}
	tl = timeline(t, bc, roomID)
	notice := indexOf(tl, botSays(botID, "Chat room was deactivated"))
	var kicks []int
	for i, e := range tl {
		if e.Type == "m.room.member" && e.Membership == "leave" && e.Reason == "Chat room was deactivated" {
			kicks = append(kicks, i)
		}
	}
	if notice < 0 || len(kicks) != 2 || kicks[0] < notice {
		t.Errorf("the notice is not in the room before the kicks: notice at %d, kicks at %v: %v", notice, kicks, tl[max(notice, 0):])
	}
	if resolved, err := bc.ResolveAlias(ctx, id.RoomAlias(r.RoomAlias)); err != nil || resolved.RoomID != roomID {
		t.Errorf("alias %s of the archived room: %v %v", r.RoomAlias, resolved, err)
	}

	// Reactivate: the same room, its members back with their power levels, the notice.
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/reactivate/", nil, &out, http.StatusAccepted)
	if out.State != "active" || out.RoomID != roomID.String() {
		t.Fatalf("after reactivate: %+v", out)
	}
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/reactivate/", nil, nil, http.StatusConflict)
	want := []string{botID.String(), mxid("life1"), mxid("life2")}
	slices.Sort(want)
	waitFor(t, "members back in the same room", 60*time.Second, func() (bool, string) {
		got := joined(t, bc, roomID.String())
		return sameStrings(got, want), fmt.Sprintf("%v; room %+v; state %+v; worker log: %s\nhomeserver log: %s", got, a.room(t, r.UUID),
			memberships(t, bc, roomID), grepLines(a.ts.Logs.String(), "provision"), hsLog(a, "@life", "kick", "invite"))
	})
	waitFor(t, "power levels restored", 30*time.Second, func() (bool, string) {
		pl := powerUsers(t, bc, roomID.String())
		_, member := pl[mxid("life2")]
		return pl[mxid("life1")] == 50 && !member && pl[botID.String()] == 100, fmt.Sprint(pl)
	})
	waitFor(t, "reactivation announced", 30*time.Second, func() (bool, string) {
		tl = timeline(t, bc, roomID)
		return indexOf(tl, botSays(botID, "Chat room was reactivated")) > notice, ""
	})
	if r = a.room(t, r.UUID); r.RoomID != roomID.String() || strings.Contains(r.Notice, "previous room") {
		t.Errorf("reactivated room: %+v", r)
	}
	// The staff member who joined before the disable is not brought back by it.
	if m := memberships(t, bc, roomID)[staffID]; m.Membership == "join" {
		t.Errorf("staff rejoined on reactivation: %+v", m)
	}
}

// TestProjectDeletionOnDendrite: deleting a project whose room is live answers 202; the
// room gets "... due to project termination" before everyone is removed, and once it is
// archived the project and the room's record are gone while the Matrix room stays, the
// bot in it.
func TestProjectDeletionOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	ctx := context.Background()
	a := newAppservice(t, fastEnv)
	u := a.createUser(t, "term1")
	r := a.newProjectRoom(t, "Terminated", u)
	waitFor(t, "room active", 60*time.Second, a.inState(t, r.UUID, "active"))
	r = a.room(t, r.UUID)
	roomID := id.RoomID(r.RoomID)
	bc := a.bot(t, a.hs)
	waitFor(t, "member joined", 30*time.Second, func() (bool, string) {
		got := joined(t, bc, r.RoomID)
		return slices.Contains(got, mxid("term1")), fmt.Sprint(got)
	})

	var deleting struct {
		Deleting  bool   `json:"deleting"`
		RoomState string `json:"room_state"`
	}
	a.call(t, http.MethodDelete, "/api/projects/"+r.Project+"/", nil, &deleting, http.StatusAccepted)
	if !deleting.Deleting || deleting.RoomState != "disabling" {
		t.Fatalf("delete answer: %+v", deleting)
	}
	waitFor(t, "project gone", 60*time.Second, func() (bool, string) {
		code := a.ts.JSON(t, http.MethodGet, "/api/projects/"+r.Project+"/", a.ts.StaffToken, nil, nil)
		return code == http.StatusNotFound, fmt.Sprint(code)
	})
	if code := a.ts.JSON(t, http.MethodGet, "/api/matrix-rooms/"+r.UUID+"/", a.ts.StaffToken, nil, nil); code != http.StatusNotFound {
		t.Errorf("room record after its project went: %d", code)
	}
	tl := timeline(t, bc, roomID)
	notice := indexOf(tl, botSays(a.ms.BotUserID(), "Chat room was deactivated due to project termination"))
	kick := indexOf(tl, func(e tlEvent) bool {
		return e.Type == "m.room.member" && e.StateKey == mxid("term1") && e.Membership == "leave"
	})
	if notice < 0 || kick < notice {
		t.Errorf("notice at %d, kick at %d: %v", notice, kick, tl)
	}
	if rooms, err := bc.JoinedRooms(ctx); err != nil || !slices.Contains(rooms.JoinedRooms, roomID) {
		t.Errorf("the bot left the room of the deleted project: %v %v", rooms, err)
	}
}

// grepLines returns the lines of s that contain word, for a failure's message.
func grepLines(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestReactivateARoomThatNeverExisted: a room given up on before it reached the
// homeserver, disabled and archived, gets its Matrix room made when reactivated.
func TestReactivateARoomThatNeverExisted(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	ctx := context.Background()
	a := newAppservice(t, fastEnv)
	st := a.ts.Web.Settings()
	st.Set(ctx, map[string]string{settings.Enabled.Key: "false"}) // the worker makes nothing meanwhile
	u := a.createUser(t, "never1")
	r := a.newProjectRoom(t, "Never made", u)
	dbRoom, err := a.ts.Store.RoomByUUID(ctx, r.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ts.Store.FailRoom(ctx, dbRoom.ID, "given up", 1, nil); err != nil {
		t.Fatal(err)
	}
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", nil, nil, http.StatusAccepted)
	st.Set(ctx, map[string]string{settings.Enabled.Key: "true"})
	waitFor(t, "archived", 30*time.Second, a.inState(t, r.UUID, "archived"))
	if got := a.room(t, r.UUID); got.RoomID != "" {
		t.Fatalf("a room never made got a room id: %+v", got)
	}
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/reactivate/", nil, nil, http.StatusAccepted)
	waitFor(t, "made and active", 60*time.Second, func() (bool, string) {
		got := a.room(t, r.UUID)
		return got.State == "active" && got.RoomID != "" && got.Notice == "", fmt.Sprintf("%+v", got)
	})
	got := a.room(t, r.UUID)
	waitFor(t, "member joined", 30*time.Second, func() (bool, string) {
		j := joined(t, a.bot(t, a.hs), got.RoomID)
		return slices.Contains(j, mxid("never1")), fmt.Sprint(j)
	})
}

// hsLog is the homeserver's log lines about any of words (all of them, not a tail).
func hsLog(a *appservice, words ...string) string {
	b, err := os.ReadFile(filepath.Join(a.hs.DataDir, "dendrite.log"))
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(l, w) }) &&
			!strings.Contains(l, "Fetching state") && !strings.Contains(l, "/messages") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
