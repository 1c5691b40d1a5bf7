package db

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
)

var testRules = ProfileRules{Domain: "example.org", BotLocalpart: "waldur-bot"}

func putUser(t *testing.T, s *Store, username string) *User {
	t.Helper()
	u, _, err := s.PutUser(context.Background(), DirectoryUser{Username: username, FullName: "Full " + username, IsActive: true}, testRules)
	if err != nil {
		t.Fatalf("put user %s: %v", username, err)
	}
	return u
}

func putProject(t *testing.T, s *Store, name string) *Project {
	t.Helper()
	p, _, err := s.PutProject(context.Background(), DirectoryProject{Name: name}, false)
	if err != nil {
		t.Fatalf("put project %s: %v", name, err)
	}
	return p
}

func roomDirty(t *testing.T, s *Store, id int64) int {
	t.Helper()
	var d int
	if err := s.r.QueryRow(`SELECT members_dirty FROM matrix_rooms WHERE id = ?`, id).Scan(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestLocalpart: the escaping of MATRIX.md section 6 (lowercase; a-z 0-9 . _ - / + kept;
// "=" as "=3d"; other ASCII "_"; each UTF-8 byte of anything else "=xx") and the three
// formats with their fallbacks.
func TestLocalpart(t *testing.T) {
	const uuid = "6f1c0b5e2b7a4c1e9a510d2f8e4b7c01"
	for _, tc := range []struct{ format, username, uuid, email, want string }{
		{"", "alice", uuid, "", "alice"},
		{FormatUsername, "Alice.Smith", uuid, "", "alice.smith"},
		{FormatUsername, "bob@example.org", uuid, "", "bob_example.org"},
		{FormatUsername, "a b+c", uuid, "", "a_b+c"},
		{FormatUsername, "x=y/z-_", uuid, "", "x=3dy/z-_"},
		{FormatUsername, "Émile", uuid, "", "=c3=a9mile"},      // lowercased first: é is c3 a9
		{FormatUsername, "日本", uuid, "", "=e6=97=a5=e6=9c=ac"}, // every byte of each character
		{FormatUsername, "a\xffb", uuid, "", "a=ffb"},          // a byte that is not UTF-8, as itself
		{FormatUsername, "tab\there!", uuid, "", "tab_here_"},
		{FormatUsername, "", "0123ABCD", "", "0123abcd"}, // no username: the uuid
		{FormatUUID, "alice", uuid, "alice@example.org", uuid},
		{FormatUUID, "alice", "6F1C0B5E-2B7A-4C1E-9A51-0D2F8E4B7C01", "", uuid},
		{FormatEmailLocal, "alice", uuid, "Alice.Archer+chat@example.org", "alice.archer+chat"},
		{FormatEmailLocal, "alice", uuid, "", "alice"},             // no email: the username
		{FormatEmailLocal, "alice", uuid, "@example.org", "alice"}, // nothing before the @
		{FormatEmailLocal, "alice", uuid, "not-an-address", "alice"},
		{"unknown", "Bob", uuid, "", "bob"},
	} {
		if got := Localpart(tc.format, tc.username, tc.uuid, tc.email); got != tc.want {
			t.Errorf("Localpart(%q, %q, %q, %q) = %q, want %q", tc.format, tc.username, tc.uuid, tc.email, got, tc.want)
		}
	}
}

// TestMatrixIDCollisions gives colliding usernames numbered ids and never the bot's.
func TestMatrixIDCollisions(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	cases := []struct {
		username string
		want     id.UserID
	}{
		{"alice", "@alice:example.org"},
		{"Alice", "@alice_2:example.org"},
		{"ALICE", "@alice_3:example.org"},
		{"alice_2x", "@alice_2x:example.org"},
		{"waldur-bot", "@waldur-bot_2:example.org"}, // the bot's localpart is never a user's
		{"Waldur-Bot", "@waldur-bot_3:example.org"},
		{"alice!", "@alice_:example.org"},
		{"alice?", "@alice__2:example.org"},
	}
	for _, tc := range cases {
		u := putUser(t, s, tc.username)
		p, err := s.ProfileByUserID(ctx, u.ID)
		if err != nil {
			t.Fatalf("%s: %v", tc.username, err)
		}
		if p.MatrixUserID != tc.want {
			t.Errorf("%s: matrix id %s, want %s", tc.username, p.MatrixUserID, tc.want)
		}
		if p.Provisioned {
			t.Errorf("%s: new profile provisioned", tc.username)
		}
	}
	// A user that already holds "alice_2" keeps it; the next Alice skips it.
	u := putUser(t, s, "alice_2")
	p, _ := s.ProfileByUserID(ctx, u.ID)
	if p.MatrixUserID != "@alice_2_2:example.org" {
		t.Errorf("username alice_2 after Alice took alice_2: %s", p.MatrixUserID)
	}
}

// TestProfilesWaitForDomain: without a domain no profile is made; EnsureProfiles makes
// them later, for non-staff users and staff with a role only.
func TestProfilesWaitForDomain(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	u, _, err := s.PutUser(ctx, DirectoryUser{Username: "carol", IsActive: true}, ProfileRules{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ProfileByUserID(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("profile without a domain: %v", err)
	}
	staff := &User{Username: "admin", IsStaff: true, IsActive: true}
	if err := s.CreateUser(ctx, staff); err != nil {
		t.Fatal(err)
	}
	inactive, _, _ := s.PutUser(ctx, DirectoryUser{Username: "gone", IsActive: false}, ProfileRules{})
	n, err := s.EnsureProfiles(ctx, testRules)
	if err != nil || n != 1 {
		t.Fatalf("EnsureProfiles = %d, %v; want 1 (carol only)", n, err)
	}
	for _, id := range []int64{staff.ID, inactive.ID} {
		if _, err := s.ProfileByUserID(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("user %d got a profile: %v", id, err)
		}
	}
	// Staff with a role is a platform user too.
	p := putProject(t, s, "P")
	if err := s.SetRoles(ctx, p.ID, []RoleInput{{UserUUID: staff.UUID, Role: RoleAdmin}}, ProfileRules{}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EnsureProfiles(ctx, testRules); err != nil || n != 1 {
		t.Fatalf("EnsureProfiles for staff with a role = %d, %v", n, err)
	}
	if n, err := s.EnsureProfiles(ctx, testRules); err != nil || n != 0 {
		t.Fatalf("EnsureProfiles again = %d, %v; want 0", n, err)
	}
}

// TestPutUserIdempotent replays the same user and checks nothing changes the second time.
func TestPutUserIdempotent(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	in := DirectoryUser{UUID: "0123456789abcdef0123456789abcdef", Username: "dave", Email: "d@example.org", FullName: "Dave", IsActive: true}
	u1, created, err := s.PutUser(ctx, in, testRules)
	if err != nil || !created {
		t.Fatalf("first put: created=%v err=%v", created, err)
	}
	u2, created, err := s.PutUser(ctx, in, testRules)
	if err != nil || created {
		t.Fatalf("replay: created=%v err=%v", created, err)
	}
	if u1.ID != u2.ID || u2.ModifiedAt != u1.ModifiedAt || u2.Email != in.Email {
		t.Errorf("replay changed the user: %+v -> %+v", u1, u2)
	}
	n, total, _ := s.ListUsers(ctx, UserFilter{})
	if total != 1 || len(n) != 1 {
		t.Errorf("%d users after a replay, want 1", total)
	}
	// Another user taking dave's username conflicts.
	if _, _, err := s.PutUser(ctx, DirectoryUser{Username: "dave", IsActive: true}, testRules); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate username: %v, want ErrConflict", err)
	}
	other := putUser(t, s, "erin")
	if _, _, err := s.PutUser(ctx, DirectoryUser{UUID: other.UUID, Username: "dave", IsActive: true}, testRules); !errors.Is(err, ErrConflict) {
		t.Errorf("rename onto a taken username: %v, want ErrConflict", err)
	}
}

// TestDirtyMarks checks which writes queue a member sync of which rooms.
func TestDirtyMarks(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	a, b := putUser(t, s, "a"), putUser(t, s, "b")
	p1, p2 := putProject(t, s, "one"), putProject(t, s, "two")
	r1, err := s.CreateRoom(ctx, p1.ID)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.CreateRoom(ctx, p2.ID)
	if err != nil {
		t.Fatal(err)
	}
	clean := func() {
		t.Helper()
		if _, err := s.w.Exec(`UPDATE matrix_rooms SET state = 'active', members_dirty = 0`); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name   string
		do     func() error
		d1, d2 int
	}{
		{"add a to one", func() error { _, err := s.PutRole(ctx, p1.ID, RoleInput{a.UUID, RoleMember}, testRules); return err }, 1, 0},
		{"same role again", func() error { _, err := s.PutRole(ctx, p1.ID, RoleInput{a.UUID, RoleMember}, testRules); return err }, 0, 0},
		{"promote a", func() error { _, err := s.PutRole(ctx, p1.ID, RoleInput{a.UUID, RoleAdmin}, testRules); return err }, 1, 0},
		{"set two's list", func() error {
			return s.SetRoles(ctx, p2.ID, []RoleInput{{a.UUID, RoleMember}, {b.UUID, RoleManager}}, testRules)
		}, 0, 1},
		{"same list again", func() error {
			return s.SetRoles(ctx, p2.ID, []RoleInput{{b.UUID, RoleManager}, {a.UUID, RoleMember}}, testRules)
		}, 0, 0},
		{"deactivate a", func() error {
			_, _, err := s.PutUser(ctx, DirectoryUser{UUID: a.UUID, Username: "a", FullName: "Full a", IsActive: false}, testRules)
			return err
		}, 1, 1},
		{"rename b", func() error {
			_, _, err := s.PutUser(ctx, DirectoryUser{UUID: b.UUID, Username: "b", FullName: "Bee", IsActive: true}, testRules)
			return err
		}, 0, 0},
		{"remove b from two", func() error { return s.DeleteRole(ctx, p2.ID, b.UUID) }, 0, 1},
		{"rename project one", func() error {
			_, _, err := s.PutProject(ctx, DirectoryProject{UUID: p1.UUID, Name: "uno"}, false)
			return err
		}, 1, 0},
		{"describe project two", func() error {
			_, _, err := s.PutProject(ctx, DirectoryProject{UUID: p2.UUID, Name: "two", Description: "d"}, false)
			return err
		}, 0, 0},
	}
	for _, st := range steps {
		clean()
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if d1, d2 := roomDirty(t, s, r1.ID), roomDirty(t, s, r2.ID); d1 != st.d1 || d2 != st.d2 {
			t.Errorf("%s: dirty = %d, %d; want %d, %d", st.name, d1, d2, st.d1, st.d2)
		}
	}
	if err := s.DeleteRole(ctx, p2.ID, b.UUID); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing a missing role: %v", err)
	}
	// Renaming b re-queued b's profile (new display name).
	var prov int
	s.r.QueryRow(`SELECT provisioned FROM matrix_user_profiles WHERE user_id = ?`, b.ID).Scan(&prov)
	if prov != 0 {
		t.Error("rename did not re-queue the profile")
	}
}

func TestSetRolesUnknownUserChangesNothing(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	a := putUser(t, s, "a")
	p := putProject(t, s, "p")
	if err := s.SetRoles(ctx, p.ID, []RoleInput{{a.UUID, RoleMember}}, testRules); err != nil {
		t.Fatal(err)
	}
	err := s.SetRoles(ctx, p.ID, []RoleInput{{"ffffffffffffffffffffffffffffffff", RoleMember}}, testRules)
	var uu *UnknownUserError
	if !errors.As(err, &uu) || uu.UUID != "ffffffffffffffffffffffffffffffff" {
		t.Fatalf("unknown user: %v", err)
	}
	roles, _ := s.ListRoles(ctx, p.ID)
	if len(roles) != 1 || roles[0].Username != "a" {
		t.Errorf("a failed SetRoles changed the roles: %+v", roles)
	}
}

func TestRoomsOnePerProjectAndListFilters(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	var rooms []*Room
	for i := range 7 {
		p := putProject(t, s, fmt.Sprintf("Project %d", i))
		r, err := s.CreateRoom(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != RoomCreating || r.RoomName != p.Name || r.ProjectUUID != p.UUID {
			t.Errorf("new room: %+v", r)
		}
		if _, err := s.CreateRoom(ctx, p.ID); !errors.Is(err, ErrConflict) {
			t.Fatalf("second room: %v", err)
		}
		rooms = append(rooms, r)
	}
	s.w.Exec(`UPDATE matrix_rooms SET state = 'active', room_id = '!abc' || id || ':example.org' WHERE id IN (?, ?, ?)`, rooms[0].ID, rooms[2].ID, rooms[4].ID)
	s.w.Exec(`UPDATE matrix_rooms SET state = 'error' WHERE id = ?`, rooms[6].ID)
	for _, tc := range []struct {
		name      string
		f         RoomFilter
		wantTotal int
		wantIDs   []int64
	}{
		{"all", RoomFilter{}, 7, []int64{rooms[0].ID, rooms[1].ID, rooms[2].ID, rooms[3].ID, rooms[4].ID, rooms[5].ID, rooms[6].ID}},
		{"page 1 of 3", RoomFilter{Page: Page{1, 3}}, 7, []int64{rooms[0].ID, rooms[1].ID, rooms[2].ID}},
		{"page 3 of 3", RoomFilter{Page: Page{3, 3}}, 7, []int64{rooms[6].ID}},
		{"beyond", RoomFilter{Page: Page{4, 3}}, 7, nil},
		{"active", RoomFilter{State: RoomActive}, 3, []int64{rooms[0].ID, rooms[2].ID, rooms[4].ID}},
		{"error", RoomFilter{State: RoomError}, 1, []int64{rooms[6].ID}},
		{"project", RoomFilter{ProjectUUID: rooms[3].ProjectUUID}, 1, []int64{rooms[3].ID}},
		{"search name", RoomFilter{Search: "project 5"}, 1, []int64{rooms[5].ID}},
		{"search room id", RoomFilter{Search: fmt.Sprintf("!abc%d:", rooms[2].ID)}, 1, []int64{rooms[2].ID}},
		{"search is literal", RoomFilter{Search: "%"}, 0, nil},
		{"active and search", RoomFilter{State: RoomActive, Search: "Project 1"}, 0, nil},
	} {
		got, total, err := s.ListRooms(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ids []int64
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if total != tc.wantTotal || fmt.Sprint(ids) != fmt.Sprint(tc.wantIDs) {
			t.Errorf("%s: total %d ids %v, want %d %v", tc.name, total, ids, tc.wantTotal, tc.wantIDs)
		}
	}
}

// TestClaimProtocol: a write during a sync is not lost when the sync finishes, and a crash
// leaves a claim that RecoverClaims puts back.
func TestClaimProtocol(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	p := putProject(t, s, "p")
	r, _ := s.CreateRoom(ctx, p.ID)
	due, err := s.DueRooms(ctx, now(), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due: %v %v", due, err)
	}
	if _, err := s.ClaimRoom(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if d := roomDirty(t, s, r.ID); d != 2 {
		t.Fatalf("claimed: dirty %d", d)
	}
	if err := s.SetRoomHomeserverID(ctx, r.ID, "!r:example.org", "#waldur-x:example.org", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRoomSync(ctx, r.ID, "p"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.RoomByID(ctx, r.ID)
	if got.State != RoomActive || got.MembersDirty || got.RoomID != "!r:example.org" {
		t.Fatalf("after creation: %+v", got)
	}
	if due, _ := s.DueRooms(ctx, now(), 10); len(due) != 0 {
		t.Fatalf("clean active room is due: %v", due)
	}
	if _, err := s.ClaimRoom(ctx, r.ID); !errors.Is(err, ErrRoomNotQueued) {
		t.Fatalf("claim of a clean room: %v", err)
	}

	// A role change arrives while a sync runs: the room stays queued.
	a := putUser(t, s, "a")
	s.PutRole(ctx, p.ID, RoleInput{a.UUID, RoleMember}, testRules)
	if _, err := s.ClaimRoom(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	s.PutRole(ctx, p.ID, RoleInput{a.UUID, RoleAdmin}, testRules)
	s.FinishRoomSync(ctx, r.ID, "p")
	if d := roomDirty(t, s, r.ID); d != 1 {
		t.Fatalf("write during sync lost: dirty %d", d)
	}

	// A crash mid-sync leaves 2; RecoverClaims makes it due again.
	s.ClaimRoom(ctx, r.ID)
	if due, _ := s.DueRooms(ctx, now(), 10); len(due) != 0 {
		t.Fatal("claimed room is due twice")
	}
	if n, err := s.RecoverClaims(ctx); err != nil || n != 1 {
		t.Fatalf("RecoverClaims = %d, %v", n, err)
	}
	if due, _ := s.DueRooms(ctx, now(), 10); len(due) != 1 {
		t.Fatal("recovered room not due")
	}
}

func TestFailRoomBacksOffThenErrors(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	p := putProject(t, s, "p")
	r, _ := s.CreateRoom(ctx, p.ID)
	backoff := func(n int) time.Duration { return time.Duration(n) * time.Hour }
	for i := 1; i <= 2; i++ {
		s.ClaimRoom(ctx, r.ID)
		gaveUp, err := s.FailRoom(ctx, r.ID, "M_UNKNOWN: boom", 3, backoff)
		if err != nil || gaveUp {
			t.Fatalf("attempt %d: gaveUp=%v err=%v", i, gaveUp, err)
		}
		got, _ := s.RoomByID(ctx, r.ID)
		if got.State != RoomCreating || got.Attempts != i || got.ErrorMessage != "M_UNKNOWN: boom" || !got.MembersDirty {
			t.Fatalf("after attempt %d: %+v", i, got)
		}
		if wait := time.Until(got.NextAttemptAt); wait < time.Duration(i)*time.Hour-time.Minute {
			t.Fatalf("after attempt %d: next attempt in %s", i, wait)
		}
		if due, _ := s.DueRooms(ctx, now(), 10); len(due) != 0 {
			t.Fatal("backing-off room is due")
		}
	}
	gaveUp, err := s.FailRoom(ctx, r.ID, "M_UNKNOWN: boom", 3, backoff)
	if err != nil || !gaveUp {
		t.Fatalf("last attempt: gaveUp=%v err=%v", gaveUp, err)
	}
	got, _ := s.RoomByID(ctx, r.ID)
	if got.State != RoomError || got.ErrorMessage != "M_UNKNOWN: boom" {
		t.Fatalf("gave up: %+v", got)
	}
}

// TestReprovisionTransaction: exact counts, other states untouched, members reset, dry
// run changes nothing, and progress counts the run.
func TestReprovisionTransaction(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	if _, err := s.LastReprovision(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("progress before any run: %v", err)
	}
	states := []RoomState{RoomActive, RoomActive, RoomActive, RoomCreating, RoomDisabling, RoomArchived, RoomError}
	var ids []int64
	for i, st := range states {
		p := putProject(t, s, fmt.Sprintf("p%d", i))
		u := putUser(t, s, fmt.Sprintf("u%d", i))
		s.PutRole(ctx, p.ID, RoleInput{u.UUID, RoleMember}, testRules)
		r, _ := s.CreateRoom(ctx, p.ID)
		s.w.Exec(`UPDATE matrix_rooms SET state = ?, room_id = ?, room_alias = ?, members_dirty = 0 WHERE id = ?`,
			string(st), fmt.Sprintf("!r%d:old", i), fmt.Sprintf("#waldur-%d:old", i), r.ID)
		s.SaveMembers(ctx, r.ID, []MemberSync{{UserID: u.ID, Membership: "join"}}, nil)
		ids = append(ids, r.ID)
	}
	s.w.Exec(`UPDATE matrix_user_profiles SET provisioned = 1, provisioned_at = 1 WHERE user_id IN (SELECT id FROM users WHERE username IN ('u0','u1','u2','u3'))`)

	snapshot := func() string {
		var out string
		rows, _ := s.r.Query(`SELECT id, state, room_id, room_alias, members_dirty FROM matrix_rooms ORDER BY id`)
		defer rows.Close()
		for rows.Next() {
			var id, d int
			var st, rid, al string
			rows.Scan(&id, &st, &rid, &al, &d)
			out += fmt.Sprintf("%d %s %s %s %d;", id, st, rid, al, d)
		}
		var prov int
		s.r.QueryRow(`SELECT COUNT(*) FROM matrix_user_profiles WHERE provisioned = 1`).Scan(&prov)
		return out + fmt.Sprint(prov)
	}
	before := snapshot()
	c, err := s.Reprovision(ctx, true)
	if err != nil || c.Rooms != 3 || c.Users != 4 {
		t.Fatalf("dry run: %+v, %v", c, err)
	}
	if after := snapshot(); after != before {
		t.Fatalf("dry run changed data:\n%s\n%s", before, after)
	}
	if _, err := s.LastReprovision(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("dry run recorded a run: %v", err)
	}

	c, err = s.Reprovision(ctx, false)
	if err != nil || c.Rooms != 3 || c.Users != 4 {
		t.Fatalf("reprovision: %+v, %v", c, err)
	}
	for i, pk := range ids {
		r, _ := s.RoomByID(ctx, pk)
		if states[i] == RoomActive {
			if r.State != RoomCreating || r.RoomID != "" || r.RoomAlias != "" || !r.MembersDirty {
				t.Errorf("room %d: %+v", i, r)
			}
			members, _ := s.RoomMembers(ctx, pk)
			if len(members) != 1 || members[0].Membership != "" {
				t.Errorf("room %d members not reset: %+v", i, members[0])
			}
			continue
		}
		if r.State != states[i] || r.RoomID != id.RoomID(fmt.Sprintf("!r%d:old", i)) {
			t.Errorf("room %d in %s was touched: %+v", i, states[i], r)
		}
	}
	var prov int
	s.r.QueryRow(`SELECT COUNT(*) FROM matrix_user_profiles WHERE provisioned = 1`).Scan(&prov)
	if prov != 0 {
		t.Errorf("%d profiles still provisioned", prov)
	}
	pr, err := s.LastReprovision(ctx)
	if err != nil || pr.Rooms != 3 || pr.Users != 4 || pr.RoomsRemaining != 3 || pr.RoomsDone != 0 || pr.UsersRemaining != 4 {
		t.Fatalf("progress: %+v, %v", pr, err)
	}
	s.FinishRoomSync(ctx, ids[0], "p0")
	s.FailRoom(ctx, ids[1], "x", 1, func(int) time.Duration { return 0 })
	s.MarkProfileProvisioned(ctx, ids[0], "Full u0") // user and room ids coincide here: both 1
	pr, _ = s.LastReprovision(ctx)
	if pr.RoomsRemaining != 1 || pr.RoomsDone != 1 || pr.RoomsErrored != 1 || pr.UsersDone != 1 || pr.UsersRemaining != 3 {
		t.Errorf("progress after work: %+v", pr)
	}
	// Nothing active: a second run resets nothing.
	if c, _ := s.Reprovision(ctx, false); c.Rooms != 1 || c.Users != 1 {
		t.Errorf("second run: %+v (want the one room and user that became active/provisioned again)", c)
	}
}

// TestSaveMembersKeepsOnlyWhatTheSyncSaw: a sync's rows replace the room's; a former
// member whose removal failed stays listed (without a role) until the next sync gets them out.
func TestSaveMembersKeepsOnlyWhatTheSyncSaw(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	a, b, c := putUser(t, s, "a"), putUser(t, s, "b"), putUser(t, s, "c")
	p := putProject(t, s, "p")
	s.SetRoles(ctx, p.ID, []RoleInput{{a.UUID, RoleAdmin}, {b.UUID, RoleMember}, {c.UUID, RoleMember}}, testRules)
	r, _ := s.CreateRoom(ctx, p.ID)
	all := []MemberSync{{UserID: a.ID, Membership: "join", PowerLevel: 50}, {UserID: b.ID, Membership: "join"}, {UserID: c.ID, Membership: "join"}}
	if err := s.SaveMembers(ctx, r.ID, all, nil); err != nil {
		t.Fatal(err)
	}
	// b and c lose their role; kicking c failed.
	s.SetRoles(ctx, p.ID, []RoleInput{{a.UUID, RoleAdmin}}, testRules)
	if err := s.SaveMembers(ctx, r.ID, all[:1], []int64{c.ID}); err != nil {
		t.Fatal(err)
	}
	members, err := s.RoomMembers(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range members {
		got = append(got, fmt.Sprintf("%s:%s:%s:%d", m.Username, m.Role, m.Membership, m.PowerLevel))
	}
	if want := "[a:PROJECT.ADMIN:join:50 c::join:0]"; fmt.Sprint(got) != want {
		t.Errorf("members %v, want %s", got, want)
	}
}
