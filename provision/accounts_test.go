package provision_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/internal/fakesynapse"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// TestLostAnswerNeverAdoptsAnAdmin: after a registration whose answer was lost,
// M_USER_IN_USE is taken for our own account, except when the homeserver says the
// account is a server admin (it appeared in between): then it is refused.
func TestLostAnswerNeverAdoptsAnAdmin(t *testing.T) {
	ctx := context.Background()
	hs := fakesynapse.New(t, fakesynapse.Options{BotIsAdmin: true, Admins: []string{"@root:localhost"},
		Existing: []string{"@root:localhost", "@carl:localhost"}})
	ts := testserver.New(t, testserver.Options{Env: fastEnv})
	st := ts.Web.Settings()
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: hs.URL, settings.HomeserverDomain.Key: "localhost",
		settings.SenderLocalpart.Key: "waldur-bot", settings.ASToken.Key: auth.RandomHex(32), settings.HSToken.Key: auth.RandomHex(32)}); err != nil {
		t.Fatal(err)
	}
	rules := db.ProfileRules{Domain: "localhost", BotLocalpart: "waldur-bot"}
	var users []*db.User
	for _, name := range []string{"root", "carl"} {
		u, _, err := ts.Store.PutUser(ctx, db.DirectoryUser{Username: name, IsActive: true}, rules)
		if err != nil {
			t.Fatal(err)
		}
		// A registration of ours was sent, and its answer never came.
		if _, err := ts.Store.BeginRegistration(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	if err := st.Set(ctx, map[string]string{settings.Enabled.Key: "true"}); err != nil { // the worker starts
		t.Fatal(err)
	}
	waitFor(t, "both settled", 20*time.Second, func() (bool, string) {
		root, _ := ts.Store.ProfileByUserID(ctx, users[0].ID)
		carl, _ := ts.Store.ProfileByUserID(ctx, users[1].ID)
		return root.Registration == db.RegistrationRefused && carl.Provisioned,
			"root " + string(root.Registration) + " " + root.LastError + "; carl " + string(carl.Registration) + " " + carl.LastError
	})
	root, _ := ts.Store.ProfileByUserID(ctx, users[0].ID)
	if !strings.Contains(root.LastError, "link-matrix-account root @root:localhost") {
		t.Errorf("root's error: %q", root.LastError)
	}
	if carl, _ := ts.Store.ProfileByUserID(ctx, users[1].ID); carl.Registration != db.RegistrationCreated {
		t.Errorf("carl: %+v", carl)
	}
}
