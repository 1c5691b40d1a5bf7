package db

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
)

// testNotices words role notifications plainly, for the store's own tests.
type testNotices struct{}

func (testNotices) RoleGranted(name, role string) string { return name + " +" + role }
func (testNotices) RoleRevoked(name, role string) string { return name + " -" + role }

// activate gives a room a Matrix room id and makes it active, as the worker would.
func activate(t *testing.T, s *Store, r *Room) {
	t.Helper()
	ctx := context.Background()
	if err := s.SetRoomHomeserverID(ctx, r.ID, id.RoomID("!"+r.UUID[:8]+":example.org"), "", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRoomSync(ctx, r.ID, "room"); err != nil {
		t.Fatal(err)
	}
}

func bodies(t *testing.T, s *Store, roomPK int64) []string {
	t.Helper()
	msgs, err := s.RoomOutbox(context.Background(), roomPK, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(msgs) - 1; i >= 0; i-- {
		out = append(out, msgs[i].Body)
	}
	return out
}

// TestMigrationRewritesRoleNames: roles stored before the platform's names were adopted
// read as PROJECT.ADMIN, PROJECT.MANAGER and PROJECT.MEMBER after the migration.
func TestMigrationRewritesRoleNames(t *testing.T) {
	ctx := context.Background()
	s, err := OpenNoMigrate(filepath.Join(t.TempDir(), "old.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	mine := slices.IndexFunc(ms, func(m migration) bool { return strings.HasSuffix(m.name, "_platform_sync.sql") })
	if mine < 0 {
		t.Fatal("no platform_sync migration")
	}
	if err := s.MigrateTo(ctx, ms[mine].version-1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO projects (uuid, name, created_at, modified_at) VALUES ('p', 'P', 0, 0);
		INSERT INTO users (uuid, username, created_at, modified_at) VALUES ('a', 'a', 0, 0), ('b', 'b', 0, 0), ('c', 'c', 0, 0);
		INSERT INTO project_roles (project_id, user_id, role, created_at) VALUES (1, 1, 'admin', 0), (1, 2, 'manager', 0), (1, 3, 'member', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	roles, err := s.ListRoles(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range roles {
		got = append(got, r.Username+":"+r.Role)
	}
	if want := "[a:PROJECT.ADMIN b:PROJECT.MANAGER c:PROJECT.MEMBER]"; fmt.Sprint(got) != want {
		t.Errorf("roles %v, want %s", got, want)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE project_roles SET role = 'admin'`); err == nil {
		t.Error("the old spelling can still be stored")
	}
}

// TestRoomMembersIncludeCustomerOwners: a room's people are the project's role holders
// and the owners of its customer, one row each with the role that weighs most; moving
// the project to another customer, or changing owners, re-syncs the room.
func TestRoomMembersIncludeCustomerOwners(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	a, b, c, d := putUser(t, s, "a"), putUser(t, s, "b"), putUser(t, s, "c"), putUser(t, s, "d")
	acme, _, err := s.PutCustomer(ctx, DirectoryCustomer{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := s.PutCustomer(ctx, DirectoryCustomer{Name: "Other"})
	p, _, err := s.PutProject(ctx, DirectoryProject{Name: "P", CustomerUUID: acme.UUID}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoles(ctx, p.ID, []RoleInput{{a.UUID, "admin"}, {b.UUID, RoleMember}, {c.UUID, RoleManager}}, testRules); err != nil {
		t.Fatal(err)
	}
	// a is admin and owner (admin wins), b member and owner (owner wins), d only owner.
	if err := s.SetCustomerOwners(ctx, acme.UUID, []string{a.UUID, b.UUID, d.UUID}, testRules); err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	members := func() string {
		ms, err := s.DesiredMembers(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Username+":"+m.Role)
		}
		return fmt.Sprint(out)
	}
	if got, want := members(), "[a:PROJECT.ADMIN b:CUSTOMER.OWNER c:PROJECT.MANAGER d:CUSTOMER.OWNER]"; got != want {
		t.Errorf("members %s, want %s", got, want)
	}
	rm, err := s.RoomMembers(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rm) != 4 || rm[3].Username != "d" || rm[3].PowerLevel != 50 || rm[2].PowerLevel != 0 {
		t.Errorf("room members %+v", rm)
	}
	if role, err := s.SenderProjectRole(ctx, p.ID, "@d:example.org"); err != nil || role != RoleCustomerOwner {
		t.Errorf("d's role for the bot: %q %v", role, err)
	}
	bm, err := s.BotRoomMembers(ctx, r.ID)
	if err != nil || len(bm) != 4 {
		t.Errorf("bot members %+v %v", bm, err)
	}
	// The room is in sync; moving the project to another customer changes its people.
	s.ClaimRoom(ctx, r.ID)
	s.FinishRoomSync(ctx, r.ID, "P")
	if _, _, err := s.PutProject(ctx, DirectoryProject{UUID: p.UUID, Name: "P", CustomerUUID: other.UUID}, false); err != nil {
		t.Fatal(err)
	}
	if roomDirty(t, s, r.ID) != 1 {
		t.Error("moving the project did not queue its room")
	}
	if got, want := members(), "[a:PROJECT.ADMIN b:PROJECT.MEMBER c:PROJECT.MANAGER]"; got != want {
		t.Errorf("members after the move %s, want %s", got, want)
	}
	s.ClaimRoom(ctx, r.ID)
	s.FinishRoomSync(ctx, r.ID, "P")
	if _, err := s.PutCustomerOwner(ctx, other.UUID, d.UUID, testRules); err != nil {
		t.Fatal(err)
	}
	if roomDirty(t, s, r.ID) != 1 {
		t.Error("a new owner did not queue the rooms of the customer's projects")
	}
	// A deactivated owner leaves: their rooms are queued.
	s.ClaimRoom(ctx, r.ID)
	s.FinishRoomSync(ctx, r.ID, "P")
	if _, _, err := s.PutUser(ctx, DirectoryUser{UUID: d.UUID, Username: "d", FullName: "Full d", IsActive: false}, testRules); err != nil {
		t.Fatal(err)
	}
	if roomDirty(t, s, r.ID) != 1 {
		t.Error("deactivating an owner did not queue their rooms")
	}
	if got, want := members(), "[a:PROJECT.ADMIN b:PROJECT.MEMBER c:PROJECT.MANAGER]"; got != want {
		t.Errorf("members %s, want %s", got, want)
	}
}

// TestRoleWritesAnnounceThemselves: every role write queues its notification in the
// project's active room, in the same transaction; without notices, or without an
// active room, nothing is queued.
func TestRoleWritesAnnounceThemselves(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	a, b := putUser(t, s, "a"), putUser(t, s, "b")
	acme, _, _ := s.PutCustomer(ctx, DirectoryCustomer{Name: "Acme"})
	p, _, _ := s.PutProject(ctx, DirectoryProject{Name: "P", CustomerUUID: acme.UUID}, false)
	r, _ := s.CreateRoom(ctx, p.ID)
	if _, err := s.PutRole(ctx, p.ID, RoleInput{a.UUID, RoleMember}, testRules); err != nil {
		t.Fatal(err)
	}
	activate(t, s, r)
	if _, err := s.PutRole(ctx, p.ID, RoleInput{b.UUID, RoleMember}, testRules); err != nil {
		t.Fatal(err)
	}
	if got := bodies(t, s, r.ID); len(got) != 0 {
		t.Errorf("queued without notices: %q", got)
	}
	s.SetRoleNotices(testNotices{})
	steps := []func() error{
		func() error { _, err := s.PutRole(ctx, p.ID, RoleInput{a.UUID, RoleAdmin}, testRules); return err },
		func() error { _, err := s.PutRole(ctx, p.ID, RoleInput{a.UUID, "ADMIN"}, testRules); return err }, // no change
		func() error { return s.SetRoles(ctx, p.ID, []RoleInput{{a.UUID, RoleAdmin}}, testRules) },
		func() error { return s.DeleteRole(ctx, p.ID, a.UUID) },
		func() error { _, err := s.PutCustomerOwner(ctx, acme.UUID, b.UUID, testRules); return err },
		func() error { return s.DeleteCustomerOwner(ctx, acme.UUID, b.UUID) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := []string{"Full a -PROJECT.MEMBER", "Full a +PROJECT.ADMIN", "Full b -PROJECT.MEMBER", "Full a -PROJECT.ADMIN",
		"Full b +CUSTOMER.OWNER", "Full b -CUSTOMER.OWNER"}
	if got := bodies(t, s, r.ID); !slices.Equal(got, want) {
		t.Errorf("notifications %q, want %q", got, want)
	}
	if err := s.DeleteRole(ctx, p.ID, a.UUID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete a role that is not there: %v", err)
	}
	if _, err := s.PutRole(ctx, p.ID, RoleInput{a.UUID, RoleCustomerOwner}, testRules); !errors.Is(err, ErrBadRole) {
		t.Errorf("CUSTOMER.OWNER as a project role: %v", err)
	}
}

// TestSyncPutUsersSkipsWhatItCannotWrite: a username another account holds skips that
// user, reported, and the others are written in the same transaction.
func TestSyncPutUsersSkipsWhatItCannotWrite(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	pushed := putUser(t, s, "bob")
	putUser(t, s, "dave") // pushed, not on the platform
	staff := &User{Username: "root", IsStaff: true, IsActive: true}
	if err := s.CreateUser(ctx, staff); err != nil {
		t.Fatal(err)
	}
	in := []DirectoryUser{
		{UUID: NewUUID(), Username: "dave", IsActive: true},   // taken by a pushed user
		{UUID: NewUUID(), Username: "bob", IsActive: true},    // freed in the same run (bob is renamed)
		{UUID: staff.UUID, Username: "root2", IsActive: true}, // a staff account's uuid
		{UUID: NewUUID(), Username: "carol", IsActive: true},
		{UUID: pushed.UUID, Username: "bobby", IsActive: true}, // adopted and renamed
	}
	n, skipped, err := s.SyncPutUsers(ctx, in, testRules)
	if err != nil {
		t.Fatal(err)
	}
	if n.Created != 2 || n.Updated != 1 || len(skipped) != 2 || skipped[0].Username != "dave" {
		t.Errorf("counts %+v, skipped %+v", n, skipped)
	}
	u, err := s.UserByUUID(ctx, pushed.UUID)
	if err != nil || u.Username != "bobby" || u.Source != SourceWaldur {
		t.Errorf("adopted user %+v %v", u, err)
	}
	if u, _ := s.UserByUUID(ctx, staff.UUID); u.Username != "root" || u.Source != SourceAPI {
		t.Errorf("the staff account changed: %+v", u)
	}
	var owned *OwnedError
	if _, _, err := s.PutUser(ctx, DirectoryUser{UUID: pushed.UUID, Username: "x", IsActive: true}, testRules); !errors.As(err, &owned) || owned.Kind != "user" {
		t.Errorf("API write to a synced user: %v", err)
	}
}

// TestSyncRuns: a run's record from start to finish, which runs the lists show, what
// pruning keeps, and runs a stopped process left unfinished.
func TestSyncRuns(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	if _, err := s.LastSyncRun(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("no runs: %v", err)
	}
	old := time.Now().Add(-40 * 24 * time.Hour)
	full, _ := s.StartSyncRun(ctx, SyncFull, old)
	counts := SyncCounts{Users: SyncCount{Created: 3}, Roles: SyncCount{Removed: 1}}
	if err := s.FinishSyncRun(ctx, full, SyncFull, old.Add(time.Second), "", counts, 12); err != nil {
		t.Fatal(err)
	}
	quiet, _ := s.StartSyncRun(ctx, SyncIncremental, old.Add(time.Minute))
	s.FinishSyncRun(ctx, quiet, SyncIncremental, old.Add(time.Minute), "", SyncCounts{}, 4)
	busy, _ := s.StartSyncRun(ctx, SyncIncremental, old.Add(2*time.Minute))
	s.FinishSyncRun(ctx, busy, SyncIncremental, old.Add(2*time.Minute), "", SyncCounts{Projects: SyncCount{Updated: 1}}, 4)
	bad, _ := s.StartSyncRun(ctx, SyncFull, time.Now())
	s.FinishSyncRun(ctx, bad, SyncFull, time.Now(), "token rejected: x", SyncCounts{}, 1)
	running, _ := s.StartSyncRun(ctx, SyncIncremental, time.Now())

	last, err := s.LastSyncRun(ctx, "")
	if err != nil || last.ID != running || last.Finished() {
		t.Errorf("last run %+v %v", last, err)
	}
	if r, _ := s.LastFinishedSyncRun(ctx, ""); r.ID != bad || r.OK || r.Error != "token rejected: x" {
		t.Errorf("last finished %+v", r)
	}
	if r, _ := s.LastOKSyncRun(ctx, SyncFull); r.ID != full || r.Counts != counts || r.Requests != 12 {
		t.Errorf("last ok full %+v", r)
	}
	recent, _ := s.RecentSyncRuns(ctx, 10)
	var ids []int64
	for _, r := range recent {
		ids = append(ids, r.ID)
	}
	if want := []int64{running, bad, busy, full}; !slices.Equal(ids, want) {
		t.Errorf("recent %v, want %v (the quiet incremental run is left out)", ids, want)
	}
	n, err := s.PruneSyncRuns(ctx, time.Now().Add(-30*24*time.Hour))
	if err != nil || n != 2 {
		t.Errorf("pruned %d %v, want the two old incremental runs", n, err)
	}
	if r, _ := s.LastOKSyncRun(ctx, SyncFull); r == nil || r.ID != full {
		t.Error("the last successful full run was pruned")
	}
	if n, _ := s.AbandonSyncRuns(ctx, time.Now()); n != 1 {
		t.Errorf("abandoned %d", n)
	}
	if r, _ := s.LastSyncRun(ctx, ""); !r.Finished() || r.OK || !strings.Contains(r.Error, "interrupted") {
		t.Errorf("abandoned run %+v", r)
	}
}

// TestPlatformEventQueue: events are stored and counted, due in order, retried later,
// finished, and pruned once done.
func TestPlatformEventQueue(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	a, _ := s.InsertPlatformEvent(ctx, "role_granted", "role", "application/json", []byte(`{"a":1}`), EventPending)
	b, _ := s.InsertPlatformEvent(ctx, "role_revoked", "role", "application/json", []byte(`{"b":1}`), EventPending)
	if _, err := s.InsertPlatformEvent(ctx, "resource_created", "other", "", []byte(`{}`), EventIgnored); err != nil {
		t.Fatal(err)
	}
	st, _ := s.PlatformEventStats(ctx)
	if st.Received != 3 || st.Pending != 2 || st.LastAt.IsZero() {
		t.Errorf("stats %+v", st)
	}
	due, _ := s.DuePlatformEvents(ctx, time.Now(), 10)
	if len(due) != 2 || due[0].ID != a || string(due[1].Body) != `{"b":1}` {
		t.Fatalf("due %+v", due)
	}
	if err := s.RetryPlatformEvent(ctx, a, "platform unavailable", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishPlatformEvent(ctx, b, EventApplied, ""); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DuePlatformEvents(ctx, time.Now(), 10)
	if len(due) != 0 {
		t.Errorf("due after retry and finish: %+v", due)
	}
	if at, ok, _ := s.NextPlatformEventDue(ctx); !ok || at.Before(time.Now().Add(59*time.Minute)) {
		t.Errorf("next due %v %v", at, ok)
	}
	due, _ = s.DuePlatformEvents(ctx, time.Now().Add(2*time.Hour), 10)
	if len(due) != 1 || due[0].Attempts != 1 || due[0].Error != "platform unavailable" {
		t.Errorf("retried event %+v", due)
	}
	if n, _ := s.PrunePlatformEvents(ctx, time.Now().Add(time.Minute)); n != 2 {
		t.Errorf("pruned %d, want the applied and the ignored one", n)
	}
	if st, _ := s.PlatformEventStats(ctx); st.Received != 3 || st.Pending != 1 {
		t.Errorf("stats after pruning %+v", st)
	}
}

// TestAnnounceOrderState: each state of an order is announced once, only in an active
// room; a state without text is recorded, not announced.
func TestAnnounceOrderState(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	p := putProject(t, s, "P")
	r, _ := s.CreateRoom(ctx, p.ID)
	order := NewUUID()
	if q, err := s.AnnounceOrderState(ctx, p.UUID, order, "pending-consumer", ""); err != nil || q {
		t.Errorf("pending: %v %v", q, err)
	}
	if q, _ := s.AnnounceOrderState(ctx, p.UUID, order, "executing", "approved"); q {
		t.Error("announced into a room that is not active")
	}
	activate(t, s, r)
	if q, _ := s.AnnounceOrderState(ctx, p.UUID, order, "executing", "approved"); q {
		t.Error("the same state announced twice")
	}
	if q, err := s.AnnounceOrderState(ctx, p.UUID, order, "done", "completed"); err != nil || !q {
		t.Errorf("done: %v %v", q, err)
	}
	if q, _ := s.AnnounceOrderState(ctx, p.UUID, order, "done", "completed"); q {
		t.Error("done announced twice")
	}
	if got := bodies(t, s, r.ID); !slices.Equal(got, []string{"completed"}) {
		t.Errorf("room got %q", got)
	}
}
