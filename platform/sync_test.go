package platform_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"matrixas/db"
	"matrixas/internal/fakewaldur"
	"matrixas/platform"
	"matrixas/waldur"
)

// TestFullSyncMirrorsThePlatform: customers, projects, users and the mirrored roles land
// in the store, owned by the sync; other roles and expired grants do not; a second run
// finds nothing to do.
func TestFullSyncMirrorsThePlatform(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	res := e.full()
	want := db.SyncCounts{
		Customers: db.SyncCount{Created: 2},
		Users:     db.SyncCount{Created: 6},
		Projects:  db.SyncCount{Created: 3},
		Roles:     db.SyncCount{Created: 8}, // 7 project roles + 1 owner
	}
	if res.Counts != want {
		t.Errorf("counts %+v, want %+v", res.Counts, want)
	}
	if got := e.roles(w.p1.UUID); fmt.Sprint(got) != "[adam:PROJECT.ADMIN max:PROJECT.MEMBER mia:PROJECT.MANAGER]" {
		t.Errorf("Apollo's roles %v", got)
	}
	if got := e.roles(w.p3.UUID); fmt.Sprint(got) != "[ivy:PROJECT.MEMBER nils:PROJECT.MEMBER]" {
		t.Errorf("Cygnus's roles %v (the expired grant must be left out)", got)
	}
	if got := e.owners(w.c1.UUID); fmt.Sprint(got) != "[olga]" {
		t.Errorf("Acme's owners %v", got)
	}
	if got := e.owners(w.c2.UUID); len(got) != 0 {
		t.Errorf("Globex's owners %v: CUSTOMER.SUPPORT is not mirrored", got)
	}
	p, err := e.store.ProjectByUUID(e.ctx, w.p2.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != db.SourceWaldur || p.CustomerUUID != w.c1.UUID || p.CustomerName != "Acme" {
		t.Errorf("Borealis: source %q, customer %q %q", p.Source, p.CustomerUUID, p.CustomerName)
	}
	ivy, err := e.store.UserByUUID(e.ctx, w.u[5].UUID)
	if err != nil {
		t.Fatal(err)
	}
	if ivy.IsActive || ivy.Source != db.SourceWaldur || ivy.FullName != "ivy Tester" || ivy.Email != "ivy@example.org" {
		t.Errorf("ivy: %+v", ivy)
	}
	if e.woken == 0 {
		t.Error("the provisioning worker was not woken")
	}

	before := e.state()
	again := e.full()
	if again.Counts.Total() != 0 {
		t.Errorf("second run changed %+v", again.Counts)
	}
	if after := e.state(); after != before {
		t.Errorf("second run changed the store:\n%s\nvs\n%s", before, after)
	}
	run, err := e.store.LastSyncRun(e.ctx, db.SyncFull)
	if err != nil || !run.OK || run.Requests == 0 {
		t.Errorf("last run %+v, %v", run, err)
	}
}

// TestRoomMembersAreRoleHoldersAndOwners: a project room's members are its role holders
// and its customer's owners, at the reference's power levels (admins and owners 50,
// managers and members 0); an owner who is also a project member counts as owner.
func TestRoomMembersAreRoleHoldersAndOwners(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.fake.Grant(fakewaldur.Permission{UserUUID: w.u[0].UUID, Role: "PROJECT.MEMBER", ScopeType: "project", ScopeUUID: w.p1.UUID})
	e.full()
	members := func(projectUUID string) string {
		p, err := e.store.ProjectByUUID(e.ctx, projectUUID)
		if err != nil {
			t.Fatal(err)
		}
		room, err := e.store.CreateRoom(e.ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := e.store.DesiredMembers(e.ctx, room.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%s:%s:%d", m.Username, m.Role, db.RolePowerLevel(m.Role)))
		}
		return fmt.Sprint(out)
	}
	if got, want := members(w.p1.UUID), "[adam:PROJECT.ADMIN:50 max:PROJECT.MEMBER:0 mia:PROJECT.MANAGER:0 olga:CUSTOMER.OWNER:50]"; got != want {
		t.Errorf("Apollo's room: %s, want %s", got, want)
	}
	if got, want := members(w.p2.UUID), "[max:PROJECT.ADMIN:50 nils:PROJECT.MEMBER:0 olga:CUSTOMER.OWNER:50]"; got != want {
		t.Errorf("Borealis's room: %s, want %s", got, want)
	}
	// ivy is inactive: not in the room although she holds a role.
	if got, want := members(w.p3.UUID), "[nils:PROJECT.MEMBER:0]"; got != want {
		t.Errorf("Cygnus's room: %s, want %s", got, want)
	}
}

// TestFullSyncAppliesWhatChanged: renamed, moved, revoked, changed, expired and removed
// things on the platform are mirrored by the next full run, each counted.
func TestFullSyncAppliesWhatChanged(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	f := e.fake
	f.UpdateProject(w.p2.UUID, func(p *fakewaldur.Project) { p.Name = "Borealis II"; p.CustomerUUID = w.c2.UUID })
	f.UpdateUser(w.u[4].UUID, func(u *fakewaldur.User) { u.Active = false })
	f.Revoke(w.u[3].UUID, "PROJECT.MEMBER", w.p1.UUID)
	f.Revoke(w.u[2].UUID, "PROJECT.MANAGER", w.p1.UUID)
	f.Grant(fakewaldur.Permission{UserUUID: w.u[2].UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: w.p1.UUID})
	f.SetExpiration(w.u[4].UUID, "PROJECT.MEMBER", w.p2.UUID, f.Now().Add(-time.Minute))
	f.Grant(fakewaldur.Permission{UserUUID: w.u[1].UUID, Role: "CUSTOMER.OWNER", ScopeType: "customer", ScopeUUID: w.c2.UUID})
	f.RemoveProject(w.p3.UUID)
	f.DeleteUser(w.u[5].UUID)
	res := e.full()
	want := db.SyncCounts{
		Users:    db.SyncCount{Updated: 1, Removed: 1}, // nils deactivated; ivy gone (already inactive: nothing to remove)
		Projects: db.SyncCount{Updated: 1, Removed: 1},
		Roles:    db.SyncCount{Created: 1, Updated: 1, Removed: 2},
	}
	// ivy was inactive already: deleting her on the platform leaves nothing to deactivate.
	want.Users.Removed = 0
	if res.Counts != want {
		t.Errorf("counts %+v, want %+v", res.Counts, want)
	}
	if got := e.roles(w.p1.UUID); fmt.Sprint(got) != "[adam:PROJECT.ADMIN mia:PROJECT.ADMIN]" {
		t.Errorf("Apollo's roles %v", got)
	}
	if got := e.roles(w.p2.UUID); fmt.Sprint(got) != "[max:PROJECT.ADMIN]" {
		t.Errorf("Borealis's roles %v (the expired grant is revoked)", got)
	}
	p2, _ := e.store.ProjectByUUID(e.ctx, w.p2.UUID)
	if p2.Name != "Borealis II" || p2.CustomerUUID != w.c2.UUID {
		t.Errorf("Borealis: %q of %q", p2.Name, p2.CustomerUUID)
	}
	if got := e.owners(w.c2.UUID); fmt.Sprint(got) != "[adam]" {
		t.Errorf("Globex's owners %v", got)
	}
	if _, err := e.store.ProjectByUUID(e.ctx, w.p3.UUID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("Cygnus (removed, without a room) still in the store: %v", err)
	}
	if u, _ := e.store.UserByUUID(e.ctx, w.u[4].UUID); u.IsActive {
		t.Error("nils is still active")
	}
}

// TestUserGoneFromThePlatformIsDeactivated: a user deleted on the platform loses every
// room (deactivated, counted as removed), keeping the row.
func TestUserGoneFromThePlatformIsDeactivated(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	e.fake.DeleteUser(w.u[1].UUID)
	res := e.full()
	if res.Counts.Users.Removed != 1 || res.Counts.Roles.Removed != 1 {
		t.Errorf("counts %+v", res.Counts)
	}
	u, err := e.store.UserByUUID(e.ctx, w.u[1].UUID)
	if err != nil || u.IsActive {
		t.Errorf("adam: %+v, %v", u, err)
	}
}

// TestCustomerGoneFromThePlatformIsRemoved: a deleted customer leaves with its owners;
// its projects go their own way (removed with it on the platform).
func TestCustomerGoneFromThePlatformIsRemoved(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	e.fake.DeleteCustomer(w.c1.UUID)
	res := e.full()
	if res.Counts.Customers.Removed != 1 || res.Counts.Projects.Removed != 2 {
		t.Errorf("counts %+v", res.Counts)
	}
	if _, err := e.store.CustomerByUUID(e.ctx, w.c1.UUID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("Acme still here: %v", err)
	}
}

// TestFailingListingChangesNothing: a listing that fails half-way (a 5xx that outlasts
// the retries in the middle of the roles, a rejected token, a malformed page, a page too
// slow) ends the run as failed with the reason, and nobody loses anything, although the
// platform really did revoke roles meanwhile.
func TestFailingListingChangesNothing(t *testing.T) {
	tests := []struct {
		name  string
		fault func(f *fakewaldur.Server)
		want  string // in the run's error
	}{
		{"5xx in the middle of the roles", func(f *fakewaldur.Server) {
			f.Inject(fakewaldur.Fault{Path: "/api/user-permissions/", Page: 2, Status: 502, Times: 10})
		}, "platform unavailable"},
		{"expired token", func(f *fakewaldur.Server) { f.ExpireToken() }, "token rejected"},
		{"malformed page", func(f *fakewaldur.Server) {
			f.Inject(fakewaldur.Fault{Path: "/api/users/", Page: 1, Body: `{"not": "a list"}`})
		}, "malformed"},
		{"timeout", func(f *fakewaldur.Server) {
			f.Inject(fakewaldur.Fault{Path: "/api/projects/", Page: 1, Delay: time.Hour, Times: 10})
		}, "projects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.seedWorld()
			// Enough grants for two pages of roles.
			for i := range 320 {
				u := e.fake.AddUser(fakewaldur.User{Username: fmt.Sprintf("extra%d", i), Active: true})
				e.fake.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: "PROJECT.MEMBER", ScopeType: "project", ScopeUUID: w.p2.UUID})
			}
			e.full()
			before := e.state()
			// The platform revokes everyone's roles on Apollo and deletes a user, then fails.
			for _, u := range w.u[1:4] {
				for _, r := range []string{"PROJECT.ADMIN", "PROJECT.MANAGER", "PROJECT.MEMBER"} {
					e.fake.Revoke(u.UUID, r, w.p1.UUID)
				}
			}
			e.fake.DeleteUser(w.u[0].UUID)
			tt.fault(e.fake)
			res, err := e.sync.Sync(e.ctx, true, false)
			if err == nil {
				t.Fatalf("the run succeeded: %+v", res.Counts)
			}
			if after := e.state(); after != before {
				t.Errorf("a failed run changed the store")
			}
			run, rerr := e.store.LastSyncRun(e.ctx, db.SyncFull)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if run.OK || !strings.Contains(run.Error, tt.want) {
				t.Errorf("run ok=%v error %q, want it to say %q", run.OK, run.Error, tt.want)
			}
			if run.Counts.Total() != 0 {
				t.Errorf("failed run counts %+v", run.Counts)
			}
		})
	}
}

// TestTokenRejectedIsNeverAnEmptyPlatform: with the token refused from the first
// request, nothing is removed and the error says "token rejected".
func TestTokenRejectedIsNeverAnEmptyPlatform(t *testing.T) {
	e := newEnv(t)
	e.seedWorld()
	e.full()
	before := e.state()
	e.fake.ExpireToken()
	_, err := e.sync.Sync(e.ctx, true, false)
	if !errors.Is(err, waldur.ErrTokenRejected) {
		t.Fatalf("error %v, want token rejected", err)
	}
	if e.state() != before {
		t.Error("the store changed")
	}
	st, err := e.sync.Status(e.ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if st.Last == nil || !strings.HasPrefix(st.Last.Error, "token rejected") {
		t.Errorf("status last error %q", st.Last.Error)
	}
}

// TestRetryAfterIsHonoured: a 429 with Retry-After in the middle of a listing waits what
// the platform asked and the run succeeds.
func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t)
	e.seedWorld()
	e.fake.Inject(fakewaldur.Fault{Path: "/api/users/", Page: 1, Status: 429, RetryAfter: "7"})
	res := e.full()
	if res.Counts.Users.Created != 6 {
		t.Errorf("counts %+v", res.Counts)
	}
	if got := e.waits.all(); !slices.Contains(got, 7*time.Second) {
		t.Errorf("waits %v, want one of 7s", got)
	}
}

// TestListingsPageBy300: a full listing costs ceil(N/300) requests per kind, following
// the Link headers.
func TestListingsPageBy300(t *testing.T) {
	e := newEnv(t)
	if err := e.fake.Generate(fakewaldur.Scale{Customers: 3, Projects: 301, Users: 650, Roles: 1000}); err != nil {
		t.Fatal(err)
	}
	e.fake.ResetRequests()
	res := e.full()
	for path, want := range map[string]int{"/api/customers/": 1, "/api/projects/": 2, "/api/users/": 3, "/api/user-permissions/": 4} {
		if got := e.fake.Requests(path); got != want {
			t.Errorf("%s: %d requests, want %d", path, got, want)
		}
	}
	if res.Counts.Projects.Created != 301 || res.Counts.Users.Created != 650 || res.Counts.Roles.Created != 1000 {
		t.Errorf("counts %+v", res.Counts)
	}
	if res.Requests != int64(e.fake.Requests("")) {
		t.Errorf("run counted %d requests, the platform saw %d", res.Requests, e.fake.Requests(""))
	}
}

// TestIncrementalRun: between full runs, what changed since the last run (minus the
// margin) is applied from the modified filters, with few requests; a role changed from
// member to admin is seen by re-reading that user's roles.
func TestIncrementalRun(t *testing.T) {
	e := newEnv(t)
	f := e.fake
	f.Advance(-time.Hour) // the world is older than the safety margin
	w := e.seedWorld()
	e.full()
	f.Advance(time.Hour)
	f.UpdateProject(w.p1.UUID, func(p *fakewaldur.Project) { p.Name = "Apollo 11" })
	newbie := f.AddUser(fakewaldur.User{Username: "newbie", Active: true})
	f.Grant(fakewaldur.Permission{UserUUID: newbie.UUID, Role: "PROJECT.MEMBER", ScopeType: "project", ScopeUUID: w.p1.UUID})
	f.Revoke(w.u[3].UUID, "PROJECT.MEMBER", w.p1.UUID)
	f.Grant(fakewaldur.Permission{UserUUID: w.u[3].UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: w.p1.UUID})
	p4 := f.AddProject(fakewaldur.Project{Name: "Draco", CustomerUUID: w.c2.UUID})
	f.ResetRequests()
	res := e.incremental()
	if res.Kind != db.SyncIncremental {
		t.Errorf("kind %s", res.Kind)
	}
	want := db.SyncCounts{Users: db.SyncCount{Created: 1}, Projects: db.SyncCount{Created: 1, Updated: 1}, Roles: db.SyncCount{Created: 1, Updated: 1}}
	if res.Counts != want {
		t.Errorf("counts %+v, want %+v", res.Counts, want)
	}
	if got := e.roles(w.p1.UUID); fmt.Sprint(got) != "[adam:PROJECT.ADMIN max:PROJECT.ADMIN mia:PROJECT.MANAGER newbie:PROJECT.MEMBER]" {
		t.Errorf("Apollo's roles %v", got)
	}
	if _, err := e.store.ProjectByUUID(e.ctx, p4.UUID); err != nil {
		t.Errorf("Draco: %v", err)
	}
	// customers, projects, users, grants, and one re-read per user whose grants changed
	if n := f.Requests(""); n > 6 {
		t.Errorf("%d requests for an incremental run", n)
	}
}

// TestIncrementalRunSeesRemovedProjects: a project terminated since the last run comes
// with is_removed in the incremental listing and goes through the removal.
func TestIncrementalRunSeesRemovedProjects(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	e.fake.RemoveProject(w.p2.UUID)
	res := e.incremental()
	if res.Counts.Projects.Removed != 1 {
		t.Errorf("counts %+v", res.Counts)
	}
	if _, err := e.store.ProjectByUUID(e.ctx, w.p2.UUID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("Borealis: %v", err)
	}
}

// TestIncrementalWithoutAFullRunIsFull: the first run of a new server has nothing to be
// incremental from.
func TestIncrementalWithoutAFullRunIsFull(t *testing.T) {
	e := newEnv(t)
	e.seedWorld()
	if res := e.incremental(); res.Kind != db.SyncFull || res.Counts.Projects.Created != 3 {
		t.Errorf("kind %s, counts %+v", res.Kind, res.Counts)
	}
}

// TestDryRunChangesNothing: a dry run reports the differences, line by line, and writes
// nothing, not even a run.
func TestDryRunChangesNothing(t *testing.T) {
	e := newEnv(t, func(o *platform.Options) { o.Describe = true })
	w := e.seedWorld()
	before := e.state()
	res, err := e.sync.Sync(e.ctx, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if e.state() != before {
		t.Error("a dry run changed the store")
	}
	if _, err := e.store.LastSyncRun(e.ctx, ""); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a dry run recorded a run: %v", err)
	}
	var lines []string
	res.Diff.Lines(func(s string) { lines = append(lines, s) })
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"customer  create  " + w.c1.UUID + ` "Acme" (ACME)`,
		"user      create  " + w.u[1].UUID + ` adam "adam Tester" active=true`,
		"project   create  " + w.p1.UUID + ` "Apollo" customer "Acme" (` + w.c1.UUID + ")",
		`role      grant   PROJECT.ADMIN to "adam" (` + w.u[1].UUID + `) in project "Apollo" (` + w.p1.UUID + ")",
		`role      grant   CUSTOMER.OWNER to "olga" (` + w.u[0].UUID + `) in customer "Acme" (` + w.c1.UUID + ")",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the differences lack %q:\n%s", want, text)
		}
	}
	if len(lines) != res.Counts.Total() {
		t.Errorf("%d lines for %d differences", len(lines), res.Counts.Total())
	}
}

// TestOneRunAtATime: a second run while one is running is ErrRunning.
func TestOneRunAtATime(t *testing.T) {
	e := newEnv(t)
	e.seedWorld()
	release := make(chan struct{})
	e.fake.Inject(fakewaldur.Fault{Path: "/api/customers/", Before: func() { <-release }})
	if err := e.sync.Start(true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sync.Sync(e.ctx, true, false); !errors.Is(err, platform.ErrRunning) {
		t.Errorf("second run: %v, want ErrRunning", err)
	}
	if err := e.sync.Start(false); !errors.Is(err, platform.ErrRunning) {
		t.Errorf("second start: %v, want ErrRunning", err)
	}
	close(release)
	for e.sync.Running() {
		time.Sleep(10 * time.Millisecond)
	}
	if run, err := e.store.LastSyncRun(e.ctx, db.SyncFull); err != nil || !run.OK {
		t.Errorf("the run: %+v, %v", run, err)
	}
}

// TestSyncOwnsItsRows: the directory API cannot change what the sync mirrors, and the
// sync adopts rows the API pushed with the platform's uuids.
func TestSyncOwnsItsRows(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	// Pushed before the sync was configured, with the platform's uuids.
	if _, _, err := e.store.PutProject(e.ctx, db.DirectoryProject{UUID: w.p1.UUID, Name: "Old name", Description: "kept"}, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.PutUser(e.ctx, db.DirectoryUser{UUID: w.u[1].UUID, Username: "adam", IsActive: true}, rules); err != nil {
		t.Fatal(err)
	}
	res := e.full()
	if res.Counts.Projects.Created != 2 || res.Counts.Projects.Updated != 1 || res.Counts.Users.Updated != 1 {
		t.Errorf("counts %+v", res.Counts)
	}
	p, _ := e.store.ProjectByUUID(e.ctx, w.p1.UUID)
	if p.Source != db.SourceWaldur || p.Name != "Apollo" || p.Description != "kept" {
		t.Errorf("adopted project: %+v", p)
	}
	var owned *db.OwnedError
	if _, _, err := e.store.PutProject(e.ctx, db.DirectoryProject{UUID: w.p1.UUID, Name: "Mine"}, false); !errors.As(err, &owned) {
		t.Errorf("API write to a synced project: %v", err)
	}
	if _, _, err := e.store.PutUser(e.ctx, db.DirectoryUser{UUID: w.u[1].UUID, Username: "adam", IsActive: false}, rules); !errors.As(err, &owned) {
		t.Errorf("API write to a synced user: %v", err)
	}
	if _, _, err := e.store.PutCustomer(e.ctx, db.DirectoryCustomer{UUID: w.c1.UUID, Name: "Mine"}); !errors.As(err, &owned) {
		t.Errorf("API write to a synced customer: %v", err)
	}
}

// TestStaffAccountsAreNeverTouched: a platform user named like a staff account (or with
// its uuid) is skipped and reported; the rest of the run goes on.
func TestStaffAccountsAreNeverTouched(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	staff := &db.User{Username: "admin", IsStaff: true, IsActive: true, PasswordHash: "x"}
	if err := e.store.CreateUser(e.ctx, staff); err != nil {
		t.Fatal(err)
	}
	imposter := e.fake.AddUser(fakewaldur.User{Username: "admin", Active: true})
	e.fake.Grant(fakewaldur.Permission{UserUUID: imposter.UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: w.p1.UUID})
	res := e.full()
	if res.Counts.Users.Created != 6 || len(res.Diff.SkippedUsers) != 1 || res.Diff.SkippedUsers[0].UUID != imposter.UUID {
		t.Errorf("counts %+v, skipped %+v", res.Counts, res.Diff.SkippedUsers)
	}
	got, err := e.store.UserByUsername(e.ctx, "admin")
	if err != nil || !got.IsStaff || got.UUID != staff.UUID {
		t.Errorf("admin: %+v, %v", got, err)
	}
	if roles := e.roles(w.p1.UUID); slices.Contains(roles, "admin:PROJECT.ADMIN") {
		t.Errorf("the staff account got the imposter's role: %v", roles)
	}
}

// TestUsernamesSwapped: two users trading usernames in one run do not trip over each other.
func TestUsernamesSwapped(t *testing.T) {
	e := newEnv(t)
	w := e.seedWorld()
	e.full()
	e.fake.UpdateUser(w.u[1].UUID, func(u *fakewaldur.User) { u.Username = "mia" })
	e.fake.UpdateUser(w.u[2].UUID, func(u *fakewaldur.User) { u.Username = "adam" })
	res := e.full()
	if res.Counts.Users.Updated != 2 {
		t.Errorf("counts %+v, skipped %+v", res.Counts, res.Diff.SkippedUsers)
	}
	if u, _ := e.store.UserByUUID(e.ctx, w.u[1].UUID); u.Username != "mia" {
		t.Errorf("u1 is %q", u.Username)
	}
}

// TestIncrementalRunWithManyRoleChangesListsEverything: when more users' grants changed
// than it would re-read one by one, the incremental run lists everything instead, and
// is recorded as the full run it became.
func TestIncrementalRunWithManyRoleChangesListsEverything(t *testing.T) {
	e := newEnv(t)
	f := e.fake
	f.Advance(-time.Hour)
	w := e.seedWorld()
	e.full()
	f.Advance(time.Hour)
	for i := range 101 {
		u := f.AddUser(fakewaldur.User{Username: fmt.Sprintf("wave%03d", i), Active: true})
		f.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: "PROJECT.MEMBER", ScopeType: "project", ScopeUUID: w.p3.UUID})
	}
	res := e.incremental()
	if res.Kind != db.SyncFull || res.Counts.Roles.Created != 101 {
		t.Errorf("kind %s, counts %+v", res.Kind, res.Counts)
	}
	if run, err := e.store.LastSyncRun(e.ctx, ""); err != nil || run.Kind != db.SyncFull || !run.OK {
		t.Errorf("recorded run %+v, %v", run, err)
	}
}
