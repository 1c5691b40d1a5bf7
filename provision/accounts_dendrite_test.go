package provision_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/handlers/api"
	"matrixas/internal/dendritetest"
	"matrixas/internal/fakesynapse"
	"matrixas/settings"
)

// accountsEnv is an appservice on a real Dendrite with one project room whose members
// the tests add.
type accountsEnv struct {
	*appservice
	project  string // the project's uuid
	roomUUID string // the room's uuid
}

// newAccountsEnv starts the appservice on Dendrite; homeserver, when not nil, puts
// something in front of Dendrite (given its URL) before any work starts.
func newAccountsEnv(t *testing.T, homeserver func(a *appservice) string) *accountsEnv {
	t.Helper()
	a := newAppservice(t, fastEnv)
	if homeserver != nil {
		if err := a.ts.Web.Settings().Set(context.Background(), map[string]string{settings.HomeserverURL.Key: homeserver(a)}); err != nil {
			t.Fatal(err)
		}
	}
	var p struct {
		UUID string `json:"uuid"`
	}
	a.call(t, http.MethodPost, "/api/projects/", map[string]string{"name": "Accounts"}, &p, http.StatusCreated)
	var r apiRoom
	a.call(t, http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": p.UUID}, &r, http.StatusCreated)
	return &accountsEnv{appservice: a, project: p.UUID, roomUUID: r.UUID}
}

// member creates a platform user with a role in the project.
func (e *accountsEnv) member(t *testing.T, name, role string) apiUser {
	t.Helper()
	u := e.createUser(t, name)
	e.call(t, http.MethodPost, "/api/projects/"+e.project+"/members/", map[string]string{"user": u.UUID, "role": role}, nil, http.StatusCreated)
	return u
}

// profile reads a user's Matrix profile through the API.
func (e *accountsEnv) profile(t *testing.T, username string) apiAccount {
	t.Helper()
	var ps []apiAccount
	e.call(t, http.MethodGet, "/api/matrix-user-profiles/?search="+url.QueryEscape(username), nil, &ps, http.StatusOK)
	for _, p := range ps {
		if p.Username == username {
			return p
		}
	}
	t.Fatalf("no profile for %s", username)
	return apiAccount{}
}

type apiAccount struct {
	Username     string `json:"username"`
	MatrixUserID string `json:"matrix_user_id"`
	Provisioned  bool   `json:"provisioned"`
	LastError    string `json:"last_error"`
	Registration string `json:"registration"`
	SignedOut    bool   `json:"signed_out"`
	Locked       bool   `json:"locked"`
}

// token is an API token of the platform user.
func (e *accountsEnv) token(t *testing.T, u apiUser) string {
	t.Helper()
	du, err := e.ts.Store.UserByUUID(context.Background(), u.UUID)
	if err != nil {
		t.Fatal(err)
	}
	return e.ts.NewToken(t, du)
}

// roomID is the Matrix room ID, once the room is active with its members synced.
func (e *accountsEnv) roomID(t *testing.T) string {
	t.Helper()
	var r apiRoom
	waitFor(t, "room active", 60*time.Second, func() (bool, string) {
		r = e.room(t, e.roomUUID)
		return r.State == "active", r.State + " " + r.ErrorMessage
	})
	return r.RoomID
}

// membership is the user's membership in the room as the bot sees it ("" for none).
func membership(t *testing.T, bot *mautrix.Client, roomID, user string) event.Membership {
	t.Helper()
	var m event.MemberEventContent
	err := bot.StateEvent(context.Background(), id.RoomID(roomID), event.StateMember, user, &m)
	if errors.Is(err, mautrix.MNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("membership of %s: %v", user, err)
	}
	return m.Membership
}

// TestAccountsOnDendrite: on a real Dendrite, an account that existed before is refused
// with the fix named (and never acted for), and works once linked; a registration whose
// answer was lost is recognised as ours; a homeserver's refusal of a first registration
// does not let a later M_USER_IN_USE pass as ours.
func TestAccountsOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	// A proxy in front of Dendrite that can lose the answer to a registration (the
	// request reaches Dendrite; the connection drops before the answer) or refuse one.
	var proxy *registerFaults
	e := newAccountsEnv(t, func(a *appservice) string {
		proxy = newRegisterFaults(t, a.hs.URL, func(username string) error {
			_, _, err := a.hs.RegisterUser(context.Background(), username, "someone-elses-password-1")
			return err
		})
		return proxy.URL
	})
	ctx := context.Background()
	bot := e.bot(t, e.hs)

	// carol's ID is taken by an account someone made on the homeserver before.
	if _, _, err := e.hs.RegisterUser(ctx, "carol", "carols-own-password-1"); err != nil {
		t.Fatal(err)
	}
	proxy.lose("erin")   // erin's first registration is made, its answer lost
	proxy.refuse("gina") // gina's first registration is refused (429), then her ID is taken
	dave := e.member(t, "dave", "member")
	carol := e.member(t, "carol", "admin")
	e.member(t, "erin", "member")
	gina := e.member(t, "gina", "member")
	roomID := e.roomID(t)

	waitFor(t, "accounts settled", 60*time.Second, func() (bool, string) {
		c, er, g := e.profile(t, "carol"), e.profile(t, "erin"), e.profile(t, "gina")
		return c.Registration == "refused" && er.Provisioned && g.Registration == "refused",
			"carol " + c.Registration + ", erin " + er.Registration + " " + er.LastError + ", gina " + g.Registration + " " + g.LastError
	})
	waitFor(t, "dave and erin joined", 30*time.Second, func() (bool, string) {
		j := joined(t, bot, roomID)
		return sameStrings(j, []string{mxid("dave"), mxid("erin"), e.ms.BotUserID().String()}), strings.Join(j, ",")
	})

	t.Run("an existing account is refused, with the fix", func(t *testing.T) {
		p := e.profile(t, "carol")
		for _, want := range []string{"@carol:localhost already exists on the homeserver and was not created by this server",
			"matrixas link-matrix-account carol @carol:localhost", "/api/users/" + carol.UUID + "/link_matrix_account/"} {
			if !strings.Contains(p.LastError, want) {
				t.Errorf("carol's error %q lacks %q", p.LastError, want)
			}
		}
		if m := membership(t, bot, roomID, mxid("carol")); m != "" {
			t.Errorf("carol's account was invited or joined: %q", m)
		}
		if _, ok := powerUsers(t, bot, roomID)[mxid("carol")]; ok {
			t.Errorf("carol's account got a power level: %v", powerUsers(t, bot, roomID))
		}
		r := e.room(t, e.roomUUID)
		if r.State != "active" || r.ErrorMessage != "" {
			t.Errorf("the refused account made the room fail: %s %q", r.State, r.ErrorMessage)
		}
		// The user is told too, and the user's page shows it.
		resp, body := e.ts.Request(t, http.MethodGet, "/api/matrix/credentials/", e.token(t, carol), nil)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "link-matrix-account carol @carol:localhost") {
			t.Errorf("credentials for a refused account: %d %s", resp.StatusCode, body)
		}
		page, err := e.ts.Browser(t).Get(e.ts.URL + "/users/" + carol.UUID)
		if err != nil {
			t.Fatal(err)
		}
		html, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if !strings.Contains(string(html), "matrixas link-matrix-account carol @carol:localhost") || !strings.Contains(string(html), `data-testid="profile-registration"`) {
			t.Errorf("the user's page does not show the refusal and its fix")
		}
	})

	t.Run("a lost answer is our own account", func(t *testing.T) {
		if n := proxy.registers("erin"); n < 2 {
			t.Errorf("erin registered %d times; the lost answer should have been retried", n)
		}
		if p := e.profile(t, "erin"); p.Registration != "created" || p.LastError != "" {
			t.Errorf("erin: %+v", p)
		}
	})

	t.Run("a refused first registration does not make a later account ours", func(t *testing.T) {
		if n := proxy.registers("gina"); n < 2 {
			t.Errorf("gina registered %d times", n)
		}
		if p := e.profile(t, "gina"); !strings.Contains(p.LastError, "link-matrix-account gina") {
			t.Errorf("gina: %+v", p)
		}
	})

	t.Run("linking on purpose", func(t *testing.T) {
		// Another user's ID and the bot's are refused; carol's own is linked.
		e.call(t, http.MethodPost, "/api/users/"+gina.UUID+"/link_matrix_account/", map[string]string{"matrix_user_id": mxid("dave")}, nil, http.StatusConflict)
		e.call(t, http.MethodPost, "/api/users/"+gina.UUID+"/link_matrix_account/", map[string]string{"matrix_user_id": e.ms.BotUserID().String()}, nil, http.StatusBadRequest)
		e.call(t, http.MethodPost, "/api/users/"+dave.UUID+"/link_matrix_account/", map[string]string{"matrix_user_id": mxid("dave-other")}, nil, http.StatusConflict)
		var p apiAccount
		e.call(t, http.MethodPost, "/api/users/"+carol.UUID+"/link_matrix_account/", map[string]string{}, &p, http.StatusOK)
		if p.Registration != "linked" || p.MatrixUserID != mxid("carol") || p.LastError != "" {
			t.Errorf("after the link: %+v", p)
		}
		waitFor(t, "carol joined with her level", 30*time.Second, func() (bool, string) {
			pl := powerUsers(t, bot, roomID)
			m := membership(t, bot, roomID, mxid("carol"))
			return m == event.MembershipJoin && pl[mxid("carol")] == db.RolePowerLevel(db.RoleAdmin), string(m)
		})
		if name, err := e.as(t, e.hs, id.UserID(mxid("carol"))).GetOwnDisplayName(ctx); err != nil || name.DisplayName != "User carol" {
			t.Errorf("carol's display name: %v %v", name, err)
		}
		if p := e.profile(t, "carol"); !p.Provisioned || p.Registration != "linked" {
			t.Errorf("carol after provisioning: %+v", p)
		}
	})
}

// registerFaults is a proxy in front of a homeserver that loses or refuses the first
// registration of chosen usernames.
type registerFaults struct {
	URL string

	mu     sync.Mutex
	faults map[string]string // username -> "lose" | "refuse"
	count  map[string]int
}

// take makes an account with the username on the homeserver, as someone else would.
func newRegisterFaults(t *testing.T, upstream string, take func(username string) error) *registerFaults {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	f := &registerFaults{faults: map[string]string{}, count: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/_matrix/client/v3/register" {
			proxy.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Username string `json:"username"`
		}
		json.Unmarshal(body, &req)
		f.mu.Lock()
		f.count[req.Username]++
		fault := f.faults[req.Username]
		delete(f.faults, req.Username)
		f.mu.Unlock()
		switch fault {
		case "lose":
			// Dendrite makes the account; the answer never reaches the worker.
			fwd, _ := http.NewRequest(http.MethodPost, upstream+r.URL.RequestURI(), bytes.NewReader(body))
			fwd.Header = r.Header.Clone()
			if resp, err := http.DefaultClient.Do(fwd); err == nil {
				resp.Body.Close()
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		case "refuse":
			// Refused before it reaches Dendrite; before the retry, someone takes the ID.
			if err := take(req.Username); err != nil {
				t.Errorf("take %s: %v", req.Username, err)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":10}`))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *registerFaults) lose(username string) {
	f.mu.Lock()
	f.faults[username] = "lose"
	f.mu.Unlock()
}
func (f *registerFaults) refuse(username string) {
	f.mu.Lock()
	f.faults[username] = "refuse"
	f.mu.Unlock()
}

func (f *registerFaults) registers(username string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[username]
}

// session asks POST /api/matrix/session/ as the user and returns the answer.
func (e *accountsEnv) session(t *testing.T, token string) (int, sessionAnswer, http.Header) {
	t.Helper()
	resp, body := e.ts.Request(t, http.MethodPost, "/api/matrix/session/", token, nil)
	var s sessionAnswer
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatalf("session answer: %v: %s", err, body)
		}
	}
	return resp.StatusCode, s, resp.Header
}

type sessionAnswer struct {
	UserID        id.UserID   `json:"user_id"`
	DeviceID      id.DeviceID `json:"device_id"`
	AccessToken   string      `json:"access_token"`
	HomeserverURL string      `json:"homeserver_url"`
}

// TestSessionOnDendrite: the session POST /api/matrix/session/ makes (the appservice
// login) works in a real Matrix client library: mautrix syncs, sees the user's room and
// sends a message that arrives in it. Credentials provision on demand; both answer 404
// while chat is disabled and 503 when the account cannot be made; sessions are limited
// per user; the token is never logged.
func TestSessionOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	e := newAccountsEnv(t, nil)
	ctx := context.Background()
	judy := e.member(t, "judy", "member")
	roomID := e.roomID(t)
	bot := e.bot(t, e.hs)
	waitFor(t, "judy joined", 30*time.Second, func() (bool, string) {
		m := membership(t, bot, roomID, mxid("judy"))
		return m == event.MembershipJoin, string(m)
	})
	tok := e.token(t, judy)

	status, s, header := e.session(t, tok)
	if status != http.StatusOK || s.UserID != id.UserID(mxid("judy")) || s.DeviceID == "" || s.AccessToken == "" || s.HomeserverURL != e.hs.URL {
		t.Fatalf("session: %d %+v", status, s)
	}
	if cc := header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on a session", cc)
	}

	// A real client with the session: sync, the room, a message.
	client, err := mautrix.NewClient(s.HomeserverURL, s.UserID, s.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	client.DeviceID = s.DeviceID
	sync, err := client.SyncRequest(ctx, 0, "", "", true, event.PresenceOffline)
	if err != nil {
		t.Fatalf("sync with the session: %v", err)
	}
	if _, ok := sync.Rooms.Join[id.RoomID(roomID)]; !ok {
		t.Fatalf("the synced rooms %v lack the project's room %s", roomIDs(sync.Rooms.Join), roomID)
	}
	sent, err := client.SendText(ctx, id.RoomID(roomID), "hello from the web chat")
	if err != nil {
		t.Fatalf("send with the session: %v", err)
	}
	dendritetest.WaitVisible(t, bot, id.RoomID(roomID), sent.EventID) // Dendrite answers a send before it stores the event
	evt, err := bot.GetEvent(ctx, id.RoomID(roomID), sent.EventID)
	if err != nil {
		t.Fatalf("the message is not in the room: %v", err)
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil || evt.Sender != s.UserID || evt.Content.AsMessage().Body != "hello from the web chat" {
		t.Errorf("the message in the room: sender %s, content %s (%v)", evt.Sender, evt.Content.VeryRaw, err)
	}
	if strings.Contains(e.ts.Logs.String(), s.AccessToken) {
		t.Error("the session's access token is in the server's log")
	}

	// At most api.SessionsPerHour per user; then 429 with Retry-After.
	for i := 2; i <= api.SessionsPerHour; i++ {
		if status, _, _ := e.session(t, tok); status != http.StatusOK {
			t.Fatalf("session %d: %d", i, status)
		}
	}
	status, _, header = e.session(t, tok)
	if status != http.StatusTooManyRequests || header.Get("Retry-After") == "" {
		t.Errorf("session %d: %d, Retry-After %q; want 429", api.SessionsPerHour+1, status, header.Get("Retry-After"))
	}

	// Credentials: the account, the public URL, the login method; made on demand.
	kate := e.createUser(t, "kate") // no role: nobody provisioned her yet
	if err := e.ts.Web.Settings().Set(ctx, map[string]string{settings.ExternalLoginMethod.Key: "oidc",
		settings.HomeserverPublicURL.Key: "https://matrix.example.org"}); err != nil {
		t.Fatal(err)
	}
	var creds struct {
		Method        string `json:"method"`
		HomeserverURL string `json:"homeserver_url"`
		MatrixUserID  string `json:"matrix_user_id"`
	}
	if code := e.ts.JSON(t, http.MethodGet, "/api/matrix/credentials/", e.token(t, kate), nil, &creds); code != http.StatusOK {
		t.Fatalf("credentials: %d", code)
	}
	if creds.Method != "oidc" || creds.HomeserverURL != "https://matrix.example.org" || creds.MatrixUserID != mxid("kate") {
		t.Errorf("credentials: %+v", creds)
	}
	if p := e.profile(t, "kate"); !p.Provisioned || p.Registration != "created" {
		t.Errorf("kate was not provisioned on demand: %+v", p)
	}
	if w, err := e.as(t, e.hs, id.UserID(mxid("kate"))).Whoami(ctx); err != nil || w.UserID != id.UserID(mxid("kate")) {
		t.Errorf("kate's account on the homeserver: %v %v", w, err)
	}

	// The homeserver cannot be reached: a user not provisioned yet gets 503.
	if err := e.ts.Web.Settings().Set(ctx, map[string]string{settings.HomeserverURL.Key: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	leo := e.createUser(t, "leo")
	resp, body := e.ts.Request(t, http.MethodGet, "/api/matrix/credentials/", e.token(t, leo), nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"detail":"Your Matrix account could not be set up: register @leo:localhost`) {
		t.Errorf("unreachable homeserver: %d %s", resp.StatusCode, body)
	}
	resp, _ = e.ts.Request(t, http.MethodPost, "/api/matrix/session/", e.token(t, leo), nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("session with an unreachable homeserver: %d", resp.StatusCode)
	}

	// Chat disabled: 404.
	if err := e.ts.Web.Settings().Set(ctx, map[string]string{settings.Enabled.Key: "false"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path string }{{http.MethodGet, "/api/matrix/credentials/"}, {http.MethodPost, "/api/matrix/session/"}} {
		resp, body := e.ts.Request(t, r.method, r.path, e.token(t, kate), nil)
		if resp.StatusCode != http.StatusNotFound || strings.TrimSpace(string(body)) != `{"detail":"Matrix chat is disabled."}` {
			t.Errorf("%s %s while disabled: %d %s", r.method, r.path, resp.StatusCode, body)
		}
	}
}

func roomIDs[V any](m map[id.RoomID]V) []id.RoomID {
	var out []id.RoomID
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDeactivationOnDendrite: deactivating a user signs every device of theirs out (a
// session stops working), removes them from the room and, where the homeserver offers
// the bot an admin API (Synapse's, played here in front of Dendrite), locks the account;
// reactivating unlocks it and brings them back into their rooms.
func TestDeactivationOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	var admin *fakesynapse.Server
	e := newAccountsEnv(t, nil)
	ctx := context.Background()
	bot := e.bot(t, e.hs)
	hank := e.member(t, "hank", "admin")
	roomID := e.roomID(t)
	inRoom := func(user string, want event.Membership) func() (bool, string) {
		return func() (bool, string) {
			m := membership(t, bot, roomID, mxid(user))
			return m == want, string(m)
		}
	}
	waitFor(t, "hank joined", 30*time.Second, inRoom("hank", event.MembershipJoin))

	cycle := func(t *testing.T, u apiUser, wantLocked bool) {
		_, s, _ := e.session(t, e.token(t, u))
		client, err := mautrix.NewClient(e.hs.URL, s.UserID, s.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Whoami(ctx); err != nil {
			t.Fatalf("the session before the deactivation: %v", err)
		}
		e.call(t, http.MethodPost, "/api/users/"+u.UUID+"/deactivate/", nil, nil, http.StatusOK)
		waitFor(t, "signed out", 30*time.Second, func() (bool, string) {
			p := e.profile(t, u.Username)
			return p.SignedOut, p.LastError
		})
		if _, err := client.Whoami(ctx); !errors.Is(err, mautrix.MUnknownToken) {
			t.Errorf("the session after the deactivation: %v, want M_UNKNOWN_TOKEN", err)
		}
		waitFor(t, "removed from the room", 30*time.Second, inRoom(u.Username, event.MembershipLeave))
		if p := e.profile(t, u.Username); p.Locked != wantLocked {
			t.Errorf("locked %v, want %v", p.Locked, wantLocked)
		}
		if admin != nil && admin.Locked(mxid(u.Username)) != wantLocked {
			t.Errorf("locked on the homeserver: %v, want %v", admin.Locked(mxid(u.Username)), wantLocked)
		}

		e.call(t, http.MethodPatch, "/api/users/"+u.UUID+"/", map[string]any{"is_active": true}, nil, http.StatusOK)
		waitFor(t, "back in the room", 30*time.Second, inRoom(u.Username, event.MembershipJoin))
		waitFor(t, "provisioned again", 30*time.Second, func() (bool, string) {
			p := e.profile(t, u.Username)
			return p.Provisioned && !p.SignedOut && !p.Locked, p.LastError
		})
		if admin != nil && admin.Locked(mxid(u.Username)) {
			t.Error("still locked on the homeserver after the reactivation")
		}
		waitFor(t, "the power level back", 30*time.Second, func() (bool, string) {
			pl := powerUsers(t, bot, roomID)[mxid(u.Username)]
			return pl == db.RolePowerLevel(db.RoleAdmin), fmt.Sprint(pl)
		})
	}

	t.Run("Dendrite: signed out and removed, no lock", func(t *testing.T) { cycle(t, hank, false) })

	t.Run("with an admin API for the bot: locked and unlocked", func(t *testing.T) {
		admin = fakesynapse.New(t, fakesynapse.Options{Upstream: e.hs.URL, BotIsAdmin: true})
		if err := e.ts.Web.Settings().Set(ctx, map[string]string{settings.HomeserverURL.Key: admin.URL}); err != nil {
			t.Fatal(err)
		}
		ivan := e.member(t, "ivan", "admin")
		waitFor(t, "ivan joined", 30*time.Second, inRoom("ivan", event.MembershipJoin))
		cycle(t, ivan, true)
		calls := strings.Join(admin.AdminCalls(), "\n")
		if !strings.Contains(calls, "PUT /_synapse/admin/v2/users/@ivan:localhost") {
			t.Errorf("admin calls: %s", calls)
		}
	})
}
