package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
)

// roomIn makes a project with a room in the given state (and Matrix room id).
func roomIn(t *testing.T, s *Store, state RoomState, roomID id.RoomID) (*Project, *Room) {
	t.Helper()
	ctx := context.Background()
	p := putProject(t, s, "p "+string(state)+" "+NewUUID()[:6])
	r, err := s.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`UPDATE matrix_rooms SET state = ?, room_id = ?, members_dirty = 0 WHERE id = ?`, string(state), roomID, r.ID); err != nil {
		t.Fatal(err)
	}
	r, err = s.RoomByID(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p, r
}

// outboxOf lists the bodies of a room's outbox messages, oldest first.
func outboxOf(t *testing.T, s *Store, roomPK int64) []string {
	t.Helper()
	ms, err := s.RoomOutbox(context.Background(), roomPK, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(ms) - 1; i >= 0; i-- {
		out = append(out, ms[i].Body)
	}
	return out
}

// TestRoomActionsRefuseStatesTheyDoNotApplyTo runs every store action on a room in every
// state: where the state machine forbids it, *ActionError with the state, and nothing
// changes; where it allows it, it succeeds.
func TestRoomActionsRefuseStatesTheyDoNotApplyTo(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	staff := &User{Username: "op", FullName: "Operator", IsStaff: true, IsActive: true}
	if err := s.CreateUser(ctx, staff); err != nil {
		t.Fatal(err)
	}
	run := map[string]func(uuid string) error{
		"retry":        func(u string) error { _, err := s.RetryRoom(ctx, u); return err },
		"disable":      func(u string) error { _, err := s.DisableRoom(ctx, u, false, "off"); return err },
		"reactivate":   func(u string) error { _, err := s.ReactivateRoom(ctx, u, "on"); return err },
		"sync_members": func(u string) error { _, err := s.SyncRoomMembers(ctx, u); return err },
		"join":         func(u string) error { _, _, err := s.StaffJoinRoom(ctx, u, staff, testRules, "joined"); return err },
		"leave": func(u string) error {
			_, err := s.StaffLeaveRoom(ctx, u, staff.ID, "left")
			if errors.Is(err, ErrNotJoined) {
				return nil // allowed in this state; the staff member just had not joined
			}
			return err
		},
		"delete": func(u string) error { _, err := s.DeleteRoom(ctx, u); return err },
	}
	for _, a := range RoomActions {
		if a.Name == "open" {
			continue // no store write: RoomAccessOf and the API check it
		}
		for _, st := range RoomStates {
			_, r := roomIn(t, s, st, "!r:example.org")
			err := run[a.Name](r.UUID)
			var ae *ActionError
			if a.Allowed(st) {
				if err != nil {
					t.Errorf("%s from %s: %v", a.Name, st, err)
				}
				continue
			}
			if !errors.As(err, &ae) || ae.State != st || ae.Action.Name != a.Name {
				t.Errorf("%s from %s: %v, want an ActionError naming the state", a.Name, st, err)
			}
			if got, err := s.RoomByID(ctx, r.ID); err != nil || got.State != st {
				t.Errorf("%s from %s changed the room: %+v %v", a.Name, st, got, err)
			}
		}
		if err := run[a.Name]("0123456789abcdef0123456789abcdef"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a missing room: %v", a.Name, err)
		}
	}
}

func TestRetryRoom(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	_, r := roomIn(t, s, RoomError, "")
	s.w.Exec(`UPDATE matrix_rooms SET error_message = 'M_FORBIDDEN: no', attempts = 8, disable_notice = 'x' WHERE id = ?`, r.ID)
	got, err := s.RetryRoom(ctx, r.UUID)
	if err != nil || got.State != RoomCreating || got.ErrorMessage != "" || got.Attempts != 0 || !got.MembersDirty || got.DisableNotice != "" {
		t.Fatalf("retry from error: %+v, %v", got, err)
	}
	// A room stuck in disabling is tried again now, in the same state.
	_, d := roomIn(t, s, RoomDisabling, "!d:example.org")
	s.w.Exec(`UPDATE matrix_rooms SET attempts = 3, next_attempt_at = ? WHERE id = ?`, now()+600, d.ID)
	got, err = s.RetryRoom(ctx, d.UUID)
	if err != nil || got.State != RoomDisabling || got.Attempts != 0 || !got.NextAttemptAt.IsZero() {
		t.Fatalf("retry from disabling: %+v, %v", got, err)
	}
}

// TestDisableQueuesItsNoticeOnce: entering disabling queues the notice in the same
// transaction and remembers it; a room with no Matrix room gets none; a disable tried
// again after it failed does not post it twice.
func TestDisableQueuesItsNoticeOnce(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	_, r := roomIn(t, s, RoomActive, "!r:example.org")
	got, err := s.DisableRoom(ctx, r.UUID, true, "Chat room was deactivated")
	if err != nil || got.State != RoomDisabling || !got.DeleteHistory || got.DisableNotice == "" {
		t.Fatalf("disable: %+v, %v", got, err)
	}
	m, err := s.OutboxByUUID(ctx, got.DisableNotice)
	if err != nil || m.Body != "Chat room was deactivated" || m.Kind != OutboxNotification || m.RoomID != "!r:example.org" {
		t.Fatalf("notice: %+v, %v", m, err)
	}
	// The export fails: error; disabled again, the notice is not queued again.
	if err := s.SetDisableExport(ctx, r.ID, "e1"); err != nil {
		t.Fatal(err)
	}
	if err := s.FailRoomDisable(ctx, r.ID, "history export failed: boom"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.RoomByID(ctx, r.ID)
	if got.State != RoomError || got.ErrorMessage != "history export failed: boom" || got.DisableExport != "" {
		t.Fatalf("after the failed disable: %+v", got)
	}
	if got, err = s.DisableRoom(ctx, r.UUID, false, "Chat room was deactivated"); err != nil || got.DeleteHistory {
		t.Fatalf("disable again: %+v, %v", got, err)
	}
	if bodies := outboxOf(t, s, r.ID); len(bodies) != 1 {
		t.Errorf("outbox after two disables: %q, want the one notice", bodies)
	}

	_, never := roomIn(t, s, RoomError, "")
	if got, err := s.DisableRoom(ctx, never.UUID, false, "Chat room was deactivated"); err != nil || got.DisableNotice != "" {
		t.Fatalf("disable of a room never created: %+v, %v", got, err)
	}
	if bodies := outboxOf(t, s, never.ID); len(bodies) != 0 {
		t.Errorf("a room with no Matrix room got %q", bodies)
	}
}

// TestArchiveAndReactivateKeepTheMatrixRoom: archiving keeps the room id and alias and
// forgets the members and the disable's progress; reactivating queues its notice and
// the members' sync.
func TestArchiveAndReactivateKeepTheMatrixRoom(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	a := putUser(t, s, "a")
	p, r := roomIn(t, s, RoomActive, "!r:example.org")
	s.w.Exec(`UPDATE matrix_rooms SET room_alias = '#waldur-x:example.org' WHERE id = ?`, r.ID)
	s.SetRoles(ctx, p.ID, []RoleInput{{a.UUID, RoleAdmin}}, testRules)
	s.SaveMembers(ctx, r.ID, []MemberSync{{UserID: a.ID, Membership: "join", PowerLevel: 50}}, nil)
	if _, err := s.DisableRoom(ctx, r.UUID, true, "off"); err != nil {
		t.Fatal(err)
	}
	deleted, err := s.FinishRoomDisable(ctx, r.ID)
	if err != nil || deleted {
		t.Fatalf("archive: %v, project deleted %v", err, deleted)
	}
	got, _ := s.RoomByID(ctx, r.ID)
	if got.State != RoomArchived || got.RoomID != "!r:example.org" || got.RoomAlias != "#waldur-x:example.org" ||
		got.DisableNotice != "" || got.DeleteHistory || got.MembersDirty {
		t.Fatalf("archived: %+v", got)
	}
	members, _ := s.RoomMembers(ctx, r.ID)
	if len(members) != 1 || members[0].Membership != "leave" {
		t.Fatalf("members after archive: %+v", members)
	}
	got, err = s.ReactivateRoom(ctx, r.UUID, "Chat room was reactivated")
	if err != nil || got.State != RoomActive || got.RoomID != "!r:example.org" || !got.MembersDirty {
		t.Fatalf("reactivate: %+v, %v", got, err)
	}
	if bodies := outboxOf(t, s, r.ID); fmt.Sprint(bodies) != "[off Chat room was reactivated]" {
		t.Errorf("outbox: %q", bodies)
	}
}

// TestStaffJoinAndLeave: joining gives the staff member a profile and a place in the room
// at power level 50, announced once; leaving hands them to the worker to take out.
func TestStaffJoinAndLeave(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	staff := &User{Username: "op", FullName: "Operator", IsStaff: true, IsActive: true}
	if err := s.CreateUser(ctx, staff); err != nil {
		t.Fatal(err)
	}
	_, r := roomIn(t, s, RoomActive, "!r:example.org")

	if _, _, err := s.StaffJoinRoom(ctx, r.UUID, staff, ProfileRules{}, "joined"); !errors.Is(err, ErrNoMatrixID) {
		t.Fatalf("join without a domain: %v", err)
	}
	got, joined, err := s.StaffJoinRoom(ctx, r.UUID, staff, testRules, "Operator joined the room.")
	if err != nil || !joined || !got.MembersDirty {
		t.Fatalf("join: %+v %v %v", got, joined, err)
	}
	if _, joined, err = s.StaffJoinRoom(ctx, r.UUID, staff, testRules, "Operator joined the room."); err != nil || joined {
		t.Fatalf("join again: %v %v", joined, err)
	}
	prof, err := s.ProfileByUserID(ctx, staff.ID)
	if err != nil || prof.MatrixUserID != "@op:example.org" {
		t.Fatalf("staff profile: %+v %v", prof, err)
	}
	desired, err := s.DesiredMembers(ctx, r.ID)
	if err != nil || len(desired) != 1 || !desired[0].StaffJoined || desired[0].PowerLevel() != 50 || desired[0].MatrixUserID != "@op:example.org" {
		t.Fatalf("desired after join: %+v %v", desired, err)
	}
	members, _ := s.RoomMembers(ctx, r.ID)
	if len(members) != 1 || !members[0].StaffJoined || members[0].PowerLevel != 50 {
		t.Fatalf("members after join: %+v", members)
	}

	// A sync that read who belongs before the join does not drop the row.
	if err := s.SaveMembers(ctx, r.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if desired, _ = s.DesiredMembers(ctx, r.ID); len(desired) != 1 {
		t.Fatalf("a sync dropped the staff member who had just joined: %+v", desired)
	}

	if _, err := s.StaffLeaveRoom(ctx, r.UUID, staff.ID, "Operator left the room."); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StaffLeaveRoom(ctx, r.UUID, staff.ID, "Operator left the room."); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("leave twice: %v", err)
	}
	if desired, _ = s.DesiredMembers(ctx, r.ID); len(desired) != 0 {
		t.Fatalf("desired after leave: %+v", desired)
	}
	leaving, err := s.StaffLeaving(ctx, r.ID)
	if err != nil || !leaving[staff.ID] {
		t.Fatalf("leaving: %v %v", leaving, err)
	}
	if bodies := outboxOf(t, s, r.ID); fmt.Sprint(bodies) != "[Operator joined the room. Operator left the room.]" {
		t.Errorf("outbox: %q", bodies)
	}
	// Once the worker took them out, the sync drops the row.
	if err := s.SaveMembers(ctx, r.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if leaving, _ = s.StaffLeaving(ctx, r.ID); len(leaving) != 0 {
		t.Errorf("still leaving after the sync: %v", leaving)
	}

	// A staff member who is no longer staff is not kept in the room by a join.
	if _, _, err := s.StaffJoinRoom(ctx, r.UUID, staff, testRules, "again"); err != nil {
		t.Fatal(err)
	}
	s.w.Exec(`UPDATE users SET is_staff = 0 WHERE id = ?`, staff.ID)
	if desired, _ = s.DesiredMembers(ctx, r.ID); len(desired) != 0 {
		t.Errorf("desired with a demoted staff member: %+v", desired)
	}
	s.SaveMembers(ctx, r.ID, nil, nil)
	if members, _ = s.RoomMembers(ctx, r.ID); len(members) != 0 {
		t.Errorf("members with a demoted staff member: %+v", members)
	}
}

// TestDeleteProject: a project whose room has nothing to close goes at once; one whose
// room is live is kept until the room, disabled with the termination notice, is
// archived, then goes with it; its exports stay.
func TestDeleteProject(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	const notice = "Chat room was deactivated due to project termination"
	for _, tc := range []struct {
		state     RoomState
		roomID    id.RoomID
		claimed   bool
		deleted   bool
		wantState RoomState // pending: the room's state after the call
		noticed   bool
	}{
		{RoomActive, "!r:x", false, false, RoomDisabling, true},
		{RoomError, "!r:x", false, false, RoomDisabling, true},
		{RoomError, "", false, true, "", false},
		{RoomCreating, "", false, true, "", false},
		{RoomCreating, "", true, false, RoomCreating, false}, // a worker holds it
		{RoomCreating, "!r:x", false, false, RoomCreating, false},
		{RoomDisabling, "!r:x", false, false, RoomDisabling, false},
		{RoomArchived, "!r:x", false, true, "", false},
	} {
		name := fmt.Sprintf("%s %q claimed=%v", tc.state, tc.roomID, tc.claimed)
		p, r := roomIn(t, s, tc.state, tc.roomID)
		if tc.claimed {
			s.w.Exec(`UPDATE matrix_rooms SET members_dirty = 2 WHERE id = ?`, r.ID)
		}
		deleted, err := s.DeleteProject(ctx, p.UUID, notice)
		if err != nil || deleted != tc.deleted {
			t.Errorf("%s: deleted %v, %v", name, deleted, err)
			continue
		}
		if tc.deleted {
			if _, err := s.ProjectByUUID(ctx, p.UUID); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: project still there: %v", name, err)
			}
			continue
		}
		pr, _ := s.ProjectByUUID(ctx, p.UUID)
		got, _ := s.RoomByID(ctx, r.ID)
		if !pr.Deleting || !got.ProjectDeleting || got.State != tc.wantState {
			t.Errorf("%s: project deleting %v, room %+v", name, pr.Deleting, got)
		}
		if bodies := outboxOf(t, s, r.ID); (len(bodies) == 1 && bodies[0] == notice) != tc.noticed {
			t.Errorf("%s: outbox %q", name, bodies)
		}
		if again, err := s.DeleteProject(ctx, p.UUID, notice); err != nil || again {
			t.Errorf("%s: asked again: %v %v", name, again, err)
		}
	}
	if _, err := s.DeleteProject(ctx, "nope", notice); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete missing: %v", err)
	}

	// The archive deletes the project and the room; the export stays.
	p, r := roomIn(t, s, RoomActive, "!live:x")
	if _, err := s.DeleteProject(ctx, p.UUID, notice); err != nil {
		t.Fatal(err)
	}
	e, _, err := s.CreateExport(ctx, r.ID, ExportOnDeletion)
	if err != nil {
		t.Fatal(err)
	}
	if deleted, err := s.FinishRoomDisable(ctx, r.ID); err != nil || !deleted {
		t.Fatalf("archive of a deleted project's room: %v %v", deleted, err)
	}
	if _, err := s.RoomByID(ctx, r.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("room after its project went: %v", err)
	}
	if got, err := s.ExportByUUID(ctx, e.UUID); err != nil || got.RoomPK != 0 || got.RoomID != "!live:x" {
		t.Errorf("export after the room went: %+v %v", got, err)
	}

	// A room being created when its project was deleted is disabled once made.
	p, r = roomIn(t, s, RoomCreating, "")
	s.w.Exec(`UPDATE matrix_rooms SET members_dirty = 2 WHERE id = ?`, r.ID)
	if deleted, err := s.DeleteProject(ctx, p.UUID, notice); err != nil || deleted {
		t.Fatal(deleted, err)
	}
	s.SetRoomHomeserverID(ctx, r.ID, "!made:x", "", "")
	if err := s.FinishRoomSync(ctx, r.ID, p.Name); err != nil {
		t.Fatal(err)
	}
	got, _ := s.RoomByID(ctx, r.ID)
	if got.State != RoomDisabling || got.DisableNotice == "" {
		t.Fatalf("room made after its project was deleted: %+v", got)
	}
	if bodies := outboxOf(t, s, r.ID); fmt.Sprint(bodies) != "["+notice+"]" {
		t.Errorf("outbox: %q", bodies)
	}

	// One that never reached the homeserver is deleted by the worker holding it.
	p, r = roomIn(t, s, RoomCreating, "")
	s.w.Exec(`UPDATE matrix_rooms SET members_dirty = 2 WHERE id = ?`, r.ID)
	s.DeleteProject(ctx, p.UUID, notice)
	if deleted, err := s.DeleteUncreatedRoom(ctx, r.ID); err != nil || !deleted {
		t.Fatalf("delete uncreated: %v %v", deleted, err)
	}
	if _, err := s.ProjectByUUID(ctx, p.UUID); !errors.Is(err, ErrNotFound) {
		t.Errorf("project still there: %v", err)
	}

	// Put again while pending: the project is not deleted after all.
	p, r = roomIn(t, s, RoomActive, "!back:x")
	s.DeleteProject(ctx, p.UUID, notice)
	if _, _, err := s.PutProject(ctx, DirectoryProject{UUID: p.UUID, Name: p.Name}, false); err != nil {
		t.Fatal(err)
	}
	if deleted, err := s.FinishRoomDisable(ctx, r.ID); err != nil || deleted {
		t.Fatalf("archive after the project came back: %v %v", deleted, err)
	}
	if pr, err := s.ProjectByUUID(ctx, p.UUID); err != nil || pr.Deleting || pr.RoomState != RoomArchived {
		t.Errorf("project that came back: %+v %v", pr, err)
	}
}

func TestDeleteRoom(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	p, r := roomIn(t, s, RoomArchived, "!r:x")
	e, _, _ := s.CreateExport(ctx, r.ID, ExportManual)
	if deleted, err := s.DeleteRoom(ctx, r.UUID); err != nil || deleted {
		t.Fatalf("delete: %v %v", deleted, err)
	}
	if pr, err := s.ProjectByUUID(ctx, p.UUID); err != nil || pr.RoomUUID != "" {
		t.Errorf("project after its room went: %+v %v", pr, err)
	}
	if got, err := s.ExportByUUID(ctx, e.UUID); err != nil || got.RoomID != "!r:x" {
		t.Errorf("export: %+v %v", got, err)
	}
	// The room of a project being deleted takes the project along.
	p, r = roomIn(t, s, RoomDisabling, "!d:x")
	s.DeleteProject(ctx, p.UUID, "bye")
	s.FailRoomDisable(ctx, r.ID, "history export failed: x")
	if deleted, err := s.DeleteRoom(ctx, r.UUID); err != nil || !deleted {
		t.Fatalf("delete the errored room of a deleted project: %v %v", deleted, err)
	}
	if _, err := s.ProjectByUUID(ctx, p.UUID); !errors.Is(err, ErrNotFound) {
		t.Errorf("project: %v", err)
	}
}

// TestRoomAccessAndMyRooms: who is a member for the open action, and ?member=true.
func TestRoomAccessAndMyRooms(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	a, b, gone := putUser(t, s, "a"), putUser(t, s, "b"), putUser(t, s, "gone")
	p, r := roomIn(t, s, RoomActive, "!r:x")
	s.SetRoles(ctx, p.ID, []RoleInput{{a.UUID, RoleMember}, {gone.UUID, RoleMember}}, testRules)
	s.PutUser(ctx, DirectoryUser{UUID: gone.UUID, Username: "gone", IsActive: false}, testRules)
	s.SaveMembers(ctx, r.ID, []MemberSync{{UserID: a.ID, Membership: "invite"}}, nil)
	_, other := roomIn(t, s, RoomActive, "!o:x")

	for _, tc := range []struct {
		user       *User
		member     bool
		membership string
	}{{a, true, "invite"}, {b, false, ""}, {gone, false, ""}} {
		acc, err := s.RoomAccessOf(ctx, r.UUID, tc.user.ID)
		if err != nil || acc.Member != tc.member || acc.Membership != tc.membership || acc.MatrixUserID == "" {
			t.Errorf("%s: %+v %v", tc.user.Username, acc, err)
		}
	}
	mine := func(u *User) []string {
		rooms, total, err := s.ListRooms(ctx, RoomFilter{MemberUserID: u.ID})
		if err != nil || total != len(rooms) {
			t.Fatal(total, err)
		}
		var out []string
		for _, x := range rooms {
			out = append(out, x.UUID)
		}
		return out
	}
	if got := mine(a); !slices.Equal(got, []string{r.UUID}) {
		t.Errorf("a's rooms: %v (other %s)", got, other.UUID)
	}
	if err := s.MarkMemberJoined(ctx, r.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if acc, _ := s.RoomAccessOf(ctx, r.UUID, a.ID); acc.Membership != "join" {
		t.Errorf("after open: %+v", acc)
	}
	if got := mine(b); len(got) != 0 {
		t.Errorf("b's rooms: %v", got)
	}
}

func TestRoomMembersPageAndEligibleProjects(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	p, r := roomIn(t, s, RoomActive, "!r:x")
	var in []RoleInput
	for i := range 5 {
		in = append(in, RoleInput{putUser(t, s, fmt.Sprintf("u%d", i)).UUID, RoleMember})
	}
	s.SetRoles(ctx, p.ID, in, testRules)
	page, total, err := s.RoomMembersPage(ctx, r.ID, Page{Number: 2, Size: 2})
	if err != nil || total != 5 || len(page) != 2 || page[0].Username != "u2" || page[1].Username != "u3" {
		t.Fatalf("page 2: %d %v %v", total, page, err)
	}

	free := putProject(t, s, "free")
	leaving, _ := roomIn(t, s, RoomActive, "!l:x")
	s.DeleteProject(ctx, leaving.UUID, "bye")
	got, total, err := s.EligibleProjects(ctx, Page{})
	if err != nil || total != 1 || len(got) != 1 || got[0].UUID != free.UUID {
		t.Errorf("eligible: %d %+v %v", total, got, err)
	}
}

// TestRecheckRoom: a look later is queued for an active room with nothing queued, and
// never over a sync queued or under way, nor for a room in another state.
func TestRecheckRoom(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	at := time.Now().Add(3 * time.Second)
	_, idle := roomIn(t, s, RoomActive, "!a:x")
	_, busy := roomIn(t, s, RoomActive, "!b:x")
	s.w.Exec(`UPDATE matrix_rooms SET members_dirty = 2 WHERE id = ?`, busy.ID)
	_, archived := roomIn(t, s, RoomArchived, "!c:x")
	for _, r := range []*Room{idle, busy, archived} {
		if err := s.RecheckRoom(ctx, r.ID, at); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.RoomByID(ctx, idle.ID); !got.MembersDirty || got.NextAttemptAt.Unix() != ceilUnix(at) {
		t.Errorf("idle room: dirty %v, next %v", got.MembersDirty, got.NextAttemptAt)
	}
	if d := roomDirty(t, s, busy.ID); d != 2 {
		t.Errorf("a sync under way was overwritten: %d", d)
	}
	if d := roomDirty(t, s, archived.ID); d != 0 {
		t.Errorf("archived room queued: %d", d)
	}
}
