package db

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
)

// accountUser makes an active user with a profile.
func accountUser(t *testing.T, s *Store, name string) *User {
	t.Helper()
	u, _, err := s.PutUser(context.Background(), DirectoryUser{Username: name, FullName: "User " + name, IsActive: true}, testRules)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func profileOf(t *testing.T, s *Store, u *User) *Profile {
	t.Helper()
	p, err := s.ProfileByUserID(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRegistrationStates: a registration is sent before it leaves; what comes back
// decides the account's owner, and only a sent registration changes (a link made
// meanwhile wins).
func TestRegistrationStates(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	finish := func(u *User, to Registration) Registration {
		t.Helper()
		after, err := s.FinishRegistration(ctx, u.ID, to, "msg for "+string(to))
		if err != nil {
			t.Fatal(err)
		}
		return after
	}
	begin := func(u *User) RegistrationStart {
		t.Helper()
		st, err := s.BeginRegistration(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	a := accountUser(t, s, "ann")
	if st := begin(a); st.Prior != RegistrationNone || st.Locked {
		t.Errorf("first begin: %+v", st)
	}
	if p := profileOf(t, s, a); p.Registration != RegistrationSent {
		t.Errorf("not recorded as sent before it leaves: %q", p.Registration)
	}
	if st := begin(a); st.Prior != RegistrationSent {
		t.Errorf("a second begin after a lost answer: %+v, want prior sent", st)
	}
	if got := finish(a, RegistrationCreated); got != RegistrationCreated {
		t.Errorf("finish created: %q", got)
	}
	if got := finish(a, RegistrationRefused); got != RegistrationCreated {
		t.Errorf("a finish without a sent registration changed it: %q", got)
	}
	if st := begin(a); st.Prior != RegistrationCreated {
		t.Errorf("begin on a created account: %+v", st)
	}

	b := accountUser(t, s, "ben")
	begin(b)
	if got := finish(b, RegistrationRefused); got != RegistrationRefused {
		t.Errorf("finish refused: %q", got)
	}
	if p := profileOf(t, s, b); p.LastError != "msg for refused" {
		t.Errorf("the refusal's message is not the profile's error: %q", p.LastError)
	}
	if st := begin(b); st.Prior != RegistrationRefused {
		t.Errorf("a refused account began again: %+v", st)
	}

	c := accountUser(t, s, "cid")
	begin(c)
	if got := finish(c, RegistrationNone); got != RegistrationNone {
		t.Errorf("a refused request: %q, want forgotten", got)
	}

	// A link while a registration is under way wins over its outcome.
	d := accountUser(t, s, "dee")
	begin(d)
	if _, err := s.LinkAccount(ctx, d.ID, "@dee:example.org", "@waldur-bot:example.org"); err != nil {
		t.Fatal(err)
	}
	if got := finish(d, RegistrationRefused); got != RegistrationLinked {
		t.Errorf("the registration's refusal overwrote the link: %q", got)
	}
}

// TestLinkAccount: the rules of a deliberate link.
func TestLinkAccount(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	const bot id.UserID = "@waldur-bot:example.org"
	ann := accountUser(t, s, "ann")
	accountUser(t, s, "ben")

	if _, err := s.LinkAccount(ctx, ann.ID, bot, bot); !errors.Is(err, ErrMatrixIDTaken) {
		t.Errorf("the bot's id: %v", err)
	}
	if _, err := s.LinkAccount(ctx, ann.ID, "@ben:example.org", bot); !errors.Is(err, ErrMatrixIDTaken) {
		t.Errorf("another user's id: %v", err)
	}
	// A project room of ann's is queued for a member sync by the link.
	p, _, err := s.PutProject(ctx, DirectoryProject{Name: "P"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoles(ctx, p.ID, []RoleInput{{UserUUID: ann.UUID, Role: RoleMember}}, testRules); err != nil {
		t.Fatal(err)
	}
	room, err := s.RoomByUUID(ctx, p.RoomUUID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimRoom(ctx, room.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRoomSync(ctx, room.ID, "P"); err != nil {
		t.Fatal(err)
	}
	if d := roomDirty(t, s, room.ID); d != 0 {
		t.Fatalf("room dirty before the link: %d", d)
	}
	linked, err := s.LinkAccount(ctx, ann.ID, "@ann.archer:example.org", bot)
	if err != nil {
		t.Fatal(err)
	}
	if linked.MatrixUserID != "@ann.archer:example.org" || linked.Registration != RegistrationLinked || linked.Provisioned {
		t.Errorf("linked: %+v", linked)
	}
	if d := roomDirty(t, s, room.ID); d != 1 {
		t.Errorf("the link did not queue ann's room: %d", d)
	}
	// Linking the same again changes nothing; once her account works, another is refused.
	if _, err := s.LinkAccount(ctx, ann.ID, "@ann.archer:example.org", bot); err != nil {
		t.Errorf("the same link again: %v", err)
	}
	if ok, err := s.MarkProfileProvisioned(ctx, ann.ID, "User ann"); !ok || err != nil {
		t.Fatalf("mark provisioned: %v %v", ok, err)
	}
	if _, err := s.LinkAccount(ctx, ann.ID, "@ann2:example.org", bot); !errors.Is(err, ErrHasAccount) {
		t.Errorf("replacing a working account: %v", err)
	}
	// A user without a profile (staff, say) gets one.
	staff := &User{Username: "operator", IsStaff: true, IsActive: true}
	if err := s.CreateUser(ctx, staff); err != nil {
		t.Fatal(err)
	}
	if p, err := s.LinkAccount(ctx, staff.ID, "@operator:example.org", bot); err != nil || p.Registration != RegistrationLinked {
		t.Errorf("link without a profile: %+v %v", p, err)
	}
}

// TestRefusedAccountsAreLeftAlone: a refused account is not provisioned again, not
// managed (never kicked nor given a level), and is what --all links.
func TestRefusedAccountsAreLeftAlone(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	a, b := accountUser(t, s, "ann"), accountUser(t, s, "ben")
	s.BeginRegistration(ctx, a.ID)
	if _, err := s.FinishRegistration(ctx, a.ID, RegistrationRefused, "refused"); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueProfiles(ctx, time.Now().Unix()+1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].UserID != b.ID {
		t.Errorf("due profiles: %d, want ben's only", len(due))
	}
	managed, err := s.ManagedUsers(ctx, []id.UserID{"@ann:example.org", "@ben:example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := managed["@ann:example.org"]; ok || managed["@ben:example.org"] != b.ID {
		t.Errorf("managed: %v", managed)
	}
	refused, err := s.RefusedProfiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || refused[0].Username != "ann" {
		t.Errorf("refused profiles: %v", refused)
	}
}

// TestDeactivationQueue: deactivating a user queues the sign-out of their own account
// (not of a refused or unregistered one); reactivation before it ran cancels it; after
// it ran, reactivation queues provisioning again (which lifts the lock); a lock sent for
// a user reactivated meanwhile is lifted too.
func TestDeactivationQueue(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	setActive := func(u *User, active bool) {
		t.Helper()
		if _, _, err := s.PutUser(ctx, DirectoryUser{UUID: u.UUID, Username: u.Username, FullName: u.FullName, IsActive: active}, testRules); err != nil {
			t.Fatal(err)
		}
	}
	due := func() []string {
		t.Helper()
		ps, err := s.DueDeactivations(ctx, time.Now().Unix()+1, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range ps {
			out = append(out, p.Username)
		}
		return out
	}
	created := func(u *User) {
		t.Helper()
		s.BeginRegistration(ctx, u.ID)
		s.FinishRegistration(ctx, u.ID, RegistrationCreated, "")
		if ok, err := s.MarkProfileProvisioned(ctx, u.ID, u.FullName); !ok || err != nil {
			t.Fatalf("provision %s: %v %v", u.Username, ok, err)
		}
	}
	ann, ben, cid := accountUser(t, s, "ann"), accountUser(t, s, "ben"), accountUser(t, s, "cid")
	created(ann)
	s.BeginRegistration(ctx, ben.ID)
	s.FinishRegistration(ctx, ben.ID, RegistrationRefused, "refused")
	// cid was never registered.
	for _, u := range []*User{ann, ben, cid} {
		setActive(u, false)
	}
	if got := strings.Join(due(), ","); got != "ann" {
		t.Fatalf("due sign-outs: %q, want ann only (ben's account is not ours, cid has none)", got)
	}
	if at, ok, err := s.NextDue(ctx); err != nil || !ok || at > time.Now().Unix() {
		t.Errorf("the worker is not told a sign-out is due: %d %v %v", at, ok, err)
	}

	// Reactivated before the sign-out ran: nothing is left to do, nothing to unlock.
	setActive(ann, true)
	if got := due(); len(got) != 0 {
		t.Errorf("due after reactivation: %v", got)
	}
	if p := profileOf(t, s, ann); !p.Provisioned {
		t.Errorf("a reactivation that undid nothing re-queued the account: %+v", p)
	}

	// Deactivated, signed out and locked; reactivation queues provisioning.
	setActive(ann, false)
	if ok, err := s.BeginLock(ctx, ann.ID); !ok || err != nil {
		t.Fatalf("begin lock: %v %v", ok, err)
	}
	if err := s.MarkSignedOut(ctx, ann.ID); err != nil {
		t.Fatal(err)
	}
	if p := profileOf(t, s, ann); !p.SignedOut || !p.Locked {
		t.Errorf("after the sign-out: %+v", p)
	}
	if got := due(); len(got) != 0 {
		t.Errorf("still due after the sign-out: %v", got)
	}
	setActive(ann, true)
	if p := profileOf(t, s, ann); p.Provisioned || p.SignedOut || !p.Locked {
		t.Errorf("after the reactivation: %+v, want queued again with the lock still to lift", p)
	}
	if ok, err := s.MarkProfileProvisioned(ctx, ann.ID, ann.FullName); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if p := profileOf(t, s, ann); !p.Provisioned || p.Locked {
		t.Errorf("after provisioning: %+v, want unlocked", p)
	}

	// A sign-out under way while the user is reactivated: the lock it sent is lifted.
	setActive(ann, false)
	if ok, _ := s.BeginLock(ctx, ann.ID); !ok {
		t.Fatal("no lock began")
	}
	setActive(ann, true) // before MarkSignedOut
	if p := profileOf(t, s, ann); p.Provisioned {
		t.Errorf("a reactivation with a lock sent did not queue the unlock: %+v", p)
	}
	if ok, _ := s.BeginLock(ctx, ann.ID); ok {
		t.Error("a lock began for an active user")
	}
	// Provisioning of a user deactivated meanwhile is not recorded as done.
	setActive(cid, true)
	setActive(cid, false)
	if ok, err := s.MarkProfileProvisioned(ctx, cid.ID, cid.FullName); ok || err != nil {
		t.Errorf("marked an inactive user provisioned: %v %v", ok, err)
	}
}

// TestAccountsMigration: profiles provisioned before migration 0009 (under the old rule,
// which adopted existing accounts) stay in use as created; the others start unknown.
func TestAccountsMigration(t *testing.T) {
	ctx := context.Background()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	target := 0
	for _, m := range ms {
		if strings.HasSuffix(m.name, "_accounts.sql") {
			target = m.version
		}
	}
	if target == 0 {
		t.Fatal("no accounts migration")
	}
	s, err := OpenNoMigrate(filepath.Join(t.TempDir(), "old.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.MigrateTo(ctx, target-1); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"old", "new"} {
		if _, err := s.w.ExecContext(ctx, `INSERT INTO users (uuid, username, email, full_name, is_staff, is_active, password_hash, created_at, modified_at)
			VALUES (?, ?, '', '', 0, 1, '', 0, 0)`, NewUUID(), name); err != nil {
			t.Fatal(err)
		}
		if _, err := s.w.ExecContext(ctx, `INSERT INTO matrix_user_profiles (user_id, matrix_user_id, provisioned, created_at)
			VALUES ((SELECT id FROM users WHERE username = ?), ?, ?, 0)`, name, "@"+name+":example.org", i == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Registration{"old": RegistrationCreated, "new": RegistrationNone} {
		u, err := s.UserByUsername(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if p := profileOf(t, s, u); p.Registration != want || p.SignedOut || p.Locked {
			t.Errorf("%s after the migration: %+v, want %q", name, p, want)
		}
	}
}

// TestUserIDFormatNeverRenames: MATRIX_USER_ID_FORMAT applies to profiles made after it
// changed; an existing profile keeps its Matrix ID whatever the user's later updates.
func TestUserIDFormatNeverRenames(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	byName := ProfileRules{Domain: "example.org", BotLocalpart: "waldur-bot", Format: FormatUsername}
	byEmail := byName
	byEmail.Format = FormatEmailLocal
	u, _, err := s.PutUser(ctx, DirectoryUser{Username: "ann", Email: "Ann.Archer@example.org", IsActive: true}, byName)
	if err != nil {
		t.Fatal(err)
	}
	if p := profileOf(t, s, u); p.MatrixUserID != "@ann:example.org" {
		t.Fatalf("username format: %s", p.MatrixUserID)
	}
	// The format changes; ann is updated, deactivated and reactivated: same ID.
	for _, in := range []DirectoryUser{
		{UUID: u.UUID, Username: "ann", Email: "Ann.Archer@example.org", FullName: "Ann Archer", IsActive: true},
		{UUID: u.UUID, Username: "ann", Email: "Ann.Archer@example.org", FullName: "Ann Archer", IsActive: false},
		{UUID: u.UUID, Username: "ann", Email: "Ann.Archer@example.org", FullName: "Ann Archer", IsActive: true},
	} {
		if _, _, err := s.PutUser(ctx, in, byEmail); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.EnsureProfile(ctx, u.ID, byEmail); err != nil {
		t.Fatal(err)
	}
	if p := profileOf(t, s, u); p.MatrixUserID != "@ann:example.org" {
		t.Errorf("the format change renamed ann: %s", p.MatrixUserID)
	}
	// A new user gets the new format.
	v, _, err := s.PutUser(ctx, DirectoryUser{Username: "bob", Email: "Bobby+chat@example.org", IsActive: true}, byEmail)
	if err != nil {
		t.Fatal(err)
	}
	if p := profileOf(t, s, v); p.MatrixUserID != "@bobby+chat:example.org" {
		t.Errorf("email_local format: %s", p.MatrixUserID)
	}
	w, _, err := s.PutUser(ctx, DirectoryUser{Username: "cid", IsActive: true}, ProfileRules{Domain: "example.org", BotLocalpart: "waldur-bot", Format: FormatUUID})
	if err != nil {
		t.Fatal(err)
	}
	if p := profileOf(t, s, w); p.MatrixUserID != id.NewUserID(w.UUID, "example.org") {
		t.Errorf("uuid format: %s, want the uuid %s", p.MatrixUserID, w.UUID)
	}
}
