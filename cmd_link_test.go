package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/fakesynapse"
	"matrixas/settings"
)

// refuse makes the user's profile refused, as the worker leaves it after M_USER_IN_USE
// on a first registration.
func refuse(t *testing.T, s *db.Store, username string) *db.User {
	t.Helper()
	ctx := context.Background()
	u, _, err := s.PutUser(ctx, db.DirectoryUser{Username: username, IsActive: true}, db.ProfileRules{Domain: "example.org", BotLocalpart: "waldur-bot"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginRegistration(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if after, err := s.FinishRegistration(ctx, u.ID, db.RegistrationRefused, "refused: link it"); err != nil || after != db.RegistrationRefused {
		t.Fatalf("refuse %s: %q %v", username, after, err)
	}
	return u
}

func TestLinkMatrixAccountCommand(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t)
	s := c.store(t)
	st := db.NewSettings(s, nil)
	profile := func(u *db.User) *db.Profile {
		t.Helper()
		p, err := s.ProfileByUserID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	if err := c.run(ctx, "link-matrix-account"); !errors.Is(err, exitUsage) {
		t.Errorf("no arguments: %v, want a usage error", err)
	}
	if err := c.run(ctx, "link-matrix-account", "--all", "alice"); !errors.Is(err, exitUsage) {
		t.Errorf("--all with a user: %v, want a usage error", err)
	}
	if err := c.run(ctx, "link-matrix-account", "alice", "@alice:example.org"); err == nil || !strings.Contains(err.Error(), "not set up") {
		t.Errorf("before setup: %v, want 'not set up'", err)
	}

	// The domain is known, the appservice not set up: the homeserver cannot be asked
	// whether the account is an admin, so the link goes ahead with a note.
	if err := st.Set(ctx, map[string]string{settings.HomeserverDomain.Key: "example.org", settings.SenderLocalpart.Key: "waldur-bot"}); err != nil {
		t.Fatal(err)
	}
	alice := refuse(t, s, "alice")
	if err := c.run(ctx, "link-matrix-account", "alice", "@alice:example.org"); err != nil {
		t.Fatalf("link: %v\n%s", err, c.stderr)
	}
	if out := c.stdout.String(); !strings.Contains(out, "linked @alice:example.org to alice") || !strings.Contains(out, "note: the homeserver does not let the bot tell") {
		t.Errorf("stdout: %q", out)
	}
	if p := profile(alice); p.Registration != db.RegistrationLinked || p.MatrixUserID != "@alice:example.org" || p.LastError != "" || p.Provisioned {
		t.Errorf("after the link: %+v", p)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nobody", "@x:example.org"}, `no user "nobody"`},
		{[]string{"alice", "@alice:other.org"}, "only accounts on this homeserver"},
		{[]string{"alice", "alice"}, "enter a Matrix user ID"},
		{[]string{"alice", "@waldur-bot:example.org"}, "the appservice bot's own account"},
	} {
		if err := c.run(ctx, append([]string{"link-matrix-account"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	bob := refuse(t, s, "bob")
	if err := c.run(ctx, "link-matrix-account", "bob", "@alice:example.org"); err == nil || !strings.Contains(err.Error(), "linked to another user") {
		t.Errorf("another user's ID: %v", err)
	}

	// A homeserver that lets the bot tell (Synapse, the bot a server admin): an admin
	// account is refused, the others are linked; --all links every refused one it may.
	hs := fakesynapse.New(t, fakesynapse.Options{BotIsAdmin: true, Admins: []string{"@root:example.org"}})
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: hs.URL, settings.ASToken.Key: "as-token"}); err != nil {
		t.Fatal(err)
	}
	if err := c.run(ctx, "link-matrix-account", "bob", "@root:example.org"); err == nil || !strings.Contains(err.Error(), "homeserver admin account") {
		t.Errorf("an admin account: %v", err)
	}
	root := refuse(t, s, "root")
	if err := c.run(ctx, "link-matrix-account", "--all"); err == nil || err.Error() != "1 of 2 refused accounts not linked" {
		t.Errorf("--all: %v", err)
	}
	out := c.stdout.String()
	if !strings.Contains(out, "linked @bob:example.org to bob") || !strings.Contains(out, "not linked: @root:example.org to root") || strings.Contains(out, "note:") {
		t.Errorf("--all stdout: %q", out)
	}
	if p := profile(bob); p.Registration != db.RegistrationLinked {
		t.Errorf("bob: %+v", p)
	}
	if p := profile(root); p.Registration != db.RegistrationRefused || p.MatrixUserID != id.UserID("@root:example.org") {
		t.Errorf("root was linked: %+v", p)
	}

	// A homeserver that does not answer: nothing is linked, and it says why.
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.run(ctx, "link-matrix-account", "root", "@root2:example.org"); err == nil || !strings.Contains(err.Error(), "could not ask the homeserver") {
		t.Errorf("unreachable: %v", err)
	}
	if p := profile(root); p.Registration != db.RegistrationRefused {
		t.Errorf("linked although the homeserver did not answer: %+v", p)
	}
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: hs.URL}); err != nil {
		t.Fatal(err)
	}
	if err := c.run(ctx, "link-matrix-account", "--all"); err == nil {
		t.Error("--all linked the admin account")
	}
}
