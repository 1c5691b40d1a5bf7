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

	"matrixas/auth"
	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
	"matrixas/matrix"
	"matrixas/settings"
)

// appservice is a test server set up as the appservice of a real Dendrite.
type appservice struct {
	ts      *testserver.Server
	hs      *dendritetest.Server
	ms      *db.MatrixSettings
	regFile string
}

// fastEnv makes the worker retry quickly and scan often, for tests.
var fastEnv = map[string]string{
	"PROVISION_BACKOFF":     "1s",
	"PROVISION_MAX_BACKOFF": "2s",
	"PROVISION_INTERVAL":    "1s",
}

// appserviceSettings are the settings of a set-up appservice at url (the homeserver URL
// is filled in once Dendrite runs).
func appserviceSettings(url string) map[string]string {
	return map[string]string{
		settings.HomeserverDomain.Key: "localhost",
		settings.ASToken.Key:          auth.RandomHex(32),
		settings.HSToken.Key:          auth.RandomHex(32),
		settings.SenderLocalpart.Key:  "waldur-bot",
		settings.AppserviceURL.Key:    url,
	}
}

// writeRegistration writes the registration file for ms into dir.
func writeRegistration(t *testing.T, ms *db.MatrixSettings, dir string) string {
	t.Helper()
	reg, err := matrix.BuildRegistration(ms)
	if err != nil {
		t.Fatal(err)
	}
	y, err := reg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "registration.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// memDir returns a fresh folder in memory (/dev/shm) when there is one, else "" (the
// default temp folder): Dendrite's SQLite then commits without waiting for a disk, which
// keeps these tests quick. The folder is removed at the end of the test.
func memDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "matrixas-test-")
	if err != nil {
		return ""
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// newAppservice starts a test server (env tunes it), writes the appservice settings the
// way setup does, and starts Dendrite with the registration.
func newAppservice(t *testing.T, env map[string]string) *appservice {
	t.Helper()
	return newAppserviceWith(t, testserver.Options{Env: env})
}

// newAppserviceWith is newAppservice with every test server option.
func newAppserviceWith(t *testing.T, opts testserver.Options) *appservice {
	t.Helper()
	ctx := context.Background()
	ts := testserver.New(t, opts)
	st := ts.Web.Settings()
	if err := st.Set(ctx, appserviceSettings(ts.URL)); err != nil {
		t.Fatal(err)
	}
	ms, err := st.Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := &appservice{ts: ts, regFile: writeRegistration(t, ms, t.TempDir())}
	a.hs = dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{a.regFile}, DataDir: memDir(t)})
	a.switchTo(t, a.hs)
	return a
}

// switchTo points the appservice at hs and enables it.
func (a *appservice) switchTo(t *testing.T, hs *dendritetest.Server) {
	t.Helper()
	ctx := context.Background()
	st := a.ts.Web.Settings()
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: hs.URL, settings.Enabled.Key: "true"}); err != nil {
		t.Fatal(err)
	}
	ms, err := st.Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.ms = ms
}

// bot is a client acting as the appservice bot on hs.
func (a *appservice) bot(t *testing.T, hs *dendritetest.Server) *mautrix.Client {
	return a.as(t, hs, "")
}

// as is a client acting as user (masquerading) on hs; "" is the bot.
func (a *appservice) as(t *testing.T, hs *dendritetest.Server, user id.UserID) *mautrix.Client {
	t.Helper()
	ms := *a.ms
	ms.HomeserverURL = hs.URL
	c, err := matrix.Client(&ms, matrix.HTTPClient(3*time.Second, 10*time.Second), user)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// apiUser, apiProject and apiRoom are the API's JSON.
type apiUser struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
}

type apiRoom struct {
	UUID         string `json:"uuid"`
	Project      string `json:"project"`
	RoomID       string `json:"room_id"`
	RoomAlias    string `json:"room_alias"`
	State        string `json:"state"`
	ErrorMessage string `json:"error_message"`
	Notice       string `json:"notice"`
	Attempts     int    `json:"attempts"`
	Members      []struct {
		MatrixUserID string `json:"matrix_user_id"`
		Role         string `json:"role"`
		PowerLevel   int    `json:"power_level"`
		Membership   string `json:"membership"`
	} `json:"members"`
}

type apiProfile struct {
	User         string `json:"user"`
	Username     string `json:"username"`
	MatrixUserID string `json:"matrix_user_id"`
	IsActive     bool   `json:"is_active"`
	Provisioned  bool   `json:"provisioned"`
	LastError    string `json:"last_error"`
}

// pendingProfiles is a waitFor condition: no active user waits to be provisioned.
func pendingProfiles(t *testing.T, a *appservice) func() (bool, string) {
	return func() (bool, string) {
		var ps []apiProfile
		a.call(t, http.MethodGet, "/api/matrix-user-profiles/?page_size=500&provisioned=false", nil, &ps, http.StatusOK)
		var pending []apiProfile
		for _, p := range ps {
			if p.IsActive {
				pending = append(pending, p)
			}
		}
		return len(pending) == 0, fmt.Sprintf("pending: %+v", pending)
	}
}

// call sends an API request as staff and fails the test on an unexpected status.
func (a *appservice) call(t *testing.T, method, path string, body, out any, want int) {
	t.Helper()
	if code := a.ts.JSON(t, method, path, a.ts.StaffToken, body, out); code != want {
		t.Fatalf("%s %s: %d, want %d", method, path, code, want)
	}
}

func (a *appservice) createUser(t *testing.T, name string) apiUser {
	t.Helper()
	var u apiUser
	a.call(t, http.MethodPost, "/api/users/", map[string]string{"username": name, "full_name": "User " + name}, &u, http.StatusCreated)
	return u
}

// rooms lists every room through the API.
func rooms(t *testing.T, ts *testserver.Server) []apiRoom {
	t.Helper()
	var out []apiRoom
	if code := ts.JSON(t, http.MethodGet, "/api/matrix-rooms/?page_size=500", ts.StaffToken, nil, &out); code != http.StatusOK {
		t.Fatalf("list rooms: %d", code)
	}
	return out
}

func (a *appservice) room(t *testing.T, uuid string) apiRoom {
	t.Helper()
	var r apiRoom
	a.call(t, http.MethodGet, "/api/matrix-rooms/"+uuid+"/", nil, &r, http.StatusOK)
	return r
}

// waitFor polls cond every 50 ms until it holds or the deadline passes, then fails with
// what cond last reported.
func waitFor(t *testing.T, what string, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, within, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// allActive is a waitFor condition: every room is active.
func allActive(t *testing.T, ts *testserver.Server, n int) func() (bool, string) {
	return func() (bool, string) {
		rs := rooms(t, ts)
		count := map[string]int{}
		var errs []string
		for _, r := range rs {
			count[r.State]++
			if r.ErrorMessage != "" {
				errs = append(errs, r.ErrorMessage)
			}
		}
		return len(rs) == n && count["active"] == n, fmt.Sprintf("%d rooms %v; errors %v", len(rs), count, errs)
	}
}

// joined returns the room's joined members on the homeserver, sorted.
func joined(t *testing.T, c *mautrix.Client, roomID string) []string {
	t.Helper()
	resp, err := c.JoinedMembers(context.Background(), id.RoomID(roomID))
	if err != nil {
		t.Fatalf("joined members of %s: %v", roomID, err)
	}
	var out []string
	for u := range resp.Joined {
		out = append(out, u.String())
	}
	slices.Sort(out)
	return out
}

// powerRules returns the room's non-user power level rules in a comparable form.
func powerRules(t *testing.T, c *mautrix.Client, roomID string) string {
	t.Helper()
	var pl event.PowerLevelsEventContent
	if err := c.StateEvent(context.Background(), id.RoomID(roomID), event.StatePowerLevels, "", &pl); err != nil {
		t.Fatalf("power levels of %s: %v", roomID, err)
	}
	return fmt.Sprintf("invite=%d kick=%d ban=%d redact=%d state_default=%d events_default=%d name=%d power_levels=%d",
		pl.Invite(), pl.Kick(), pl.Ban(), pl.Redact(), pl.StateDefault(), pl.EventsDefault, pl.Events["m.room.name"], pl.Events["m.room.power_levels"])
}

// powerUsers returns the users map of the room's power levels.
func powerUsers(t *testing.T, c *mautrix.Client, roomID string) map[string]int {
	t.Helper()
	var pl event.PowerLevelsEventContent
	if err := c.StateEvent(context.Background(), id.RoomID(roomID), event.StatePowerLevels, "", &pl); err != nil {
		t.Fatalf("power levels of %s: %v", roomID, err)
	}
	out := map[string]int{}
	for u, v := range pl.Users {
		out[u.String()] = v
	}
	return out
}

func mxid(username string) string { return "@" + username + ":localhost" }

func sameStrings(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }
